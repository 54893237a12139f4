"""Routing: the pure, synchronous decision of which tier and model serve a request."""
