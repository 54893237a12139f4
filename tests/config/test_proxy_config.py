"""`providers.<name>.proxy`: checked when the config loads, and never shown with its password."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tiergate.cli.main import cli
from tiergate.config.loader import build_fleet, parse_config
from tiergate.errors import ConfigError

SECRET = "hunter2"


def _config(proxy: str) -> str:
    return f"providers:\n  p:\n    kind: openai\n    base_url: https://h/v1\n    proxy: '{proxy}'\n"


@pytest.mark.parametrize(
    ("proxy", "problem"),
    [
        (f"https://u:{SECRET}@proxy:3128", "an https:// proxy is not supported (TLS to the proxy"),
        (f"socks5://u:{SECRET}@proxy:1080", "proxy must be an http:// URL or 'direct'"),
        ("proxy.corp:3128", "proxy must be an http:// URL or 'direct'"),
        (f"http://u:{SECRET}@", "proxy URL has no host"),
        (f"http://u:{SECRET}@proxy:99999", "proxy is not a valid URL"),
        (f"http://u:{SECRET}@proxy:port", "proxy is not a valid URL"),
        (f"http://u:{SECRET}@proxy:3128/path", "with no path"),
        ("Direct", "proxy must be an http:// URL or 'direct'"),
    ],
)
def test_a_bad_proxy_is_refused_with_its_line_and_without_its_password(proxy, problem):
    with pytest.raises(ConfigError) as err:
        parse_config(_config(proxy), {})
    (message,) = err.value.problems
    assert message.startswith("line 5: providers.p.proxy: ")
    assert problem in message
    assert SECRET not in message


@pytest.mark.parametrize(
    "proxy", ["http://proxy.corp:3128", "http://proxy.corp", f"http://u:{SECRET}@[::1]:8080/"]
)
def test_good_proxies_and_direct_load(proxy):
    for setting in (proxy, "direct"):
        config = parse_config(_config(setting), {})
        fleet = build_fleet(config)
        assert fleet.providers["p"].proxy == setting


def test_unset_means_the_environment():
    config = parse_config("providers:\n  p: {kind: openai, base_url: https://h/v1}\n", {})
    assert config.providers["p"].proxy is None
    assert build_fleet(config).providers["p"].proxy is None


def test_the_password_is_in_no_repr():
    config = parse_config(_config(f"http://u:{SECRET}@proxy.corp:3128"), {})
    assert SECRET not in repr(config.providers["p"])
    assert SECRET not in repr(build_fleet(config).providers["p"])
    assert SECRET not in repr(config)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_config_check_never_prints_the_password(tmp_path, scheme):
    path = tmp_path / "tiergate.yaml"
    models = "models:\n  m: {provider: p, model: x, tier: budget, price: {input: 1, output: 1}}\n"
    path.write_text(_config(f"{scheme}://u:{SECRET}@proxy.corp:3128") + models)
    result = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert result.exit_code == (0 if scheme == "http" else 1), result.output
    assert SECRET not in result.output
