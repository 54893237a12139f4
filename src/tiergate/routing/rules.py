"""The `rules` strategy: ordered rules over request features; the first that matches decides.

Each rule is compiled once at config load. Matching checks the cheap numeric conditions
first and the text conditions last; the reason text is only built for the winning rule.
With no rules configured, `default_rules` routes greetings and FAQ to the cheapest tier,
extraction and summaries to the cheapest or middle tier, code to the middle tier and
multi-step reasoning to the top tier.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from tiergate.config.schema import RuleConfig
from tiergate.routing.features import RequestFeatures


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


@dataclass(frozen=True, slots=True)
class Phrase:
    """A keyword that is not one plain word: several words, punctuation, or a prefix."""

    text: str
    prefilter: str | None  # a word the window must contain first (a set lookup)
    prefix: bool


def _phrase(keyword: str, whole_word: bool) -> Phrase:
    prefix = keyword.endswith("*")
    text = keyword.rstrip("*")
    parts = "".join(c if _is_word_char(c) else " " for c in text).split()
    # The prefilter is a whole word of the window, so it only applies to whole-word matching,
    # and not to the last part of a prefix keyword ("summar*" needs no word "summar").
    candidates = parts[:-1] if prefix else parts
    prefilter = max(candidates, key=len) if whole_word and candidates else None
    return Phrase(text, prefilter, prefix)


@dataclass(frozen=True, slots=True)
class Keywords:
    """Case-insensitive keywords; a trailing `*` matches any word ending.

    Plain words are looked up in the window's word set (one C-speed set intersection per
    rule); other keywords are found with `str.find` plus a word-boundary check, after a
    set lookup of one of their words rules most of them out.
    """

    order: tuple[str, ...]  # every keyword, lower-case, in configured order (for reasons)
    words: frozenset[str]
    phrases: tuple[Phrase, ...]
    whole_word: bool = True

    @classmethod
    def of(cls, keywords: Sequence[str], whole_word: bool = True) -> Keywords:
        lowered = tuple(k.lower() for k in keywords)
        words = frozenset(
            k for k in lowered if whole_word and k and all(_is_word_char(c) for c in k)
        )
        phrases = tuple(_phrase(k, whole_word) for k in lowered if k not in words)
        return cls(lowered, words, phrases, whole_word)

    def find(self, f: RequestFeatures) -> str | None:
        """The first keyword found in the request's instruction window, or None."""
        words = f.words  # a property: read it once
        if self.words:
            found = words & self.words
            if found:
                return next(k for k in self.order if k in found)
        text = f.window
        for phrase in self.phrases:
            if phrase.prefilter is not None and phrase.prefilter not in words:
                continue
            hit = _find(text, phrase.text, phrase.prefix, self.whole_word)
            if hit is not None:
                return hit
        return None


def _find(text: str, word: str, prefix: bool, whole: bool) -> str | None:
    i = text.find(word)
    while i >= 0:
        end = i + len(word)
        if not whole or (
            (i == 0 or not _is_word_char(text[i - 1]))
            and (prefix or end == len(text) or not _is_word_char(text[end]))
        ):
            if prefix:
                while end < len(text) and _is_word_char(text[end]):
                    end += 1
            return text[i:end]
        i = text.find(word, i + 1)
    return None


@dataclass(frozen=True, slots=True)
class Rule:
    """One compiled rule: every condition given must hold."""

    name: str
    tier: str
    max_prompt_tokens: int | None = None
    min_prompt_tokens: int | None = None
    keywords: Keywords | None = None
    pattern: re.Pattern[str] | None = None
    has_code: bool | None = None
    has_tools: bool | None = None
    wants_json: bool | None = None
    min_turns: int | None = None
    max_turns: int | None = None
    min_expected_output_tokens: int | None = None
    max_expected_output_tokens: int | None = None
    languages: frozenset[str] | None = None
    tags: frozenset[str] | None = None

    def match(self, f: RequestFeatures, tags: Collection[str] = ()) -> str | None:
        """None when a condition fails; else the matched text ("" when no text condition)."""
        if self.max_prompt_tokens is not None and f.prompt_tokens > self.max_prompt_tokens:
            return None
        if self.min_prompt_tokens is not None and f.prompt_tokens < self.min_prompt_tokens:
            return None
        if self.has_code is not None and f.has_code != self.has_code:
            return None
        if self.has_tools is not None and f.has_tools != self.has_tools:
            return None
        if self.wants_json is not None and f.wants_json != self.wants_json:
            return None
        if self.min_turns is not None and f.turns < self.min_turns:
            return None
        if self.max_turns is not None and f.turns > self.max_turns:
            return None
        out = f.expected_output_tokens
        if self.min_expected_output_tokens is not None and out < self.min_expected_output_tokens:
            return None
        if self.max_expected_output_tokens is not None and out > self.max_expected_output_tokens:
            return None
        if self.tags is not None and self.tags.isdisjoint(tags):
            return None
        if self.languages is not None and f.language not in self.languages:
            return None
        hit = ""
        if self.keywords is not None:
            found = self.keywords.find(f)
            if found is None and self.pattern is None:
                return None
            hit = found or ""
        if self.pattern is not None and not hit:
            m = self.pattern.search(f.window)
            if m is None:
                return None
            hit = m.group(0)
        return hit

    def explain(self, f: RequestFeatures, hit: str, tags: Collection[str] = ()) -> str:
        """Why this rule matched, in words (only built for the winning rule)."""
        why = [f"{f.prompt_tokens} prompt tokens"]
        if self.max_prompt_tokens is not None:
            why[0] += f" <= {self.max_prompt_tokens}"
        if self.min_prompt_tokens is not None:
            why[0] += f" >= {self.min_prompt_tokens}"
        if self.has_code is not None:
            why.append("code" if f.has_code else "no code")
        if self.has_tools is not None:
            why.append("tools" if f.has_tools else "no tools")
        if self.wants_json is not None:
            why.append("JSON output" if f.wants_json else "no JSON output")
        if self.min_turns is not None or self.max_turns is not None:
            why.append(f"{f.turns} user turns")
        if (
            self.min_expected_output_tokens is not None
            or self.max_expected_output_tokens is not None
        ):
            why.append(f"~{f.expected_output_tokens} output tokens expected")
        if self.tags is not None:
            why.append(f"tags {sorted(self.tags.intersection(tags))}")
        if self.languages is not None:
            why.append(f"language {f.language}")
        if hit:
            why.append(f"matched {hit.strip()[:40]!r}")
        return f"{self.name}: {', '.join(why)}"


