"""TOML configuration → frozen dataclasses. Every problem names its TOML key.

The data shapes below are the contract the rest of the gateway reads; `load_config` /
`parse_config` build them and validate (see docs/configuration.md)."""
from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import config_shared
from . import config_values as cv
from . import protocols
from .config_pools import KEY_SOURCES, KeyConfig  # noqa: F401 - part of this module's API
from .config_pools import BALANCES, keys_array, provider_key, provider_keys, route_pool, weights
from .config_shared import ClientConfig, SharedStateConfig  # noqa: F401 - part of the API
from .config_values import normalise_base_url  # noqa: F401 - part of this module's API
from .ir import EFFORT_ORDER

REASONING_POLICIES = ("preserve", "fill_missing", "cap", "force")
REASONING_EFFORTS = EFFORT_ORDER  # minimal < low < medium < high < xhigh < max
DEFAULT_CACHE_STRIP_PREFIXES = ("x-anthropic-billing-header:",)
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
MATCH_TYPES = ("prefix", "exact")
ANTHROPIC_VERSIONS = ("2023-06-01", "2026-10-21")  # what the Anthropic adapter knows the rules of


@dataclass(frozen=True, slots=True)
class ServerConfig:
    listen: str = "0.0.0.0:3000"
    request_timeout_secs: float = 120.0
    body_limit_mb: float = 32.0
    max_concurrent_requests: int | None = 4096  # bounded by default; 0 in the file turns it off
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
    clients: tuple[ClientConfig, ...] = ()  # [[auth.clients]]: named keys with their own limits


@dataclass(frozen=True, slots=True)
class PromptCacheConfig:
    strip_system_prefixes: tuple[str, ...] = DEFAULT_CACHE_STRIP_PREFIXES
    prompt_cache_key: bool = True  # send a stable prompt_cache_key to OpenAI-compatible providers


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    name: str
    type: str  # a protocol name with an adapter (`protocols.provider_types()`)
    base_url: str  # normalised: no trailing "/" and no trailing "/v1"
    api_key: str | None = field(default=None, repr=False)  # resolved from api_key/_env/_file
    keys: tuple[KeyConfig, ...] = ()  # a key pool instead of api_key (then api_key is None)
    headers: tuple[tuple[str, str], ...] = ()
    max_tokens_cap: int | None = None
    max_completion_tokens: bool = False  # send max_completion_tokens instead of max_tokens
    reasoning_history: bool = False  # send earlier thinking back as reasoning_content
    send_reasoning_effort: bool = True  # false for models that reject reasoning_effort
    # the anthropic-version ferryllm sends when it builds an Anthropic body itself (an Anthropic
    # client's own version is forwarded); its body then holds only what that version accepts
    anthropic_version: str = "2023-06-01"
    timeout_secs: float | None = None
    max_connections: int = 1024


@dataclass(frozen=True, slots=True)
class RouteConfig:
    match: str
    provider: str  # with a pool: the pool's first member
    match_type: str = "prefix"  # "prefix" | "exact"; match "*" is the catch-all
    rewrite_model: str | None = None
    fallback_providers: tuple[str, ...] = ()
    pool: tuple[str, ...] = ()  # several providers instead of `provider`, chosen by `balance`
    balance: str = "weighted"  # "weighted" | "latency" | "least_busy"
    weights: tuple[float, ...] = ()  # with balance "weighted": one per pool member (default 1)


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    prompt_cache: PromptCacheConfig = field(default_factory=PromptCacheConfig)
    providers: tuple[ProviderConfig, ...] = ()
    routes: tuple[RouteConfig, ...] = ()
    shared_state: SharedStateConfig | None = None  # [shared_state]: limits shared through Redis
    source: str | None = None  # path the config was read from
    warnings: tuple[str, ...] = ()  # unknown keys etc., reported by `serve`

    def provider(self, name: str) -> ProviderConfig:
        for p in self.providers:
            if p.name == name:
                return p
        raise KeyError(name)


