"""Reading a config file: YAML with `${ENV}` expansion, schema validation with line numbers,
and the semantic checks that turn it into a `Fleet` and routes."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tiergate.catalog import Catalog, load_catalog
from tiergate.config.schema import Config, ModelConfig
from tiergate.errors import ConfigError
from tiergate.fleet import Deployment, Fleet, Model, Price, Provider, Timeouts

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _EnvLoader(yaml.SafeLoader):
    """SafeLoader that puts `${VAR}` / `${VAR:-default}` values back into string scalars.

    `${...}` is replaced by an inert placeholder before parsing (so that it may appear
    anywhere, flow mappings included) and the placeholders are resolved per scalar after
    parsing, so that an environment value can never inject YAML structure.
    """

    def __init__(self, stream: str, values: dict[str, str]):
        super().__init__(stream)
        self.values = values

    def expand(self, node: yaml.ScalarNode) -> str:
        value = str(self.construct_scalar(node))
        if _PLACEHOLDER_MARK in value:
            value = _PLACEHOLDER.sub(lambda m: self.values[m.group(0)], value)
        return value


_PLACEHOLDER_MARK = "TGENV7f3a"
_PLACEHOLDER = re.compile(_PLACEHOLDER_MARK + r"[0-9]+x")


def _construct_str(loader: _EnvLoader, node: yaml.ScalarNode) -> str:
    return loader.expand(node)


_EnvLoader.add_constructor("tag:yaml.org,2002:str", _construct_str)


def _substitute_env(text: str, env: Mapping[str, str]) -> tuple[str, dict[str, str], list[str]]:
    values: dict[str, str] = {}
    problems: list[str] = []

    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env:
            value = env[name]
        elif default is not None:
            value = default
        else:
            line = text.count("\n", 0, m.start()) + 1
            problems.append(f"line {line}: environment variable {name} is not set")
            value = ""
        token = f"{_PLACEHOLDER_MARK}{len(values)}x"
        values[token] = value
        return token

    return _ENV.sub(sub, text), values, problems


def _line_of(root: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """Line (1-based) of the YAML node at a pydantic error location, or of its parent."""
    node, line = root, None
    for part in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for key, value in node.value:
                if key.value == part:
                    nxt, line = value, key.start_mark.line + 1
                    break
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if part < len(node.value) else None
        else:
            node = None
    if node is not None:
        line = node.start_mark.line + 1
    return line


def parse_config(text: str, env: Mapping[str, str] | None = None) -> Config:
    """Parse YAML text into a validated `Config`; raise `ConfigError` listing every problem."""
    text, values, problems = _substitute_env(text, os.environ if env is None else env)
    loader = _EnvLoader(text, values)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else {}
    except yaml.YAMLError as exc:
        raise ConfigError([*problems, f"invalid YAML: {exc}"]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ConfigError([*problems, "the config must be a mapping at the top level"])
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            where = ".".join(str(p) for p in loc) or "(top level)"
            line = _line_of(root, loc)
            prefix = f"line {line}: " if line else ""
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = f"unknown key {loc[-1]!r}"
            problems.append(f"{prefix}{where}: {msg}")
        raise ConfigError(problems) from None
    if problems:
        raise ConfigError(problems)
    if root is not None:
        _record_lines(root, "", config._lines)
    return config


def _record_lines(node: yaml.Node, path: str, lines: dict[str, int]) -> None:
    """Every dotted path of the document and its line, for semantic error messages."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            sub = f"{path}.{key.value}" if path else str(key.value)
            lines[sub] = key.start_mark.line + 1
            _record_lines(value, sub, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            sub = f"{path}.{i}"
            lines[sub] = item.start_mark.line + 1
            _record_lines(item, sub, lines)


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    try:
        text = Path(path).read_text("utf-8")
    except OSError as exc:
        raise ConfigError([f"cannot read {path}: {exc.strerror}"]) from None
    return parse_config(text, env)


def _price(model: ModelConfig, catalog_price: dict[str, float] | None) -> Price | None:
    if model.price is not None:
        return Price(
            model.price.input, model.price.output, model.price.cached_input, model.price.cache_write
        )
    if catalog_price is not None:
        return Price(
            catalog_price["input"],
            catalog_price["output"],
            catalog_price.get("cached_input"),
            catalog_price.get("cache_write"),
        )
    return None


def build_fleet(config: Config, catalog: Catalog | None = None) -> Fleet:
    """Check the config's meaning and prepare the fleet; raise `ConfigError` with every problem."""
    catalog = catalog or load_catalog()
    problems: list[str] = []
    providers = {
        name: Provider(
            name=name,
            kind=p.kind,
            base_url=p.base_url.rstrip("/"),
            api_key=p.api_key,
            headers=tuple(p.headers.items()),
            timeouts=Timeouts(**p.timeout.model_dump()),
            max_connections=p.max_connections,
            anthropic_version=p.anthropic_version,
            proxy=p.proxy,
        )
        for name, p in config.providers.items()
    }
    tiers = tuple(config.tiers)
    if len(set(tiers)) != len(tiers) or not tiers:
        problems.append("tiers: must be a non-empty list of distinct names")
    models: dict[str, Model] = {}
    for name, mc in config.models.items():
        entry = catalog.get(name) or (catalog.get(mc.model) if mc.model else None)
        tier = mc.tier or (entry.tier if entry else None)
        where = f"models.{name}"
        if tier is None:
            problems.append(f"{where}: no tier given and {name!r} is not in the catalog")
            continue
        if tier not in tiers:
            problems.append(f"{where}: tier {tier!r} is not declared in tiers {list(tiers)}")
            continue
        price = _price(mc, entry.price if entry else None)
        if price is None:
            problems.append(
                f"{where}: no price and {name!r} is not in the catalog; "
                "write price: {input: 0, output: 0} if it is really free"
            )
            continue
        bindings = (
            [(d.provider, d.model, d.weight) for d in mc.deployments]
            if mc.deployments is not None
            else [(mc.provider, mc.model, 1.0)]
        )
        deployments = []
        max_output = mc.max_output or (entry.max_output if entry else 16_384)
        for provider_name, upstream, weight in bindings:
            if provider_name is None:
                problems.append(f"{where}: no provider given")
                continue
            provider = providers.get(provider_name)
            if provider is None:
                problems.append(
                    f"{where}: unknown provider {provider_name!r} "
                    f"(declared: {sorted(providers) or 'none'})"
                )
                continue
            upstream_id = upstream or (entry.upstream if entry else name)
            deployments.append(
                Deployment(
                    f"{name}@{provider_name}", name, provider, upstream_id, weight, max_output
                )
            )
        if not deployments:
            continue
        models[name] = Model(
            name=name,
            tier=tier,
            price=price,
            deployments=tuple(deployments),
            context_window=mc.context_window or (entry.context_window if entry else 128_000),
            max_output=max_output,
            capabilities=frozenset(
                mc.capabilities
                if mc.capabilities is not None
                else (entry.capabilities if entry else ("tools", "streaming", "json_schema"))
            ),
        )
    if config.use_catalog:
        _add_catalog_models(models, providers, catalog, tiers)
    if problems:
        raise ConfigError(problems)
    return Fleet(tiers=tiers, models=models, providers=providers)


def _add_catalog_models(
    models: dict[str, Model],
    providers: dict[str, Provider],
    catalog: Catalog,
    tiers: tuple[str, ...],
) -> None:
    """Offer catalog models on providers that look like their home (by provider name hint)."""
    for entry in catalog.entries.values():
        if entry.name in models or entry.tier not in tiers or "embeddings" in entry.capabilities:
            continue
        homes = [
            p
            for p in providers.values()
            if p.kind == entry.kind
            and (entry.provider_hint is None or entry.provider_hint in p.name)
            and _is_official_home(p, entry)
        ]
        if not homes:
            continue
        models[entry.name] = Model(
            name=entry.name,
            tier=entry.tier,
            price=Price(
                entry.price["input"],
                entry.price["output"],
                entry.price.get("cached_input"),
                entry.price.get("cache_write"),
            ),
            deployments=tuple(
                Deployment(
                    f"{entry.name}@{p.name}",
                    entry.name,
                    p,
                    entry.upstream,
                    max_output=entry.max_output,
                )
                for p in homes
            ),
            context_window=entry.context_window,
            max_output=entry.max_output,
            capabilities=frozenset(entry.capabilities),
        )


def _is_official_home(provider: Provider, entry: Any) -> bool:
    """Catalog models are offered only on the provider that publishes them, so that a
    self-hosted OpenAI-compatible server is never assumed to serve gpt-5."""
    official = {
        "openai": "api.openai.com",
        "anthropic": "api.anthropic.com",
        "gemini": "generativelanguage.googleapis.com",
    }
    hint_hosts = {"deepseek": "api.deepseek.com", "mistral": "api.mistral.ai"}
    host = hint_hosts.get(entry.provider_hint or "", official[entry.kind])
    return host in provider.base_url
