"""The YAML configuration schema. Unknown keys are errors: a typo must not silently pass."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from tiergate.providers.http1_proxy import DIRECT, parse_proxy

ProviderKind = Literal["openai", "anthropic", "gemini"]
Capability = Literal["tools", "vision", "json_schema", "streaming", "embeddings"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TimeoutConfig(Strict):
    connect: float = Field(5.0, gt=0, description="seconds to open the connection")
    first_byte: float = Field(60.0, gt=0, description="seconds until response headers")
    inactivity: float = Field(30.0, gt=0, description="seconds between stream chunks")
    total: float = Field(600.0, gt=0, description="seconds for the whole attempt")


class ProviderConfig(Strict):
    # A rejected value is not repeated in error text: a proxy URL or api_key is a secret.
    model_config = ConfigDict(hide_input_in_errors=True)

    kind: ProviderKind
    base_url: str
    api_key: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: TimeoutConfig = Field(default_factory=TimeoutConfig)
    max_connections: int = Field(256, ge=1)
    anthropic_version: str = "2023-06-01"
    # http://[user:password@]host[:port], "direct", or unset: HTTPS_PROXY / HTTP_PROXY /
    # NO_PROXY from the environment. Hidden from repr: the URL may hold a password.
    proxy: str | None = Field(None, repr=False)

    @model_validator(mode="after")
    def _url_scheme(self) -> ProviderConfig:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://: {self.base_url!r}")
        return self

    @field_validator("proxy")
    @classmethod
    def _proxy_url(cls, proxy: str | None) -> str | None:
        if proxy is not None and proxy != DIRECT:
            parse_proxy(proxy)  # its ValueError never repeats the URL (it may hold a password)
        return proxy


class PriceConfig(Strict):
    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(None, ge=0)
    cache_write: float | None = Field(None, ge=0)


class DeploymentConfig(Strict):
    provider: str
    model: str | None = None  # upstream model id; defaults to the model's name
    weight: float = Field(1.0, gt=0)


class ModelConfig(Strict):
    provider: str | None = None
    model: str | None = None
    deployments: list[DeploymentConfig] | None = None
    tier: str | None = None
    price: PriceConfig | None = None
    context_window: int | None = Field(None, ge=1)
    max_output: int | None = Field(None, ge=0)
    capabilities: list[Capability] | None = None

    @model_validator(mode="after")
    def _one_binding(self) -> ModelConfig:
        if self.deployments is not None and (self.provider or self.model):
            raise ValueError("give either provider/model or deployments, not both")
        return self


class RuleConfig(Strict):
    """One rule of the `rules` strategy: every condition given must hold."""

    tier: str
    name: str | None = None
    max_prompt_tokens: int | None = Field(None, ge=0)
    min_prompt_tokens: int | None = Field(None, ge=0)
    keywords: list[str] | None = None
    regex: list[str] | None = None
    whole_word: bool = True
    has_code: bool | None = None
    has_tools: bool | None = None
    wants_json: bool | None = None
    min_turns: int | None = Field(None, ge=0)
    max_turns: int | None = Field(None, ge=0)
    min_expected_output_tokens: int | None = Field(None, ge=0)
    max_expected_output_tokens: int | None = Field(None, ge=0)
    languages: list[str] | None = None  # ISO 639-1 codes of the prompt's language
    tags: list[str] | None = None  # request metadata tags; any one matches


class StaticRuleConfig(Strict):
    """One line of the `static` strategy: by endpoint, virtual key, tags or metadata."""

    tier: str | None = None
    models: list[str] | None = None
    endpoint: str | None = None  # "chat" or "messages"
    key: str | None = None  # virtual key name
    tags: list[str] | None = None  # any one of these request tags
    metadata: dict[str, str] | None = None  # every pair must be in the request metadata

    @model_validator(mode="after")
    def _one_target(self) -> StaticRuleConfig:
        if (self.tier is None) == (self.models is None):
            raise ValueError("give exactly one of tier or models")
        return self


class ClassifierConfig(Strict):
    """The `classifier` strategy: a budget model labels SIMPLE / MODERATE / COMPLEX."""

    model: str
    timeout: float = Field(2.0, gt=0, description="seconds; then the default tier")
    labels: dict[str, str] | None = None  # label -> tier; default cheapest/middle/top
    cache_size: int = Field(10_000, ge=0)
    max_prompt_chars: int = Field(4000, ge=100, description="the prompt is cut to this")


class LearnedConfig(Strict):
    """The `learned` strategy: a trained router predicts each model's quality."""

    path: str
    tolerance: float = Field(0.05, ge=0, le=1, description="quality points below the best")
    reload_interval: float = Field(5.0, gt=0, description="seconds between file checks")


