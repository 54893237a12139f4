"""The configuration `tiergate serve` uses when no file is given: providers found from
environment variables, the built-in catalog, embedded defaults."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

from tiergate.config.schema import Config, ProviderConfig

_FROM_ENV = (
    ("OPENAI_API_KEY", "openai", "openai", "https://api.openai.com/v1"),
    ("ANTHROPIC_API_KEY", "anthropic", "anthropic", "https://api.anthropic.com"),
    ("GEMINI_API_KEY", "gemini", "gemini", "https://generativelanguage.googleapis.com/v1beta"),
    ("DEEPSEEK_API_KEY", "deepseek", "openai", "https://api.deepseek.com/v1"),
    ("MISTRAL_API_KEY", "mistral", "openai", "https://api.mistral.ai/v1"),
)


def _ollama_running(host: str = "127.0.0.1", port: int = 11434) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def config_from_env(env: Mapping[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    providers: dict[str, ProviderConfig] = {}
    for var, name, kind, base_url in _FROM_ENV:
        if env.get(var):
            providers[name] = ProviderConfig(kind=kind, base_url=base_url, api_key=env[var])
    if _ollama_running():
        providers["ollama"] = ProviderConfig(kind="openai", base_url="http://127.0.0.1:11434/v1")
    return Config(providers=providers)
