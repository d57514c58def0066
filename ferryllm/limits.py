"""Production-control building blocks: rate buckets, concurrency permits, backoff, circuit breaker.

Sans-IO: nothing here sleeps, awaits, locks or reads a clock. Every method that needs time takes
`now` (monotonic seconds, e.g. `time.monotonic()`); `Backoff` takes its random number. All state
lives in one event loop (one process), so plain counters suffice.

Wiring (done by the server and the relay):

    admission = Admission(config.server, config.auth)      # once per app
    ticket = admission.admit(key_id, time.monotonic())     # per request; raises RateLimited (429)
    try: ... serve, including the whole stream ...
    finally: ticket.release()                              # idempotent

    breakers = Breakers(config, on_change=metrics.circuit) # one breaker per provider name
    breaker = breakers.get(name)                           # None when the breaker is disabled
    if breaker and not breaker.allow(now): ...             # fail fast / go to the fallback
    probe = breaker.state == HALF_OPEN                     # right after allow(): this call probes
    breaker.success() | breaker.failure(now) | breaker.release_probe()

    backoff = Backoff.from_config(config.server)
    await asyncio.sleep(backoff.delay(attempt, random.random(), err.retry_after))

What counts as a breaker failure is the relay's rule: connect errors, timeouts, 429, 5xx/529 and
malformed upstream protocol count; 4xx client errors (400/401/403/404/413/422) do not — end the
probe with `release_probe()` then. Give the verdict when the outcome is known: for a stream, when
the provider's 200 headers (or its first event) arrive, not when the stream ends.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Callable, Protocol

from .errors import RateLimited

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


def retry_after_seconds(wait: float) -> int:
    """A `retry-after` header value: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(wait))


# ---------------------------------------------------------------- rate limits


class TokenBucket:
    """`per_minute` requests a minute, refilled continuously; holds up to `burst` (default
    `per_minute`) tokens and starts full."""

    __slots__ = ("capacity", "rate", "tokens", "stamp")

    def __init__(self, per_minute: int, burst: int | None = None) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.capacity = float(burst or per_minute)
        self.rate = per_minute / 60.0  # tokens per second
        self.tokens = self.capacity
        self.stamp: float | None = None

    def _refill(self, now: float) -> None:
        if self.stamp is not None and now > self.stamp:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        if self.stamp is None or now > self.stamp:
            self.stamp = now

    def try_take(self, now: float) -> float | None:
        """Take one token: None when allowed, else the seconds until one is available."""
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return None
        return (1.0 - self.tokens) / self.rate

    def refund(self) -> None:
        """Give back a token taken by a request that another limit then refused."""
        self.tokens = min(self.capacity, self.tokens + 1.0)

    def is_full(self, now: float) -> bool:
        """Idle long enough to be indistinguishable from a new bucket (does not mutate)."""
        if self.stamp is None:
            return True
        return self.tokens + max(0.0, now - self.stamp) * self.rate >= self.capacity


class KeyedBuckets:
    """One `TokenBucket` per client key id. Bounded: full (idle) buckets at the least recently
    used end are dropped as new keys arrive (a full bucket is the same as a new one, so nothing is
    forgotten), and past `max_keys` the least recently used bucket is dropped regardless."""

    SWEEP = 4  # idle buckets examined per new key

    def __init__(self, per_minute: int, burst: int | None = None, max_keys: int = 10_000) -> None:
        TokenBucket(per_minute, burst)  # validate now, not on first use
        self.per_minute, self.burst, self.max_keys = per_minute, burst, max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def __contains__(self, key: str) -> bool:
        return key in self._buckets

    def bucket(self, key: str, now: float) -> TokenBucket:
        buckets = self._buckets
        b = buckets.get(key)
        if b is not None:
            buckets.move_to_end(key)
            return b
        for _ in range(self.SWEEP):
            if not buckets:
                break
            oldest_key, oldest = next(iter(buckets.items()))
            if not oldest.is_full(now):
                break
            del buckets[oldest_key]
        while len(buckets) >= self.max_keys:
            buckets.popitem(last=False)
        b = buckets[key] = TokenBucket(self.per_minute, self.burst)
        return b

    def try_take(self, key: str, now: float) -> float | None:
        return self.bucket(key, now).try_take(now)

    def refund(self, key: str) -> None:
        b = self._buckets.get(key)
        if b is not None:
            b.refund()


# ---------------------------------------------------------------- concurrency


class Permits:
    """A non-blocking concurrency cap: over the cap `try_acquire()` is False at once (the caller
    answers 429; nothing queues). `limit` None or 0 means unlimited."""

    __slots__ = ("limit", "in_use")

    def __init__(self, limit: int | None) -> None:
        self.limit = limit or None
        self.in_use = 0

    def try_acquire(self) -> bool:
        if self.limit is not None and self.in_use >= self.limit:
            return False
        self.in_use += 1
        return True

    def release(self) -> None:
        if self.in_use <= 0:
            raise ValueError("Permits released more times than acquired")
        self.in_use -= 1


