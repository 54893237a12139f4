from tiergate.cli.env_config import config_from_env
from tiergate.config.loader import build_fleet
from tiergate.routing.route import build_routes


def test_providers_found_from_the_environment():
    config = config_from_env({"OPENAI_API_KEY": "sk-a", "ANTHROPIC_API_KEY": "sk-b"})
    assert set(config.providers) >= {"openai", "anthropic"}
    assert config.providers["openai"].api_key == "sk-a"
    fleet = build_fleet(config)
    assert {"gpt-5-nano", "gpt-5.4", "claude-sonnet-4-6"} <= set(fleet.models)
    assert "deepseek-v3.2" not in fleet.models  # no DeepSeek key, no DeepSeek model
    assert fleet.models["claude-haiku-4-5"].price.output == 5.0
    assert "auto" in build_routes(config, fleet)


def test_deepseek_and_mistral_are_openai_compatible_providers():
    config = config_from_env({"DEEPSEEK_API_KEY": "d", "MISTRAL_API_KEY": "m"})
    fleet = build_fleet(config)
    assert fleet.models["deepseek-v3.2"].deployments[0].upstream_model == "deepseek-chat"
    assert fleet.models["mistral-small-3.2"].deployments[0].provider.kind == "openai"


def test_nothing_configured_means_no_models():
    assert build_fleet(config_from_env({})).models == {}
