"""The scale-out tables of the configuration: `[shared_state]` and `[[auth.clients]]`.

`ferryllm.config` owns the document and calls `shared_state()` and `clients()` with its checker
(anything with `fields`, `array`, `env`, `read_file` and a `problems` list); the shapes here are
part of `Config` (`config.shared_state`, `config.auth.clients`)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from . import config_values as cv

ON_FAILURE = ("local", "reject")
CLIENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # a metric label and a Redis key part
PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:{}-]{0,63}")


@dataclass(frozen=True, slots=True)
class SharedStateConfig:
    url: str = field(default="", repr=False)  # may carry a password
    key_prefix: str = "ferryllm"
    timeout_ms: float = 50.0
    on_failure: str = "local"  # "local": per-process limits until Redis answers; "reject": 503
    lease_ttl_secs: float = 30.0
    url_env: str | None = None


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """A named client: its key (never logged) and its own limits (None: the `[auth] per_key_*`
    default for rate and concurrency, unlimited for tokens and budget)."""

    name: str
    key: str = field(repr=False)
    rate_limit_per_minute: int | None = None
    tokens_per_minute: int | None = None
    max_concurrent_requests: int | None = None
    daily_token_budget: int | None = None


def _url(v: Any) -> str:
    if not isinstance(v, str):
        raise cv.Bad(f"expected a redis:// URL, got {cv.kind_of(v)}")
    try:
        parts = urlsplit(v.strip())
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise cv.Bad("expected a redis://, rediss:// or unix:// URL") from None
    if parts.scheme not in ("redis", "rediss", "unix") or not (parts.hostname or parts.path):
        raise cv.Bad("expected a redis://, rediss:// or unix:// URL")  # never echo: a password
    return v.strip()


def _pattern(regex: re.Pattern, what: str):
    def check(v: Any) -> str:
        if not isinstance(v, str) or not regex.fullmatch(v):
            raise cv.Bad(f"expected {what}, got {cv.show(v)}")
        return v
    return check


_SHARED = {
    "url": _url,
    "url_env": cv.text,
    "key_prefix": _pattern(PREFIX, "1-64 letters, digits or ._:{}-"),
    "timeout_ms": cv.pos_number,
    "on_failure": cv.enum(ON_FAILURE),
    "lease_ttl_secs": cv.pos_number,
}
_CLIENT = {
    "name": _pattern(CLIENT_NAME, "1-64 letters, digits or ._- (starting with a letter or digit)"),
    "api_key_env": cv.text,
    "api_key_file": cv.text,
    "rate_limit_per_minute": cv.limit,
    "tokens_per_minute": cv.limit,
    "max_concurrent_requests": cv.limit,
    "daily_token_budget": cv.limit,
}
CLIENT_KEYS = frozenset(_CLIENT)


def shared_state(c: Any, data: dict[str, Any]) -> SharedStateConfig | None:
    """`[shared_state]`, or None when the section is absent (every limit per process)."""
    if "shared_state" not in data:
        return None
    raw = c.fields(c.section(data, "shared_state"), "shared_state", _SHARED)
    given = [k for k in ("url", "url_env") if k in raw]
    if len(given) != 1:
        c.problems.append("shared_state: set exactly one of url, url_env")
        return None
    if "url_env" in raw:
        value = c.env(raw["url_env"], "shared_state.url_env")
        if value is None:
            return None
        try:
            raw["url"] = _url(value)
        except cv.Bad as e:
            c.problems.append(f"shared_state.url_env: environment variable {raw['url_env']}: {e}")
            return None
    if raw.get("lease_ttl_secs", 30.0) < 1:
        c.problems.append("shared_state.lease_ttl_secs: must be at least 1 second")
    return SharedStateConfig(**raw)


def clients(c: Any, table: dict[str, Any]) -> tuple[ClientConfig, ...]:
    """`[[auth.clients]]` (the `clients` array of `[auth]`, removed from `table`); like the
    other client keys, resolved only when auth is enabled."""
    items = c.array(table, "clients") if "clients" in table and table.get("enabled") is True \
        else []
    table.pop("clients", None)
    out: list[ClientConfig] = []
    names: set[str] = set()
    for i, item in enumerate(items or ()):
        if item is None:
            continue
        key = f"auth.clients[{i}]"
        before = len(c.problems)
        raw = c.fields(item, key, _CLIENT)
        if "name" not in item:
            c.problems.append(f"{key}.name: required")
        elif raw.get("name") in names:
            c.problems.append(f"{key}.name: duplicate client name \"{raw['name']}\"")
        names.add(raw.get("name", ""))
        sources = [k for k in ("api_key_env", "api_key_file") if k in item]
        if len(sources) != 1:
            c.problems.append(f"{key}: set exactly one of api_key_env, api_key_file")
            continue
        value = None
        if sources[0] in raw:
            path = f"{key}.{sources[0]}"
            value = (c.env(raw.pop("api_key_env"), path) if sources[0] == "api_key_env"
                     else c.read_file(raw.pop("api_key_file"), path))
            if value is not None:
                try:
                    value = cv.clean_secret(value)
                except cv.Bad as e:
                    c.problems.append(f"{path}: {e}")
        if len(c.problems) == before and value is not None:
            out.append(ClientConfig(**raw, key=value))
    return tuple(out)