class KeyedPermits:
    """`Permits` per client key id; a key's entry is removed when its count drops to 0.
    Unlimited (None or 0) tracks nothing."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit or None
        self._counts: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._counts)

    def in_use(self, key: str) -> int:
        return self._counts.get(key, 0)

    def try_acquire(self, key: str) -> bool:
        if self.limit is None:
            return True
        n = self._counts.get(key, 0)
        if n >= self.limit:
            return False
        self._counts[key] = n + 1
        return True

    def release(self, key: str) -> None:
        if self.limit is None:
            return
        n = self._counts.get(key, 0)
        if n <= 0:
            raise ValueError("KeyedPermits released more times than acquired")
        if n == 1:
            del self._counts[key]
        else:
            self._counts[key] = n - 1


class Ticket:
    """What `Admission.admit` hands out: holds the concurrency permits until `release()`
    (idempotent; call it when the response, or the whole stream, has ended)."""

    __slots__ = ("_admission", "_key")

    def __init__(self, admission: Admission | None, key: str | None) -> None:
        self._admission, self._key = admission, key

    def release(self) -> None:
        admission, self._admission = self._admission, None
        if admission is not None:
            admission._release(self._key)


class Admission:
    """Global and per-key rate limits and concurrency caps, checked in one call.

    Concurrency is checked first (a request refused for concurrency spends no rate token); a
    per-key token is refunded when the global bucket then refuses. Per-key limits apply only when
    auth is enabled and a key id is given."""

    def __init__(self, server: Any, auth: Any = None) -> None:
        per_key = auth is not None and auth.enabled
        self.global_permits = Permits(server.max_concurrent_requests)
        self.rate_per_minute = server.rate_limit_per_minute
        self.global_bucket = TokenBucket(self.rate_per_minute) if self.rate_per_minute else None
        self.key_permits = KeyedPermits(auth.per_key_max_concurrent_requests if per_key else None)
        key_rate = auth.per_key_rate_limit_per_minute if per_key else None
        self.key_buckets = KeyedBuckets(key_rate) if key_rate else None

    def admit(self, key: str | None, now: float) -> Ticket:
        """Raises `RateLimited` (429, with `retry_after`) or returns a `Ticket` to release."""
        if not self.global_permits.try_acquire():
            raise RateLimited(f"too many concurrent requests (limit {self.global_permits.limit})",
                              retry_after=1.0)
        key_permit = False
        try:
            if key is not None:
                if not self.key_permits.try_acquire(key):
                    raise RateLimited("too many concurrent requests for this API key "
                                      f"(limit {self.key_permits.limit})", retry_after=1.0)
                key_permit = True
                if self.key_buckets is not None:
                    wait = self.key_buckets.try_take(key, now)
                    if wait is not None:
                        raise RateLimited(
                            "rate limit exceeded for this API key "
                            f"({self.key_buckets.per_minute} requests per minute)",
                            retry_after=retry_after_seconds(wait))
            if self.global_bucket is not None:
                wait = self.global_bucket.try_take(now)
                if wait is not None:
                    if key is not None and self.key_buckets is not None:
                        self.key_buckets.refund(key)
                    raise RateLimited(
                        f"rate limit exceeded ({self.rate_per_minute} requests per minute)",
                        retry_after=retry_after_seconds(wait))
        except RateLimited:
            self.global_permits.release()
            if key_permit:
                self.key_permits.release(key)  # type: ignore[arg-type]
            raise
        return Ticket(self, key)

    def _release(self, key: str | None) -> None:
        self.global_permits.release()
        if key is not None:
            self.key_permits.release(key)


# ---------------------------------------------------------------- retries


class Backoff:
    """Exponential backoff with full jitter, capped at `max_ms`."""

    __slots__ = ("base", "cap")

    def __init__(self, base_ms: float, max_ms: float) -> None:
        self.base, self.cap = base_ms / 1000.0, max_ms / 1000.0

    @classmethod
    def from_config(cls, server: Any) -> Backoff:
        return cls(server.retry_backoff_ms, server.retry_backoff_max_ms)

    def delay(self, attempt: int, rand: float, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `attempt + 1` (`attempt` counts from 0):
        `rand * min(cap, base * 2**attempt)` with `rand` in [0, 1). A provider's `retry-after` is
        honoured up to the cap: max(jittered delay, retry_after), never more than the cap."""
        ceiling = min(self.cap, self.base * 2.0 ** min(max(attempt, 0), 64))
        wait = rand * ceiling
        if retry_after is not None and retry_after > wait:
            wait = min(retry_after, self.cap)
        return wait


# ---------------------------------------------------------------- circuit breaker