def compile_rule(config: RuleConfig, index: int) -> Rule:
    """Compile one configured rule; raises `re.error` for an invalid regex."""
    pattern = None
    if config.regex:
        pattern = re.compile("|".join(f"(?:{rx})" for rx in config.regex), re.IGNORECASE)
    return Rule(
        name=config.name or f"rule {index + 1}",
        tier=config.tier,
        max_prompt_tokens=config.max_prompt_tokens,
        min_prompt_tokens=config.min_prompt_tokens,
        keywords=Keywords.of(config.keywords, config.whole_word) if config.keywords else None,
        pattern=pattern,
        has_code=config.has_code,
        has_tools=config.has_tools,
        wants_json=config.wants_json,
        min_turns=config.min_turns,
        max_turns=config.max_turns,
        min_expected_output_tokens=config.min_expected_output_tokens,
        max_expected_output_tokens=config.max_expected_output_tokens,
        languages=frozenset(x.lower() for x in config.languages) if config.languages else None,
        tags=frozenset(config.tags) if config.tags else None,
    )


REASONING = (
    "step by step",
    "step-by-step",
    "multi-step",
    "prove",
    "proof",
    "derive",
    "derivation",
    "theorem",
    "trade-off",
    "trade-offs",
    "tradeoff",
    "tradeoffs",
    "pros and cons",
    "compare and contrast",
    "system design",
    "design a system",
    "architecture",
    "root cause",
    "reason through",
    "think through",
    "think carefully",
    "in-depth",
    "strategy",
    "strategic",
    "implications",
    "optimal",
    "optimize",
    "optimise",
    "optimization",
    "probability",
    "how many ways",
    "puzzle",
    "riddle",
)
CODING = (
    "python",
    "javascript",
    "typescript",
    "java",
    "golang",
    "rust",
    "c++",
    "sql",
    "regex",
    "refactor",
    "debug",
    "debugging",
    "stack trace",
    "traceback",
    "unit test",
    "unit tests",
    "function that",
    "write a function",
    "write a script",
    "bash",
    "compile",
    "compiler",
    "implement",
    "implementation",
    "api endpoint",
    "dockerfile",
)
GREETING_FAQ = (
    "hi",
    "hello",
    "hey",
    "thanks",
    "thank you",
    "good morning",
    "good evening",
    "hours",
    "opening",
    "reset my password",
    "password",
    "refund",
    "refunds",
    "shipping",
    "delivery",
    "track my order",
    "cancel my",
    "contact",
    "pricing",
    "where is",
    "how do i",
    "what is",
    "who are you",
)
EXTRACTION_SUMMARY = (
    "extract",
    "extraction",
    "summarize",
    "summarise",
    "summary",
    "tl;dr",
    "tldr",
    "classify",
    "categorize",
    "categorise",
    "translate",
    "rewrite",
    "rephrase",
    "paraphrase",
    "proofread",
    "list the",
    "convert",
    "sentiment",
    "keywords",
    "entities",
)


def default_rules(tiers: tuple[str, ...]) -> tuple[Rule, ...]:
    """The built-in table, mapped onto the first, middle and last configured tiers.

    Order matters (the first match wins): reasoning and code are checked before the
    cheap patterns so that "hi, can you prove..." is not sent to the cheapest tier.
    """
    low, mid, high = tiers[0], tiers[len(tiers) // 2], tiers[-1]
    return (
        Rule("multi-step reasoning", high, keywords=Keywords.of(REASONING)),
        Rule("long context", mid, min_prompt_tokens=12_000),
        Rule("code", mid, has_code=True),
        Rule("coding task", mid, keywords=Keywords.of(CODING)),
        Rule("tools", mid, has_tools=True),
        Rule("greeting or FAQ", low, max_prompt_tokens=300, keywords=Keywords.of(GREETING_FAQ)),
        Rule("long output", mid, min_expected_output_tokens=1500),
        Rule(
            "extraction or summary",
            low,
            max_prompt_tokens=6000,
            keywords=Keywords.of(EXTRACTION_SUMMARY),
        ),
        Rule("JSON output", low, max_prompt_tokens=4000, wants_json=True),
        Rule("deep conversation", mid, min_turns=6),
        Rule("medium prompt", mid, min_prompt_tokens=2000),
        Rule("short and simple", low, max_prompt_tokens=2000),
    )


def decide_tier(
    rules: tuple[Rule, ...], features: RequestFeatures, tags: Collection[str] = ()
) -> tuple[str, str] | None:
    """(tier, reason) from the first matching rule."""
    for rule in rules:
        hit = rule.match(features, tags)
        if hit is not None:
            return rule.tier, rule.explain(features, hit, tags)
    return None