class ConfigError(Exception):
    """Every problem found, each naming its TOML key."""

    def __init__(self, problems: list[str], source: str | None = None,
                 warnings: tuple[str, ...] = ()) -> None:
        prefix = f"{source}: " if source else ""
        super().__init__(prefix + "; ".join(problems))
        self.problems = problems
        self.source = source
        self.warnings = warnings  # reported alongside: a typo'd key often explains a problem


def load_config(path: str | os.PathLike[str], *, strict: bool = False,
                environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate a TOML file. A file that cannot be read or parsed is one problem."""
    source = os.fspath(path)
    try:
        raw = Path(source).read_bytes()
    except FileNotFoundError:
        raise ConfigError(["file not found"], source) from None
    except IsADirectoryError:
        raise ConfigError(["is a directory, not a config file"], source) from None
    except OSError as e:
        raise ConfigError([f"cannot read file: {e.strerror or e}"], source) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError([f"not UTF-8 text (invalid byte at offset {e.start})"], source) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:  # its message carries "(at line L, column C)"
        raise ConfigError([f"invalid TOML: {e}"], source) from None
    return parse_config(data, source=source, strict=strict, environ=environ)


def check_listen(value: Any) -> str | None:
    """The problem with a `HOST:PORT` value, or None. Shared with `--listen`."""
    try:
        cv.listen(value)
    except cv.Bad as e:
        return str(e)
    return None


# ---------------------------------------------------------------- provider type


def _provider_type(v: Any) -> str:
    """A registered protocol with an adapter (`ferryllm.protocols`, plug-ins included)."""
    return cv.enum(protocols.provider_types())(v)


# ---------------------------------------------------------------- schemas

_SERVER: dict[str, Callable[[Any], Any]] = {
    "listen": cv.listen,
    "request_timeout_secs": cv.pos_number,
    "body_limit_mb": cv.pos_number,
    "max_concurrent_requests": cv.limit,
    "rate_limit_per_minute": cv.limit,
    "retry_attempts": cv.nonneg_int,
    "retry_backoff_ms": cv.nonneg_int,
    "retry_backoff_max_ms": cv.nonneg_int,
    "circuit_breaker_failures": cv.limit,
    "circuit_breaker_cooldown_secs": cv.pos_number,
    "default_reasoning_effort": cv.enum(REASONING_EFFORTS),
    "max_reasoning_effort": cv.enum(REASONING_EFFORTS),
    "reasoning_policy": cv.enum(REASONING_POLICIES),
    "stream_idle_timeout_secs": cv.pos_number,
    "shutdown_grace_secs": cv.nonneg_number,
    "keepalive_interval_secs": cv.pos_number,
    "max_header_size": cv.pos_int,
}
_LOGGING = {"level": cv.enum(LOG_LEVELS, {"warn": "warning"}), "format": cv.enum(LOG_FORMATS)}
_METRICS = {"enabled": cv.boolean}
_AUTH = {
    "enabled": cv.boolean,
    "api_keys_env": cv.text,
    "api_keys_file": cv.text,
    "per_key_rate_limit_per_minute": cv.limit,
    "per_key_max_concurrent_requests": cv.limit,
}
_PROMPT_CACHE = {
    "strip_system_prefixes": cv.strings,
    "strip_system_line_prefixes": cv.strings,  # the reference's name for the same list
    "prompt_cache_key": cv.boolean,
}
# Keys of the Rust ferryllm's [prompt_cache] that this gateway accepts but does not act on.
_PROMPT_CACHE_COMPAT = frozenset({
    "auto_inject_anthropic_cache_control", "cache_system", "cache_tools",
    "cache_last_user_message", "openai_prompt_cache_key", "openai_prompt_cache_retention",
    "debug_log_request_shape", "relocate_system_prefix_range", "log_relocated_system_text",
})
_PROVIDER = {
    "name": cv.text,
    "type": _provider_type,
    "base_url": cv.base_url,
    "api_key": cv.secret,
    "api_key_env": cv.text,
    "api_key_file": cv.text,
    "keys": keys_array,
    "headers": cv.headers,
    "max_tokens_cap": cv.pos_int,
    "max_completion_tokens": cv.boolean,
    "reasoning_history": cv.boolean,
    "send_reasoning_effort": cv.boolean,
    "anthropic_version": cv.enum(ANTHROPIC_VERSIONS),
    "timeout_secs": cv.pos_number,
    "max_connections": cv.pos_int,
}
_ROUTE = {
    "match": cv.text,
    "match_type": cv.enum(MATCH_TYPES),
    "provider": cv.text,
    "rewrite_model": cv.text,
    "fallback_providers": cv.strings,
    "pool": cv.strings,
    "balance": cv.enum(BALANCES),
    "weights": weights,
}
_SECTIONS = {"server": _SERVER, "logging": _LOGGING, "metrics": _METRICS, "auth": _AUTH,
             "prompt_cache": _PROMPT_CACHE, "shared_state": config_shared._SHARED}
_ARRAYS = {"providers": _PROVIDER, "routes": _ROUTE}


# ---------------------------------------------------------------- the document


class _Checker:
    """Reads one document; collects problems, unknown keys and other notes instead of raising."""

    def __init__(self, environ: Mapping[str, str], base_dir: Path) -> None:
        self.environ, self.base_dir = environ, base_dir
        self.problems: list[str] = []
        self.unknown: list[str] = []
        self.notes: list[str] = []

    def unknown_key(self, path: str, key: str, valid: Mapping[str, Any]) -> None:
        close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.6)
        hint = f" (did you mean \"{close[0]}\"?)" if close else ""
        self.unknown.append(f"{path}: unknown key{hint}")

    def fields(self, table: dict[str, Any], prefix: str, schema: Mapping[str, Callable[[Any], Any]],
               compat: frozenset[str] = frozenset()) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in table.items():
            path = f"{prefix}.{key}"
            check = schema.get(key)
            if check is None:
                if key in compat:
                    self.notes.append(f"{path}: accepted for compatibility with the Rust ferryllm; "
                                      "it has no effect here")
                else:
                    self.unknown_key(path, key, schema)
                continue
            try:
                out[key] = check(value)
            except cv.Bad as e:
                self.problems.append(f"{path}: {e}")
        return out

    def section(self, data: dict[str, Any], name: str) -> dict[str, Any]:
        value = data.get(name, {})
        if isinstance(value, dict):
            return value
        self.problems.append(f"{name}: expected a table ([{name}]), got {cv.show(value)}")
        return {}

    def array(self, data: dict[str, Any], name: str) -> list[dict[str, Any] | None] | None:
        """The entries (None for one that is not a table), or None if it is not an array."""
        value = data.get(name, [])
        if not isinstance(value, list):
            self.problems.append(f"{name}: expected an array of tables ([[{name}]]), "
                                 f"got {cv.kind_of(value)}")
            return None
        out: list[dict[str, Any] | None] = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                self.problems.append(f"{name}[{i}]: expected a table, got {cv.show(item)}")
            out.append(item if isinstance(item, dict) else None)
        return out

    def top_level(self, data: dict[str, Any]) -> None:
        for key in data:
            if key in _SECTIONS or key in _ARRAYS:
                continue
            close = difflib.get_close_matches(key, [*_SECTIONS, *_ARRAYS], n=1, cutoff=0.6)
            if close:
                self.unknown.append(f"{key}: unknown section (did you mean \"{close[0]}\"?)")
                continue
            owner = [f"{s}.{key}" for s, keys in (_SECTIONS | _ARRAYS).items() if key in keys]
            hint = f" (did you mean \"{owner[0]}\"?)" if owner else ""
            self.unknown.append(f"{key}: unknown key{hint}")

    def read_file(self, path: str, key: str) -> str | None:
        file = Path(path).expanduser()
        file = file if file.is_absolute() else self.base_dir / file
        try:
            return file.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as e:
            reason = getattr(e, "strerror", None) or "not readable UTF-8 text"
            self.problems.append(f"{key}: cannot read \"{file}\": {reason}")
            return None

    def env(self, name: str, key: str) -> str | None:
        value = self.environ.get(name)
        if value is None:
            self.problems.append(f"{key}: environment variable {name} is not set")
        return value


def parse_config(data: dict[str, Any], *, source: str | None = None, strict: bool = False,
                 environ: Mapping[str, str] | None = None) -> Config:
    """Validate a decoded TOML document. Raises `ConfigError` listing every problem.

    Relative `api_key_file` / `api_keys_file` paths are relative to the config file's directory."""
    base_dir = Path(source).parent if source else Path.cwd()
    c = _Checker(os.environ if environ is None else environ, base_dir)
    c.top_level(data)

    server = c.fields(c.section(data, "server"), "server", _SERVER)
    if server.get("retry_backoff_max_ms", 10_000) < server.get("retry_backoff_ms", 100):
        c.problems.append("server.retry_backoff_max_ms: must be >= server.retry_backoff_ms")
    logging = c.fields(c.section(data, "logging"), "logging", _LOGGING)
    metrics = c.fields(c.section(data, "metrics"), "metrics", _METRICS)
    auth_table = dict(c.section(data, "auth"))
    clients = config_shared.clients(c, auth_table)
    auth = _auth(c, c.fields(auth_table, "auth", _AUTH), clients)
    shared_state = config_shared.shared_state(c, data)
    prompt_cache = _prompt_cache(c, c.fields(c.section(data, "prompt_cache"), "prompt_cache",
                                             _PROMPT_CACHE, _PROMPT_CACHE_COMPAT))
    providers, names = _providers(c, c.array(data, "providers"))
    routes = _routes(c, c.array(data, "routes"), names)

    warnings = [*c.unknown, *c.notes]
    if strict:  # --strict: unknown keys are errors; other notes stay warnings
        c.problems.extend(c.unknown)
        warnings = c.notes
    if c.problems:
        raise ConfigError(c.problems, source, tuple(warnings))
    return Config(server=ServerConfig(**server), logging=LoggingConfig(**logging),
                  metrics=MetricsConfig(**metrics), auth=auth, prompt_cache=prompt_cache,
                  providers=tuple(providers), routes=tuple(routes), shared_state=shared_state,
                  source=source,
                  warnings=tuple(warnings))


def _auth(c: _Checker, raw: dict[str, Any], clients: tuple[ClientConfig, ...] = ()
          ) -> AuthConfig:
    keys: list[str] = []
    if raw.get("enabled"):
        if "api_keys_env" in raw and (value := c.env(raw["api_keys_env"], "auth.api_keys_env")):
            keys += [k.strip() for k in value.split(",") if k.strip()]
        if "api_keys_file" in raw and (text := c.read_file(raw["api_keys_file"],
                                                           "auth.api_keys_file")) is not None:
            keys += [s for line in text.splitlines()
                     if (s := line.strip()) and not s.startswith("#")]
        named = "api_keys_env" in raw or "api_keys_file" in raw
        if not keys and not clients and not any(p.startswith(("auth.api_keys_", "auth.clients"))
                                                for p in c.problems):
            c.problems.append(
                "auth.api_keys_env: auth is enabled but no client keys were found" +
                (" (the variable/file is empty)" if named else
                 "; set auth.api_keys_env (comma-separated keys), auth.api_keys_file or "
                 "[[auth.clients]]"))
    seen = set(keys)
    for i, client in enumerate(clients):  # one key, one identity (the key itself is not shown)
        if client.key in seen:
            c.problems.append(f"auth.clients[{i}]: its key is already another client's key")
        seen.add(client.key)
    return AuthConfig(**raw, keys=tuple(dict.fromkeys(keys)), clients=clients)


def _prompt_cache(c: _Checker, raw: dict[str, Any]) -> PromptCacheConfig:
    if "strip_system_line_prefixes" in raw:
        legacy = raw.pop("strip_system_line_prefixes")
        if "strip_system_prefixes" in raw:
            c.problems.append("prompt_cache.strip_system_line_prefixes: give only one of it and "
                              "prompt_cache.strip_system_prefixes (same list, older name)")
        else:
            raw["strip_system_prefixes"] = legacy
    if any(not p for p in raw.get("strip_system_prefixes", ())):
        c.problems.append("prompt_cache.strip_system_prefixes: an empty prefix would strip every "
                          "line")
    return PromptCacheConfig(**raw)


def _providers(c: _Checker, items: list[dict[str, Any] | None] | None
               ) -> tuple[list[ProviderConfig], list[str]]:
    if items == []:
        c.problems.append("providers: at least one [[providers]] entry is required")
    out: list[ProviderConfig] = []
    names: list[str] = []  # every well-formed name, so routes are checked even if a provider is not
    for i, table in enumerate(items or ()):
        if table is None:
            continue
        key = f"providers[{i}]"
        before = len(c.problems)
        raw = c.fields(table, key, _PROVIDER)
        for required in ("name", "type", "base_url"):
            if required not in table:
                c.problems.append(f"{key}.{required}: required")
        name = raw.get("name")
        if name is not None:
            if name in names:
                c.problems.append(f"{key}.name: duplicate provider name \"{name}\"")
            names.append(name)
        if "keys" in table:
            pool = provider_keys(c, key, table, raw.pop("keys", ()))
            api_key = None
        else:
            pool = ()
            api_key = provider_key(c, key, table, raw, " (or keys = [...])")
        if len(c.problems) == before:
            for k in KEY_SOURCES:
                raw.pop(k, None)
            out.append(ProviderConfig(**raw, api_key=api_key, keys=pool))
    return out, names


def _routes(c: _Checker, items: list[dict[str, Any] | None] | None, names: list[str]
            ) -> list[RouteConfig]:
    if items == []:
        c.problems.append("routes: at least one [[routes]] entry is required")
    configured = ", ".join(names) or "none"
    out: list[RouteConfig] = []
    seen: dict[tuple[str, str], int] = {}
    for i, table in enumerate(items or ()):
        if table is None:
            continue
        key = f"routes[{i}]"
        before = len(c.problems)
        raw = c.fields(table, key, _ROUTE)
        if "match" not in table:
            c.problems.append(f"{key}.match: required")
        route_pool(c, key, table, raw, names, configured)
        provider = raw.get("provider") if "pool" not in table else None
        if provider is not None and provider not in names:
            c.problems.append(f"{key}.provider: unknown provider \"{provider}\" "
                              f"(configured: {configured})")
        fallbacks = raw.get("fallback_providers", ())
        for j, fb in enumerate(fallbacks):
            where = f"{key}.fallback_providers[{j}]"
            if fb not in names:
                c.problems.append(f"{where}: unknown provider \"{fb}\" (configured: {configured})")
            elif fb == provider:
                c.problems.append(f"{where}: \"{fb}\" is the route's own provider")
            elif fb in raw.get("pool", ()):
                c.problems.append(f"{where}: \"{fb}\" is in the route's pool")
            elif fb in fallbacks[:j]:
                c.problems.append(f"{where}: \"{fb}\" is listed twice")
        match = raw.get("match")
        if match is not None:
            kind = "*" if match == "*" else raw.get("match_type", "prefix")
            if (match, kind) in seen:
                c.notes.append(f"{key}: same match as routes[{seen[match, kind]}] "
                               f"(\"{match}\"); this route is never used")
            seen.setdefault((match, kind), i)
            if match != "*" and "*" in match:
                c.notes.append(f"{key}.match: \"*\" is only special on its own; \"{match}\" is "
                               "matched literally")
        if len(c.problems) == before:
            out.append(RouteConfig(**{**raw, "fallback_providers": tuple(fallbacks)}))
    return out
