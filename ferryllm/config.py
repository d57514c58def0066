"""TOML configuration → frozen dataclasses. Every problem names its TOML key.

The data shapes below are the contract the rest of the gateway reads; `load_config` /
`parse_config` build them and validate (see docs/configuration.md)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

REASONING_POLICIES = ("preserve", "fill_missing", "cap", "force")
REASONING_EFFORTS = ("minimal", "low", "medium", "high", "max")
PROVIDER_TYPES = ("openai", "anthropic")
DEFAULT_CACHE_STRIP_PREFIXES = ("x-anthropic-billing-header:",)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    listen: str = "0.0.0.0:3000"
    request_timeout_secs: float = 120.0
    body_limit_mb: float = 32.0
    max_concurrent_requests: int | None = None
    rate_limit_per_minute: int | None = None
    retry_attempts: int = 0
    retry_backoff_ms: int = 100
    retry_backoff_max_ms: int = 10_000
    circuit_breaker_failures: int | None = None
    circuit_breaker_cooldown_secs: float = 30.0
    default_reasoning_effort: str | None = None
    max_reasoning_effort: str | None = None
    reasoning_policy: str = "fill_missing"
    stream_idle_timeout_secs: float | None = None  # None: request_timeout_secs
    shutdown_grace_secs: float = 10.0
    keepalive_interval_secs: float = 15.0
    max_header_size: int = 16 * 1024

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)

    @property
    def idle_timeout(self) -> float:
        return self.stream_idle_timeout_secs or self.request_timeout_secs


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    level: str = "info"
    format: str = "text"


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class AuthConfig:
    enabled: bool = False
    api_keys_env: str | None = None
    api_keys_file: str | None = None
    per_key_rate_limit_per_minute: int | None = None
    per_key_max_concurrent_requests: int | None = None
    keys: tuple[str, ...] = ()  # resolved at load time; never logged


@dataclass(frozen=True, slots=True)
class PromptCacheConfig:
    strip_system_prefixes: tuple[str, ...] = DEFAULT_CACHE_STRIP_PREFIXES
    prompt_cache_key: bool = True  # send a stable prompt_cache_key to OpenAI-compatible providers


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    name: str
    type: str  # "openai" | "anthropic"
    base_url: str  # normalised: no trailing "/" and no trailing "/v1"
    api_key: str | None = field(default=None, repr=False)  # resolved from api_key/_env/_file
    headers: tuple[tuple[str, str], ...] = ()
    max_tokens_cap: int | None = None
    max_completion_tokens: bool = False  # send max_completion_tokens instead of max_tokens
    reasoning_history: bool = False  # send earlier thinking back as reasoning_content
    timeout_secs: float | None = None
    max_connections: int = 1024


@dataclass(frozen=True, slots=True)
class RouteConfig:
    match: str
    provider: str
    match_type: str = "prefix"  # "prefix" | "exact"; match "*" is the catch-all
    rewrite_model: str | None = None
    fallback_providers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    prompt_cache: PromptCacheConfig = field(default_factory=PromptCacheConfig)
    providers: tuple[ProviderConfig, ...] = ()
    routes: tuple[RouteConfig, ...] = ()
    source: str | None = None  # path the config was read from
    warnings: tuple[str, ...] = ()  # unknown keys etc., reported by `serve`

    def provider(self, name: str) -> ProviderConfig:
        for p in self.providers:
            if p.name == name:
                return p
        raise KeyError(name)


def normalise_base_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if url.endswith("/v1"):
        url = url[:-3].rstrip("/")
    return url


def parse_config(data: dict[str, Any], *, source: str | None = None, strict: bool = False,
                 environ: dict[str, str] | None = None) -> Config:
    """Validate a decoded TOML document. Raises `ConfigError` listing every problem."""
    raise NotImplementedError  # written by the config work


class ConfigError(Exception):
    """Every problem found, each naming its TOML key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
