"""The prepared `RuleTable` decides exactly as a plain reading of the rules does.

The reference below is the straightforward algorithm (the window's whole word set, every
condition of every rule in order); the table must agree with it on tier, rule and
reason for any prompt, including punctuation, control characters and non-ASCII text.
"""

from __future__ import annotations

from collections.abc import Collection

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.routing.conftest import ask
from tiergate.chat import ChatRequest, Message, ResponseFormat
from tiergate.routing import rules as R
from tiergate.routing.features import (
    _PUNCTUATION,
    RequestFeatures,
    Vocabulary,
    extract_features,
)
from tiergate.routing.rules import Keywords, Rule, RuleTable, default_rules


def _words(f: RequestFeatures) -> frozenset[str]:
    return frozenset(f.window.translate(_PUNCTUATION).split())


def _reference_find(kw: Keywords, f: RequestFeatures) -> str | None:
    words = _words(f)
    found = words & kw.words
    if found:
        return next(k for k in kw.order if k in found)
    for phrase in kw.phrases:
        if phrase.prefilter is not None and phrase.prefilter not in words:
            continue
        hit = R._find(f.window, phrase.text, phrase.prefix, kw.whole_word)
        if hit is not None:
            return hit
    return None


def _reference_match(rule: Rule, f: RequestFeatures, tags: Collection[str]) -> str | None:
    def outside(x: int, lo: int | None, hi: int | None) -> bool:
        return (lo is not None and x < lo) or (hi is not None and x > hi)

    if outside(f.prompt_tokens, rule.min_prompt_tokens, rule.max_prompt_tokens):
        return None
    if outside(f.turns, rule.min_turns, rule.max_turns):
        return None
    out = f.expected_output_tokens
    if outside(out, rule.min_expected_output_tokens, rule.max_expected_output_tokens):
        return None
    for want, have in (
        (rule.has_code, f.has_code),
        (rule.has_tools, f.has_tools),
        (rule.wants_json, f.wants_json),
    ):
        if want is not None and want != have:
            return None
    if rule.tags is not None and rule.tags.isdisjoint(tags):
        return None
    if rule.languages is not None and f.language not in rule.languages:
        return None
    hit = ""
    if rule.keywords is not None:
        found = _reference_find(rule.keywords, f)
        if found is None and rule.pattern is None:
            return None
        hit = found or ""
    if rule.pattern is not None and not hit:
        m = rule.pattern.search(f.window)
        if m is None:
            return None
        hit = m.group(0)
    return hit


def _reference(rules: tuple[Rule, ...], f: RequestFeatures, tags: Collection[str]):
    for rule in rules:
        hit = _reference_match(rule, f, tags)
        if hit is not None:
            return rule.tier, rule.explain(f, hit, tags)
    return None


CUSTOM = (
    Rule("legalese", "premium", keywords=Keywords.of(["contract*", "NDA", "c++", "tl;dr"])),
    Rule("part", "standard", keywords=Keywords.of(["cat", "ing "], whole_word=False)),
    Rule(
        "ticket",
        "standard",
        keywords=Keywords.of(["urgent"]),
        pattern=R.re.compile(r"\bticket-\d+\b", R.re.IGNORECASE),
    ),
    Rule("german", "premium", languages=frozenset({"de"})),
    Rule("vip", "premium", tags=frozenset({"vip"}), keywords=Keywords.of(["deal"])),
    Rule("window", "standard", min_prompt_tokens=20, max_prompt_tokens=400, has_code=False),
    Rule("turns", "standard", min_turns=2, max_turns=3),
    Rule("out", "premium", min_expected_output_tokens=500, max_expected_output_tokens=3000),
    Rule("json", "standard", wants_json=True, has_tools=False),
    Rule("résumé", "premium", keywords=Keywords.of(["résumé", "naïve bayes", "step-by-step"])),
)
TABLES = [default_rules(("budget", "standard", "premium")), CUSTOM]

VOCAB = [
    k for group in (R.REASONING, R.CODING, R.GREETING_FAQ, R.EXTRACTION_SUMMARY) for k in group
]
VOCAB += ["contract", "contractual", "nda", "agenda", "c++", "tl;dr", "ticket-42", "urgent"]
VOCAB += ["deal", "résumé", "naïve bayes", "der", "die", "und", "das", "ist", "2,000-word"]
VOCAB += ["3 pages", "```", "def f():", "\n", "\t", "\x1c", "\x1f", "\u00a0", "\u2003", "\x85"]
VOCAB += [",", ".", "'", "-", "_", "\u2014", "\u2019", "HELLO", "Step By Step", "İ", "\ufb01"]
PIECES = st.one_of(
    st.sampled_from(VOCAB),
    st.text(alphabet="abcdefghijklmnop ,.-\n'", max_size=12),
    st.text(max_size=6),
)
PROMPTS = st.lists(PIECES, max_size=40).map(" ".join) | st.lists(PIECES, max_size=300).map("".join)


@settings(max_examples=400, deadline=None)
@given(
    prompt=PROMPTS,
    table=st.sampled_from(TABLES),
    turns=st.integers(1, 4),
    json_=st.booleans(),
    max_tokens=st.sampled_from([None, 10, 800, 5000]),
    tags=st.sampled_from([(), ("vip",)]),
)
def test_the_table_decides_as_the_plain_reading_of_the_rules(
    prompt, table, turns, json_, max_tokens, tags
):
    history = [Message(role="user", content="x"), Message(role="assistant", content="y")]
    request = ChatRequest(
        model="auto",
        messages=history * (turns - 1) + [Message(role="user", content=prompt)],
        response_format=ResponseFormat(type="json_object") if json_ else None,
        max_tokens=max_tokens,
    )
    expected = _reference(table, extract_features(request), tags)
    assert RuleTable.of(table).decide(extract_features(request), tags) == expected


@settings(max_examples=300, deadline=None)
@given(prompt=PROMPTS, extra=st.lists(st.text(min_size=1, max_size=8), max_size=5))
def test_vocabulary_lookup_equals_the_window_word_set(prompt, extra):
    f = extract_features(ask(prompt))
    vocabulary = Vocabulary.of([w for w in VOCAB + extra if w])
    assert vocabulary.in_window(f.window) == _words(f) & vocabulary.words


def test_every_ascii_character_splits_words_as_the_str_path_does():
    vocabulary = Vocabulary.of(["a", "b"])
    for code in range(128):
        window = f"a{chr(code)}b"
        expected = frozenset(window.translate(_PUNCTUATION).split()) & {"a", "b"}
        assert vocabulary.in_window(window) == expected, code


def test_the_gate_is_computed_once_per_threshold_combination():
    table = RuleTable.of(default_rules(("budget", "standard", "premium")))
    for text in ("hi", "hello there", "what is this?"):
        table.decide(extract_features(ask(text)))
    assert len(table._gates) == 1  # all three are under 300 tokens, no code, no JSON


def test_the_gate_admits_exactly_the_rules_whose_bounds_hold_at_every_threshold():
    for rules in TABLES:
        table = RuleTable.of(rules)
        near = {v + d for r in rules for v in r.bounds if abs(v) < 1 << 40 for d in (-1, 0, 1)}
        values = sorted(near | {0, 1})
        for x in values:
            for flags in range(8):
                for prompt, turns, out in ((x, 1, 300), (100, x, 300), (100, 1, x)):
                    expected = tuple(r for r in rules if r.admits(prompt, turns, out, flags))
                    assert table._gate(prompt, turns, out, flags) == expected
