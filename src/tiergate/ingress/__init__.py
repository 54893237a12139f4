"""Ingress: the HTTP API (OpenAI and Anthropic wire formats in, canonical types inside)."""
