from click.testing import CliRunner

from tiergate.cli.main import cli


def test_config_check_ok(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text(
        "providers:\n  p: {kind: openai, base_url: http://h/v1}\n"
        "models:\n  a: {provider: p, tier: budget, price: {input: 0.1, output: 0.2}}\n"
    )
    result = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output and "budget: a" in result.output


def test_config_check_explains_every_problem(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "providers:\n  p: {kind: openai, base_url: http://h/v1}\n"
        "models:\n"
        "  a: {provider: q, tier: budget, price: {input: 0.1, output: 0.2}}\n"
        "  b: {provider: p, tier: gold, price: {input: 0.1, output: 0.2}}\n"
        "  c: {provider: p, tier: budget}\n"
    )
    result = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert result.exit_code == 1
    assert "3 problem(s)" in result.output
    assert "unknown provider 'q'" in result.output
    assert "tier 'gold' is not declared" in result.output
    assert "models.c: no price" in result.output
