"""The config's key sources, key pools (`[[providers]] keys`) and provider pools (`[[routes]]
pool`): their shapes and checks. `ferryllm.config` calls these with its checker `c` (anything with
`problems`, `notes`, `fields(table, path, schema)`, `env(name, path)`, `read_file(path, key)`), so
every problem names its TOML key."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import config_values as cv

KEY_SOURCES = ("api_key", "api_key_env", "api_key_file")
BALANCES = ("weighted", "latency", "least_busy")


@dataclass(frozen=True, slots=True)
class KeyConfig:
    """One key of a provider's pool. `label` is what metrics, logs and a shared cooldown store
    show: the configured `name`, else the key's position ("0", "1", …); never the key."""

    label: str
    api_key: str = field(repr=False)
    weight: float = 1.0
    rate_limit_per_minute: int | None = None
    max_concurrent_requests: int | None = None


def weights(v: Any) -> tuple[float, ...]:
    if not isinstance(v, list) or not v:
        raise cv.Bad(f"expected a non-empty array of positive numbers, got {cv.show(v)}")
    return tuple(cv.pos_number(x) for x in v)


def keys_array(v: Any) -> list:
    """Only the shape here; each entry is checked by `provider_keys`."""
    if not isinstance(v, list) or not v:
        raise cv.Bad(f"expected a non-empty array of tables, e.g. "
                     f"keys = [{{ api_key_env = \"K1\" }}, {{ api_key_env = \"K2\" }}]; "
                     f"got {cv.show(v)}")
    return v


_KEY = {
    "name": cv.text,
    "api_key": cv.secret,
    "api_key_env": cv.text,
    "api_key_file": cv.text,
    "weight": cv.pos_number,
    "rate_limit_per_minute": cv.limit,
    "max_concurrent_requests": cv.limit,
}


def provider_key(c: Any, key: str, table: dict[str, Any], raw: dict[str, Any],
                 alternative: str = "") -> str | None:
    """The key from the one source `table` gives (api_key, api_key_env or api_key_file)."""
    given = [k for k in KEY_SOURCES if k in table]
    if len(given) != 1:
        what = (f"{' and '.join(given)} are {'both' if len(given) == 2 else 'all'} set" if given
                else "no key source is set")
        c.problems.append(f"{key}: {what}; set exactly one of api_key, api_key_env, "
                          f"api_key_file{alternative}")
        return None
    source = given[0]
    if source not in raw:  # its own type problem is already reported
        return None
    if source == "api_key":
        return raw["api_key"]
    path = f"{key}.{source}"
    if source == "api_key_env":
        value = c.env(raw[source], path)
        what = f"environment variable {raw[source]}"
    else:
        value = c.read_file(raw[source], path)
        what = "the file"
        if value is not None and len(value.strip().splitlines()) > 1:
            c.problems.append(f"{path}: the file must hold one key on one line")
            return None
    if value is None:
        return None
    try:
        return cv.clean_secret(value)
    except cv.Bad as e:
        c.problems.append(f"{path}: {what} {'is empty' if not value.strip() else e}")
        return None


def provider_keys(c: Any, key: str, table: dict[str, Any], items: list) -> tuple[KeyConfig, ...]:
    """The pool of `[[providers]] keys`; `key` is the provider's path (`providers[0]`)."""
    given = [k for k in KEY_SOURCES if k in table]
    if given:
        c.problems.append(f"{key}.keys: give either keys or {given[0]}, not both")
    out: list[KeyConfig] = []
    labels: dict[str, int] = {}
    values: dict[str, int] = {}
    for i, item in enumerate(items):
        path = f"{key}.keys[{i}]"
        if not isinstance(item, dict):
            c.problems.append(f"{path}: expected a table, e.g. {{ api_key_env = \"K1\" }}, "
                              f"got {cv.show(item)}")
            continue
        before = len(c.problems)
        raw = c.fields(item, path, _KEY)
        api_key = provider_key(c, path, item, raw)
        label = raw.get("name", str(i))
        if label in labels:
            c.problems.append(f"{path}.name: \"{label}\" is already the label of "
                              f"keys[{labels[label]}]")
        labels.setdefault(label, i)
        if api_key is not None:
            if api_key in values:
                c.notes.append(f"{path}: the same key as keys[{values[api_key]}]")
            values.setdefault(api_key, i)
        if len(c.problems) == before:
            out.append(KeyConfig(label, api_key, raw.get("weight", 1.0),  # type: ignore[arg-type]
                                 raw.get("rate_limit_per_minute"),
                                 raw.get("max_concurrent_requests")))
    return tuple(out)


def route_pool(c: Any, key: str, table: dict[str, Any], raw: dict[str, Any],
               names: list[str], configured: str) -> None:
    """Checks `pool`, `balance` and `weights` of the route at `key`; with a pool, `provider`
    becomes the pool's first member (what `/v1/models` and token counting name)."""
    pool = raw.get("pool")
    if pool is None:
        for k in ("balance", "weights"):
            if k in table:
                c.problems.append(f"{key}.{k}: only used with pool = [\"a\", \"b\"]")
        if "provider" not in table and "pool" not in table:
            c.problems.append(f"{key}.provider: required (or pool)")
        return
    if "provider" in table:
        c.problems.append(f"{key}.pool: give either provider or pool, not both")
    if not pool:
        c.problems.append(f"{key}.pool: expected at least one provider name")
    for j, name in enumerate(pool):
        if name not in names:
            c.problems.append(f"{key}.pool[{j}]: unknown provider \"{name}\" "
                              f"(configured: {configured})")
        elif name in pool[:j]:
            c.problems.append(f"{key}.pool[{j}]: \"{name}\" is listed twice")
    balance = raw.get("balance", "weighted")
    given = raw.get("weights")
    if given is not None:
        if balance != "weighted":
            c.problems.append(f"{key}.weights: only used with balance = \"weighted\" "
                              f"(this route has \"{balance}\")")
        elif len(given) != len(pool):
            c.problems.append(f"{key}.weights: {len(given)} weight(s) for a pool of "
                              f"{len(pool)}; give one per pool member, in order")
    if pool:
        raw.setdefault("provider", pool[0])
