"""The `rules` strategy: the default table on a mixed workload, and configured rules."""

from __future__ import annotations

import pytest

from tests.routing.conftest import ask, make_router
from tiergate.chat import ChatRequest, Message, ResponseFormat
from tiergate.routing.features import extract_features
from tiergate.routing.language import detect_language

DOC = "The committee met on Tuesday. Revenue was flat and costs rose slightly. " * 60

MIXED = [
    ("hi there!", "budget"),
    ("What are your opening hours on Sunday?", "budget"),
    ("How do I reset my password?", "budget"),
    (f"Summarize this report in three bullet points:\n{DOC}", "budget"),
    ("Extract every date and amount from: paid $40 on 3 May, $12 on 9 June.", "budget"),
    ("Translate 'good morning, how are you' into French.", "budget"),
    ("Write a Python function that parses ISO dates and returns a datetime.", "standard"),
    ("Why does this fail?\n```js\nconst x = await fetch(url)\n```", "standard"),
    ("Write a 2,000-word blog post about autumn in Kyoto.", "standard"),
    ("Prove that the square root of 2 is irrational, step by step.", "premium"),
    ("Design a system for global rate limiting; discuss the trade-offs.", "premium"),
    (
        "A bat and a ball cost $1.10. Think through it carefully: what is the ball's price?",
        "premium",
    ),
]


@pytest.mark.parametrize(("prompt", "tier"), MIXED)
def test_default_table_sends_a_mixed_workload_to_sensible_tiers(router, prompt, tier):
    decision = router.decide(ask(prompt))
    assert decision.tier == tier, decision.reasons
    assert decision.strategy == "rules"


def test_reason_names_the_rule_the_tokens_and_the_match(router):
    decision = router.decide(ask("What are your hours?"))
    (reason,) = decision.reasons
    assert reason.startswith("rules: greeting or FAQ: ")
    assert "prompt tokens" in reason and "matched 'hours'" in reason
    assert reason.endswith("\u2192 budget")
    assert "->" in decision.summary() and decision.summary().isascii()


def test_long_expected_output_prefers_cheap_output_prices(router):
    # Within budget, cheap-out has dearer input but cheaper output than small-model.
    prompt = "Say hi. " + "context " * 300
    short = router.decide(ask(prompt, max_tokens=10, model="tier:budget"))
    long = router.decide(ask(prompt, max_tokens=8000, model="tier:budget"))
    assert short.model.name == "small-model"
    assert long.model.name == "cheap-out"


def test_keywords_whole_word_and_prefix():
    router = make_router(
        """
        routes:
          auto:
            rules:
              - {name: legalese, tier: premium, keywords: ["contract*", "NDA"]}
              - {name: part, tier: standard, keywords: [cat], whole_word: false}
              - {tier: budget}
        """
    )
    assert router.decide(ask("review these contractual terms")).tier == "premium"
    assert router.decide(ask("sign the nda today")).tier == "premium"
    assert router.decide(ask("an agenda for today")).tier == "budget"  # 'nda' inside a word
    assert router.decide(ask("concatenate these")).tier == "standard"  # substring allowed


def test_regex_conditions_language_turns_and_tags():
    router = make_router(
        """
        routes:
          auto:
            rules:
              - {name: ticket, tier: standard, regex: ['\\bTICKET-\\d+\\b']}
              - {name: german, tier: premium, languages: [de]}
              - {name: long chat, tier: standard, min_turns: 3}
              - {name: vip, tier: premium, tags: [vip]}
              - {tier: budget}
        """
    )
    assert router.decide(ask("look at ticket-123 please")).reasons[0].startswith("rules: ticket:")
    assert router.decide(ask("Wie ist das Wetter und die Lage in der Stadt?")).tier == "premium"
    turns = [Message(role="user", content="x"), Message(role="assistant", content="y")] * 3
    assert router.decide(ChatRequest(model="auto", messages=turns)).tier == "standard"


def test_output_length_cues_and_json():
    f = extract_features(ask("Write a 1,500-word essay and a 3 paragraph summary"))
    assert f.expected_output_tokens == 2100
    f = extract_features(ask("hi", max_tokens=50))
    assert f.expected_output_tokens == 50
    f = extract_features(ask("x", response_format=ResponseFormat(type="json_object")))
    assert f.wants_json and not f.wants_json_schema


def test_keywords_in_the_middle_of_a_long_paste_are_ignored(router):
    # "prove" buried in pasted material is not the task; the instruction is a summary.
    prompt = "Summarize this:\n" + DOC + " we must prove it. " + DOC
    assert router.decide(ask(prompt)).tier == "budget"


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("What is the capital of France and how big is it?", "en"),
        ("¿Cuál es la capital de Francia y por qué es famosa por el arte?", "es"),
        ("Quelle est la capitale de la France et pourquoi est-elle célèbre ?", "fr"),
        ("Привет, как дела? Расскажи мне о погоде.", "ru"),  # noqa: RUF001
        ("今日はいい天気ですね。散歩に行きましょう。", "ja"),
        ("ok", ""),
    ],
)
def test_language_detection(text, lang):
    assert detect_language(text.lower()) == lang
