from pathlib import Path

import pytest

from tiergate.config.loader import build_fleet, load_config, parse_config
from tiergate.errors import ConfigError

PRODUCT_EXAMPLE = """\
providers:
  upstream:
    kind: openai
    base_url: http://127.0.0.1:18080/v1
    api_key: ${UPSTREAM_KEY}
models:
  small-model:  {provider: upstream, model: mock-model, tier: budget,   price: {input: 0.05, output: 0.40}}
  medium-model: {provider: upstream, model: mock-model, tier: standard, price: {input: 0.25, output: 2.00}}
  large-model:  {provider: upstream, model: mock-model, tier: premium,  price: {input: 2.50, output: 15.00}}
routes:
  auto:
    strategy: rules
keys:
  - {name: bench, key: ${TIERGATE_KEY}}
"""


def test_product_example_loads_verbatim():
    config = parse_config(PRODUCT_EXAMPLE, {"UPSTREAM_KEY": "sk-1", "TIERGATE_KEY": "tg-2"})
    assert config.providers["upstream"].api_key == "sk-1"
    assert config.keys[0].key == "tg-2"
    fleet = build_fleet(config)
    assert [m.name for m in fleet.by_tier["budget"]] == ["small-model"]
    assert fleet.models["large-model"].price.output == 15.0
    assert fleet.models["small-model"].deployments[0].upstream_model == "mock-model"


def test_missing_env_var_is_named_with_its_line():
    with pytest.raises(ConfigError) as err:
        parse_config(PRODUCT_EXAMPLE, {"UPSTREAM_KEY": "x"})
    assert err.value.problems == ["line 14: environment variable TIERGATE_KEY is not set"]


def test_env_default_and_no_yaml_injection():
    text = "providers:\n  p: {kind: openai, base_url: '${URL:-http://h/v1}', api_key: ${K}}\n"
    config = parse_config(text, {"K": "a: {b: c}\nevil: 1"})
    assert config.providers["p"].base_url == "http://h/v1"
    assert config.providers["p"].api_key == "a: {b: c}\nevil: 1"


def test_unknown_keys_and_bad_values_are_all_reported_with_lines():
    text = "providers:\n  p: {kind: openai, base_url: http://h/v1, colour: red}\nroutez: {}\n"
    with pytest.raises(ConfigError) as err:
        parse_config(text, {})
    assert "line 2: providers.p.colour: unknown key 'colour'" in err.value.problems
    assert "line 3: routez: unknown key 'routez'" in err.value.problems


@pytest.mark.parametrize(
    ("models", "expected"),
    [
        (
            "m: {provider: nope, tier: budget, price: {input: 1, output: 1}}",
            "unknown provider 'nope'",
        ),
        (
            "m: {provider: p, tier: gold, price: {input: 1, output: 1}}",
            "tier 'gold' is not declared",
        ),
        ("m: {provider: p, tier: budget}", "no price"),
    ],
)
def test_semantic_problems(models, expected):
    text = f"providers:\n  p: {{kind: openai, base_url: http://h/v1}}\nmodels:\n  {models}\n"
    with pytest.raises(ConfigError) as err:
        build_fleet(parse_config(text, {}))
    assert any(expected in p for p in err.value.problems), err.value.problems


def test_explicit_zero_price_is_allowed_and_catalog_prices_apply():
    text = (
        "providers:\n  p: {kind: openai, base_url: http://h/v1}\n"
        "models:\n  local: {provider: p, tier: budget, price: {input: 0, output: 0}}\n"
        "  gpt-5-mini: {provider: p}\n"
    )
    fleet = build_fleet(parse_config(text, {}))
    assert fleet.models["local"].price.input == 0
    mini = fleet.models["gpt-5-mini"]
    assert (mini.tier, mini.price.input, mini.price.output) == ("standard", 0.25, 2.0)


def test_catalog_models_only_offered_on_their_official_provider():
    official = "providers:\n  openai: {kind: openai, base_url: https://api.openai.com/v1}\n"
    assert "gpt-5-nano" in build_fleet(parse_config(official, {})).models
    local = "providers:\n  vllm: {kind: openai, base_url: http://127.0.0.1:8000/v1}\n"
    assert build_fleet(parse_config(local, {})).models == {}


def test_load_config_reports_unreadable_file(tmp_path: Path):
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "missing.yaml")
    assert "cannot read" in err.value.problems[0]
