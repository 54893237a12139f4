"""The `rules` strategy: ordered rules over request features; the first that matches decides.

A route's rules are prepared once at config load into a `RuleTable`: each rule's numeric
and flag conditions become plain bounds (a few comparisons, no None checks), and every
word the table's keywords look up goes into one `Vocabulary`, so that the instruction
window is split and searched once per decision, and only when a keyword rule is reached.
Text conditions are checked last; the reason text is only built for the winning rule.
With no rules configured, `default_rules` routes greetings and FAQ to the cheapest tier,
extraction and summaries to the cheapest or middle tier, code to the middle tier and
multi-step reasoning to the top tier.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from tiergate.config.schema import RuleConfig
from tiergate.routing.features import RequestFeatures, Vocabulary


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

    Plain words are looked up among the window's words that are in the route's vocabulary
    (see `Vocabulary`); other keywords are found with `str.find` plus a word-boundary check,
    after a lookup of one of their words rules most of them out.
    """

    order: tuple[str, ...]  # every keyword, lower-case, in configured order (for reasons)
    words: frozenset[str]
    phrases: tuple[Phrase, ...]
    whole_word: bool = True
    # Every word `find` may look up, and whether some phrase must be searched regardless.
    lookups: frozenset[str] = field(default=frozenset(), compare=False)
    always_search: bool = field(default=False, compare=False)

    @classmethod
    def of(cls, keywords: Sequence[str], whole_word: bool = True) -> Keywords:
        lowered = tuple(k.lower() for k in keywords)
        words = frozenset(
            k for k in lowered if whole_word and k and all(_is_word_char(c) for c in k)
        )
        phrases = tuple(_phrase(k, whole_word) for k in lowered if k not in words)
        prefilters = {p.prefilter for p in phrases if p.prefilter is not None}
        always = any(p.prefilter is None for p in phrases)
        return cls(lowered, words, phrases, whole_word, words | prefilters, always)

    def find(self, found: frozenset[str], window: str) -> str | None:
        """The first keyword in the instruction window `window`, or None; `found` holds the
        window's words among (at least) `lookups`."""
        if not self.always_search and self.lookups.isdisjoint(found):
            return None
        if self.words:
            hits = found & self.words
            if hits:
                return next(k for k in self.order if k in hits)
        for phrase in self.phrases:
            if phrase.prefilter is not None and phrase.prefilter not in found:
                continue
            hit = _find(window, phrase.text, phrase.prefix, self.whole_word)
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


_NO_LIMIT = 1 << 62
_CODE, _TOOLS, _JSON = 1, 2, 4  # bits of `RuleTable.decide`'s request flags


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
    # The conditions above as bounds and a flag mask, derived once (see `RuleTable.decide`).
    bounds: tuple[int, int, int, int, int, int] = field(init=False, repr=False, compare=False)
    flag_mask: int = field(init=False, repr=False, compare=False)
    flag_want: int = field(init=False, repr=False, compare=False)
    numeric_only: bool = field(init=False, repr=False, compare=False)
    keywords_only: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        def lo(x: int | None) -> int:
            return -_NO_LIMIT if x is None else x

        def hi(x: int | None) -> int:
            return _NO_LIMIT if x is None else x

        bounds = (
            lo(self.min_prompt_tokens),
            hi(self.max_prompt_tokens),
            lo(self.min_turns),
            hi(self.max_turns),
            lo(self.min_expected_output_tokens),
            hi(self.max_expected_output_tokens),
        )
        mask = want = 0
        flags = ((_CODE, self.has_code), (_TOOLS, self.has_tools), (_JSON, self.wants_json))
        for bit, wanted in flags:
            if wanted is not None:
                mask |= bit
                want |= bit if wanted else 0
        numeric = self.keywords is None and self.pattern is None and self.languages is None
        object.__setattr__(self, "bounds", bounds)
        object.__setattr__(self, "flag_mask", mask)
        object.__setattr__(self, "flag_want", want)
        object.__setattr__(self, "numeric_only", numeric and self.tags is None)
        others = self.pattern is None and self.languages is None and self.tags is None
        object.__setattr__(self, "keywords_only", self.keywords is not None and others)

    def match(
        self, f: RequestFeatures, tags: Collection[str] = (), found: frozenset[str] | None = None
    ) -> str | None:
        """None when a condition fails; else the matched text ("" when no text condition).

        `found`: the window's words among this rule's keyword lookups, when already known."""
        flags = (_CODE if f.has_code else 0) | (_TOOLS if f.has_tools else 0)
        flags |= _JSON if f.wants_json else 0
        if not self.admits(f.prompt_tokens, f.turns, f.expected_output_tokens, flags):
            return None
        return self.match_text(f, tags, found)

    def admits(self, prompt_tokens: int, turns: int, output_tokens: int, flags: int) -> bool:
        """The numeric and flag conditions."""
        lo_p, hi_p, lo_t, hi_t, lo_o, hi_o = self.bounds
        return (
            lo_p <= prompt_tokens <= hi_p
            and lo_t <= turns <= hi_t
            and lo_o <= output_tokens <= hi_o
            and flags & self.flag_mask == self.flag_want
        )

    def match_text(
        self, f: RequestFeatures, tags: Collection[str], found: frozenset[str] | None
    ) -> str | None:
        """The tag, language, keyword and pattern conditions (after `admits`)."""
        if self.tags is not None and self.tags.isdisjoint(tags):
            return None
        if self.languages is not None and f.language not in self.languages:
            return None
        hit = ""
        if self.keywords is not None:
            if found is None:
                found = Vocabulary.of(self.keywords.lookups).in_window(f.window)
            hit_or_none = self.keywords.find(found, f.window)
            if hit_or_none is None and self.pattern is None:
                return None
            hit = hit_or_none or ""
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