class CircuitBreaker:
    """Per-provider breaker. closed → open after `failures` consecutive failures; open fails fast
    for `cooldown_secs`; then half_open admits exactly one probe: its success closes, its failure
    re-opens with a fresh cooldown, `release_probe()` (no verdict) lets the next caller probe.
    A probe that reports nothing for `probe_timeout_secs` (if set) is presumed lost, likewise.
    `failures` None or 0 disables the breaker (always allows)."""

    __slots__ = ("name", "threshold", "cooldown", "probe_timeout", "on_change", "_state",
                 "failures", "opened_at", "_probe_at")

    def __init__(self, failures: int | None, cooldown_secs: float, *, name: str = "",
                 probe_timeout_secs: float | None = None,
                 on_change: Callable[[str, str], None] | None = None) -> None:
        self.name = name
        self.threshold = failures or 0
        self.cooldown = cooldown_secs
        self.probe_timeout = probe_timeout_secs
        self.on_change = on_change  # called as on_change(name, new_state) on every transition
        self._state = CLOSED
        self.failures = 0  # consecutive
        self.opened_at = 0.0
        self._probe_at: float | None = None  # when the in-flight probe was admitted

    @property
    def enabled(self) -> bool:
        return self.threshold > 0

    @property
    def state(self) -> str:
        return self._state

    @property
    def probing(self) -> bool:
        return self._probe_at is not None

    def _set(self, state: str) -> None:
        if state != self._state:
            self._state = state
            if self.on_change is not None:
                self.on_change(self.name, state)

    def allow(self, now: float) -> bool:
        state = self._state
        if state == CLOSED:
            return True
        if state == OPEN:
            if now - self.opened_at < self.cooldown:
                return False
            self._probe_at = now
            self._set(HALF_OPEN)
            return True
        # half-open: one probe at a time
        if self._probe_at is not None and (self.probe_timeout is None
                                           or now - self._probe_at < self.probe_timeout):
            return False
        self._probe_at = now
        return True

    def success(self) -> None:
        """The provider answered: close (from any state) and reset the failure count."""
        self.failures = 0
        self._probe_at = None
        self._set(CLOSED)

    def failure(self, now: float) -> None:
        if not self.threshold:
            return
        state = self._state
        if state == CLOSED:
            self.failures += 1
            if self.failures >= self.threshold:
                self.opened_at = now
                self._set(OPEN)
        elif state == HALF_OPEN:
            self.failures += 1
            self._probe_at = None
            self.opened_at = now
            self._set(OPEN)
        # OPEN: a request admitted before the breaker opened; the cooldown is not extended

    def release_probe(self) -> None:
        """The probe ended without a verdict (client gone, client error): the next caller probes.
        Does nothing unless half-open."""
        if self._state == HALF_OPEN:
            self._probe_at = None

    cancel = release_probe

    def is_open(self, now: float) -> bool:
        """Failing fast right now (open and still cooling down): for readiness."""
        return self._state == OPEN and now - self.opened_at < self.cooldown


class Breakers:
    """One `CircuitBreaker` per configured provider name, from `[server]
    circuit_breaker_failures` / `circuit_breaker_cooldown_secs`; a probe is presumed lost after
    the provider's timeout (`timeout_secs` or `request_timeout_secs`)."""

    def __init__(self, config: Any, on_change: Callable[[str, str], None] | None = None) -> None:
        server = config.server
        self.enabled = bool(server.circuit_breaker_failures)
        self._all = {
            p.name: CircuitBreaker(server.circuit_breaker_failures,
                                   server.circuit_breaker_cooldown_secs, name=p.name,
                                   probe_timeout_secs=p.timeout_secs or server.request_timeout_secs,
                                   on_change=on_change)
            for p in config.providers}

    def get(self, name: str) -> CircuitBreaker | None:
        """The provider's breaker, or None when breakers are disabled or the name is unknown."""
        return self._all.get(name) if self.enabled else None

    def __getitem__(self, name: str) -> CircuitBreaker:
        return self._all[name]

    def __iter__(self):
        return iter(self._all.items())

    def states(self) -> dict[str, str]:
        return {name: b.state for name, b in self._all.items()}

    def available(self, now: float) -> bool:
        """At least one provider's circuit is not open (`/readyz`)."""
        return any(not b.is_open(now) for b in self._all.values())


# ---------------------------------------------------------------- key cooldowns


class CooldownStore(Protocol):
    """Where the cooldowns of a provider's pool keys live (`[[providers]] keys`). A key is named by
    its label (its configured `name`, else its position "0", "1", …), never by its value, so a
    store may put `provider` and `label` in a shared key. `now` is the caller's monotonic clock;
    a shared store may use its own clock instead. Both calls are one round trip at most."""

    async def remaining(self, provider: str, labels: Sequence[str], now: float) -> list[float]:
        """Seconds each key of `labels` still cools, in order (0.0: ready)."""
        ...

    async def cool(self, provider: str, label: str, seconds: float, now: float) -> float:
        """Cool a key for at least `seconds`, never shortening a longer cooldown already set;
        returns the seconds it now cools."""
        ...


class LocalCooldowns:
    """A `CooldownStore` in this process (no `[shared_state]`): a cooldown's end per key."""

    def __init__(self) -> None:
        self._until: dict[tuple[str, str], float] = {}

    async def remaining(self, provider: str, labels: Sequence[str], now: float) -> list[float]:
        until = self._until
        return [max(0.0, until.get((provider, label), 0.0) - now) for label in labels]

    async def cool(self, provider: str, label: str, seconds: float, now: float) -> float:
        key = (provider, label)
        end = max(self._until.get(key, 0.0), now + seconds)
        self._until[key] = end
        return end - now
