"""The response cache: exact (in-process LRU or Redis) and, per route, semantic."""