def _breaks(bounds: Sequence[tuple[int, int]]) -> tuple[int, ...]:
    """Where `lo <= x <= hi` can change for some (lo, hi): `bisect_right` of x over these
    points is the same for two values exactly when every such condition agrees on them."""
    points = {lo for lo, _ in bounds if lo > -_NO_LIMIT} | {
        hi + 1 for _, hi in bounds if hi < _NO_LIMIT
    }
    return tuple(sorted(points))


@dataclass(frozen=True, slots=True)
class RuleTable:
    """A route's rules, in order, prepared for deciding.

    `vocabulary`: every word the rules' keywords look up. The numeric and flag conditions
    depend on a request only through which side of each threshold its numbers fall, so
    the rules they admit are computed once per combination (`_gate`), not per request.
    """

    rules: tuple[Rule, ...] = ()
    vocabulary: Vocabulary = field(default_factory=lambda: Vocabulary.of(()), compare=False)
    prompt_breaks: tuple[int, ...] = field(default=(), compare=False)
    turn_breaks: tuple[int, ...] = field(default=(), compare=False)
    output_breaks: tuple[int, ...] = field(default=(), compare=False)
    # (threshold sides, flags) -> the admitted rules, in order; at most one entry per
    # combination, so bounded by the table itself.
    _gates: dict[tuple[int, int, int, int], tuple[Rule, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def of(cls, rules: Sequence[Rule]) -> RuleTable:
        words = [w for r in rules if r.keywords is not None for w in r.keywords.lookups]
        return cls(
            tuple(rules),
            Vocabulary.of(words),
            _breaks([r.bounds[0:2] for r in rules]),
            _breaks([r.bounds[2:4] for r in rules]),
            _breaks([r.bounds[4:6] for r in rules]),
        )

    def __len__(self) -> int:
        return len(self.rules)

    def _gate(self, prompt: int, turns: int, out: int, flags: int) -> tuple[Rule, ...]:
        """The rules whose numeric and flag conditions hold (`Rule.admits`), in order."""
        key = (
            bisect_right(self.prompt_breaks, prompt),
            bisect_right(self.turn_breaks, turns),
            bisect_right(self.output_breaks, out),
            flags,
        )
        admitted = self._gates.get(key)
        if admitted is None:
            admitted = tuple(r for r in self.rules if r.admits(prompt, turns, out, flags))
            self._gates[key] = admitted
        return admitted

    def decide(self, f: RequestFeatures, tags: Collection[str] = ()) -> tuple[str, str] | None:
        """(tier, reason) from the first matching rule.

        The window's vocabulary words are looked up once, when the first rule with
        keywords is reached (never when an earlier rule decides)."""
        flags = (_CODE if f.has_code else 0) | (_TOOLS if f.has_tools else 0)
        flags |= _JSON if f.wants_json else 0
        found: frozenset[str] | None = None
        for rule in self._gate(f.prompt_tokens, f.turns, f.expected_output_tokens, flags):
            if rule.numeric_only:
                return rule.tier, rule.explain(f, "", tags)
            keywords = rule.keywords
            if keywords is not None:
                if found is None:
                    found = self.vocabulary.in_window(f.window)
                if rule.keywords_only:  # the common case, without `match_text`
                    if not keywords.always_search and keywords.lookups.isdisjoint(found):
                        continue
                    hit = keywords.find(found, f.window)
                    if hit is not None:
                        return rule.tier, rule.explain(f, hit, tags)
                    continue
            hit = rule.match_text(f, tags, found)
            if hit is not None:
                return rule.tier, rule.explain(f, hit, tags)
        return None
