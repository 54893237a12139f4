"""The `rules` strategy: ordered rules over request features; the first that matches decides.

With no rules configured, a built-in table routes by prompt length, code, tools, JSON output,
conversation depth, reasoning cues and expected output length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tiergate.config.schema import RuleConfig
from tiergate.routing.features import RequestFeatures


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    tier: str
    max_prompt_tokens: int | None = None
    min_prompt_tokens: int | None = None
    pattern: re.Pattern[str] | None = None
    has_code: bool | None = None
    has_tools: bool | None = None
    wants_json: bool | None = None
    min_turns: int | None = None
    min_expected_output_tokens: int | None = None

    def match(self, f: RequestFeatures) -> str | None:
        """The reason text when every condition holds, else None."""
        why: list[str] = []
        if self.max_prompt_tokens is not None:
            if f.prompt_tokens > self.max_prompt_tokens:
                return None
            why.append(f"{f.prompt_tokens} prompt tokens <= {self.max_prompt_tokens}")
        if self.min_prompt_tokens is not None:
            if f.prompt_tokens < self.min_prompt_tokens:
                return None
            why.append(f"{f.prompt_tokens} prompt tokens >= {self.min_prompt_tokens}")
        if self.has_code is not None:
            if f.has_code != self.has_code:
                return None
            why.append("code" if f.has_code else "no code")
        if self.has_tools is not None:
            if f.has_tools != self.has_tools:
                return None
            why.append("tools" if f.has_tools else "no tools")
        if self.wants_json is not None:
            if f.wants_json != self.wants_json:
                return None
            why.append("JSON output" if f.wants_json else "no JSON output")
        if self.min_turns is not None:
            if f.turns < self.min_turns:
                return None
            why.append(f"{f.turns} turns")
        if self.min_expected_output_tokens is not None:
            if f.expected_output_tokens < self.min_expected_output_tokens:
                return None
            why.append(f"~{f.expected_output_tokens} output tokens expected")
        if self.pattern is not None:
            m = self.pattern.search(f.text)
            if m is None:
                return None
            why.append(f"matched {m.group(0).strip()!r}")
        return ", ".join(why) or "always"


def compile_rule(config: RuleConfig, index: int) -> Rule:
    """Compile one configured rule; raises `re.error` for an invalid regex."""
    parts: list[str] = []
    for kw in config.keywords or ():
        escaped = re.escape(kw)
        parts.append(rf"\b{escaped}\b" if config.whole_word else escaped)
    parts.extend(f"(?:{rx})" for rx in config.regex or ())
    pattern = re.compile("|".join(parts), re.IGNORECASE) if parts else None
    return Rule(
        name=config.name or f"rule {index + 1}",
        tier=config.tier,
        max_prompt_tokens=config.max_prompt_tokens,
        min_prompt_tokens=config.min_prompt_tokens,
        pattern=pattern,
        has_code=config.has_code,
        has_tools=config.has_tools,
        wants_json=config.wants_json,
        min_turns=config.min_turns,
        min_expected_output_tokens=config.min_expected_output_tokens,
    )


_REASONING = (
    r"step[- ]by[- ]step|prove|proof|derive|trade-?offs?|analy[sz]e|architecture|"
    r"design (?:a|an|the)|multi-step|reason(?:ing)? about|compare and contrast|optimi[sz]e"
)


def default_rules(tiers: tuple[str, ...]) -> tuple[Rule, ...]:
    """The built-in table, mapped onto the first, middle and last configured tiers."""
    low, mid, high = tiers[0], tiers[len(tiers) // 2], tiers[-1]
    return (
        Rule("long context", high, min_prompt_tokens=8000),
        Rule("reasoning", high, pattern=re.compile(rf"\b(?:{_REASONING})\b", re.IGNORECASE)),
        Rule("long output", mid, min_expected_output_tokens=1500),
        Rule("code", mid, has_code=True),
        Rule("tools", mid, has_tools=True),
        Rule("deep conversation", mid, min_turns=6),
        Rule("medium prompt", mid, min_prompt_tokens=1000),
        Rule("short and simple", low, max_prompt_tokens=1000),
    )


def decide_tier(rules: tuple[Rule, ...], features: RequestFeatures) -> tuple[str, str] | None:
    """(tier, reason) from the first matching rule."""
    for rule in rules:
        why = rule.match(features)
        if why is not None:
            return rule.tier, f"{rule.name}: {why}"
    return None
