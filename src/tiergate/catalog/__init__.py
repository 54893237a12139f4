"""The built-in model catalog: public models, their prices, limits and capabilities."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import yaml


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    name: str
    kind: str
    tier: str
    price: dict[str, float]
    context_window: int
    max_output: int
    capabilities: tuple[str, ...]
    upstream: str  # the provider's own model id
    provider_hint: str | None = None  # e.g. "deepseek": only offered by that provider


@dataclass(frozen=True, slots=True)
class Catalog:
    prices_as_of: str
    entries: dict[str, CatalogEntry]

    def get(self, name: str) -> CatalogEntry | None:
        return self.entries.get(name)


def load_catalog() -> Catalog:
    """Read the catalog data file shipped with the package."""
    text = resources.files("tiergate.catalog").joinpath("models.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    entries = {
        name: CatalogEntry(
            name=name,
            kind=e["kind"],
            tier=e["tier"],
            price={k: float(v) for k, v in e["price"].items()},
            context_window=int(e["context_window"]),
            max_output=int(e["max_output"]),
            capabilities=tuple(e.get("capabilities", ())),
            upstream=e.get("upstream", name),
            provider_hint=e.get("provider_hint"),
        )
        for name, e in data["models"].items()
    }
    return Catalog(prices_as_of=str(data["prices_as_of"]), entries=entries)
