"""tiergate: an OpenAI-compatible gateway that routes each request to the cheapest capable model."""

__version__ = "0.1.0"
