"""Provider adapters: pure translation between canonical chat types and each wire protocol,
plus the thin pooled HTTP transport that carries them."""

from __future__ import annotations

from tiergate.providers.base import Adapter


def builtin_adapters() -> dict[str, Adapter]:
    """The adapters tiergate ships, by provider kind (a third party registers the same way)."""
    from tiergate.providers.openai import OpenAIAdapter

    adapters: dict[str, Adapter] = {"openai": OpenAIAdapter()}
    try:
        from tiergate.providers.anthropic import AnthropicAdapter

        adapters["anthropic"] = AnthropicAdapter()
    except ImportError:  # not built yet in this checkout
        pass
    try:
        from tiergate.providers.gemini import GeminiAdapter

        adapters["gemini"] = GeminiAdapter()
    except ImportError:  # not built yet in this checkout
        pass
    return adapters