class JudgeConfig(Strict):
    model: str
    threshold: float = Field(0.7, ge=0, le=1)
    timeout: float = Field(5.0, gt=0)


class ValidatorsConfig(Strict):
    """How a cascade or speculative route decides that a cheap answer is good enough."""

    non_empty: bool = True
    no_refusal: bool = True
    json_schema: bool = True  # when the request asks for JSON / a schema
    tool_arguments: bool = True  # when the answer calls tools
    min_chars: int | None = Field(None, ge=0)
    max_chars: int | None = Field(None, ge=0)
    regex: str | None = None  # the answer must match (case-insensitive search)
    judge: JudgeConfig | None = None


class CascadeConfig(Strict):
    validators: ValidatorsConfig = Field(default_factory=ValidatorsConfig)
    max_steps: int = Field(3, ge=1, le=10, description="tiers tried at most")


class SpeculativeConfig(Strict):
    validators: ValidatorsConfig = Field(default_factory=ValidatorsConfig)
    deadline_ms: float = Field(3000.0, gt=0, description="the cheap answer must pass by then")
    premium_tier: str | None = None  # default: the highest tier


class DomainPolicyConfig(Strict):
    min_tier: str | None = None
    blocked_models: list[str] = Field(default_factory=list)


class PolicyConfig(Strict):
    """Per-route policy; per-request controls can only tighten it."""

    domains: dict[str, DomainPolicyConfig] = Field(default_factory=dict)
    min_tier: str | None = None
    max_tier: str | None = None
    latency_budget_ms: float | None = Field(None, gt=0)
    max_cost_usd: float | None = Field(None, ge=0)
    blocked_models: list[str] = Field(default_factory=list)


class FallbackConfig(Strict):
    retries: int = Field(1, ge=0, le=10, description="extra attempts on the same deployment")
    backoff_base: float = Field(0.1, ge=0)
    backoff_max: float = Field(2.0, ge=0)
    retry_after_cap: float = Field(5.0, ge=0)
    other_deployments: bool = True
    other_models: bool = True
    tier_up: bool = True
    max_attempts: int = Field(6, ge=1, le=50)


class BudgetConfig(Strict):
    """Spend limit over a period; `total` never resets."""

    usd: float = Field(ge=0)
    period: Literal["day", "month", "total"] = "month"


class SemanticCacheConfig(Strict):
    """Serve an answer to a similar enough earlier prompt (same tenant, same route)."""

    threshold: float = Field(0.92, gt=0, le=1, description="cosine similarity to match")
    multi_turn: bool = False  # also for conversations with earlier turns
    tools: bool = False  # also for requests that offer tools
    max_entries: int = Field(2000, ge=1, description="per tenant and route")


class RouteCacheConfig(Strict):
    enabled: bool = True
    ttl: float = Field(300.0, gt=0, description="seconds an answer stays cached")
    allow_temperature: bool = False  # cache requests with temperature > 0 too
    semantic: SemanticCacheConfig | None = None


class RouteConfig(Strict):
    strategy: str | list[str] = "rules"
    tier: str | None = None
    models: list[str] | None = None
    default_tier: str | None = None
    baseline: str | None = None
    static: list[StaticRuleConfig] | None = None
    rules: list[RuleConfig] | None = None
    classifier: ClassifierConfig | None = None
    learned: LearnedConfig | None = None
    cascade: CascadeConfig | None = None
    speculative: SpeculativeConfig | None = None
    policies: PolicyConfig = Field(default_factory=PolicyConfig)
    fallback: FallbackConfig = Field(default_factory=FallbackConfig)
    cache: RouteCacheConfig = Field(default_factory=RouteCacheConfig)
    budget: BudgetConfig | None = None
    # Keep each request's prompt text (redacted) in the ledger's prompts table, so that
    # `tiergate report --export-outcomes` can turn scored traffic into outcome records.
    # Off by default: prompts are the users' data and the ledger is kept for long.
    record_prompts: bool = False


class KeyConfig(Strict):
    name: str
    key: str
    budget_usd: float | None = Field(None, ge=0)
    period: Literal["day", "month", "total"] = "month"
    rpm: int | None = Field(None, ge=1)
    tpm: int | None = Field(None, ge=1)
    models: list[str] = Field(default_factory=list)  # allow-lists; empty allows everything
    tiers: list[str] = Field(default_factory=list)
    routes: list[str] = Field(default_factory=list)


class ServerConfig(Strict):
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    max_json_depth: int = Field(64, ge=4)
    require_key: bool | None = None  # default: required when any key is configured


class LedgerConfig(Strict):
    url: str = "sqlite:///tiergate.db"  # or postgresql://..., or memory:// (nothing kept)
    table_prefix: str = Field("tiergate_", pattern=r"^[a-z_][a-z0-9_]{0,40}$")
    batch_size: int = Field(256, ge=1)
    flush_interval: float = Field(0.25, gt=0)
    # A directory for the ledger spool: each row is on disk before its response completes,
    # so a killed process or a database outage loses none (docs/scaling.md). Instances on
    # one host may share it: any of them replays a dead one's rows.
    spool_dir: str | None = None
    spool_fsync: bool = False  # also survive a power cut: one fsync per request


class StoreConfig(Strict):
    """Where virtual keys live; by default the ledger's database."""

    url: str | None = None
    refresh_interval: float = Field(2.0, gt=0, description="seconds between key reloads")


class RedisConfig(Strict):
    """Shared state for several gateway instances: rate limits, budgets, exact cache."""

    url: str
    prefix: str = "tiergate:"


class CacheConfig(Strict):
    backend: Literal["auto", "memory", "redis"] = "auto"  # auto: redis when configured
    max_entries: int = Field(10_000, ge=1, description="in-process exact cache size")


class CircuitConfig(Strict):
    failure_threshold: int = Field(3, ge=1)
    cooldown: float = Field(10.0, gt=0)


class ObservabilityConfig(Strict):
    """Request logs, metrics and the dashboard."""

    # Where the one-JSON-line-per-request log goes: "stdout", "stderr", "off" or a file path.
    request_log: str = "stdout"
    metrics: bool = True
    max_key_labels: int = Field(20, ge=1, description="keys named in metrics; the rest: 'other'")
    admin_key: str | None = None  # the dashboard's key; default: $TIERGATE_ADMIN_KEY
    # When set, GET /metrics wants it (or the admin key) as a Bearer token; unset: open.
    metrics_token: str | None = Field(None, min_length=1)
    window: float = Field(3600.0, gt=0, description="seconds of history the dashboard keeps")
    bucket: float = Field(10.0, gt=0, description="seconds per dashboard time bucket")


class QualityJudgeConfig(Strict):
    """LLM-judge scoring of a sample of answers."""

    model: str
    rubric: str | None = None  # default: a general helpfulness/correctness rubric
    sample: float = Field(0.0, ge=0, le=1, description="share of each route's answers to judge")
    max_concurrent: int = Field(4, ge=1)


class RouteQualityConfig(Strict):
    sample: float | None = Field(None, ge=0, le=1)
    threshold: float | None = Field(None, ge=0, le=1)


class QualityConfig(Strict):
    """Feedback and judge scores: moving averages per route and model, and alerts."""

    judge: QualityJudgeConfig | None = None
    threshold: float = Field(0.7, ge=0, le=1, description="alert below this moving average")
    window: int = Field(50, ge=1, description="scores in each moving average")
    min_samples: int = Field(10, ge=1, description="scores needed before an alert")
    routes: dict[str, RouteQualityConfig] = Field(default_factory=dict)
    outcomes_path: str | None = None  # append judge/feedback scores here as outcome records


class Config(Strict):
    tiers: list[str] = Field(default_factory=lambda: ["budget", "standard", "premium"])
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    routes: dict[str, RouteConfig] = Field(default_factory=dict)
    keys: list[KeyConfig] = Field(default_factory=list)
    server: ServerConfig = Field(default_factory=ServerConfig)
    ledger: LedgerConfig = Field(default_factory=LedgerConfig)
    circuit: CircuitConfig = Field(default_factory=CircuitConfig)
    observability: ObservabilityConfig = Field(default_factory=ObservabilityConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    redis: RedisConfig | None = None
    cache: CacheConfig = Field(default_factory=CacheConfig)
    use_catalog: bool = Field(True, description="also offer catalog models whose provider exists")
    # YAML line of each dotted path ("routes.auto.rules.0"), filled in by the loader so
    # that semantic checks after validation can name the line too.
    _lines: dict[str, int] = PrivateAttr(default_factory=dict)

    def line_of(self, path: str) -> int | None:
        """The YAML line of a dotted config path, or of its nearest located parent."""
        while path:
            line = self._lines.get(path)
            if line is not None:
                return line
            path = path.rpartition(".")[0]
        return None
