"""Production-control building blocks: rate buckets, concurrency permits, token rates and daily
budgets, backoff; the circuit breaker lives in `ferryllm.breaker` (re-exported here).

Sans-IO: nothing here sleeps, awaits, locks or reads a clock. Every method that needs time takes
`now` (monotonic seconds, e.g. `time.monotonic()`); `Backoff` takes its random number. All state
lives in one event loop (one process), so plain counters suffice.

Wiring (done by the server and the relay):

    admission = Admission(config.server, config.auth)      # once per app
    client = admission.client(auth.authenticate(headers))  # a name or key id → ClientLimits
    ticket = admission.admit(client, time.monotonic(), time.time())  # raises RateLimited (429)
    try: ... serve, including the whole stream ...
    finally: ticket.release(usage, time.monotonic(), time.time())    # idempotent

With `[shared_state]`, `ferryllm.shared_state.SharedState` is the same interface on Redis
(`await shared.admit(...)`), falling back to this local store while Redis is unavailable.

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

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol

from .breaker import ASK, CLOSED, HALF_OPEN, OPEN, Breakers, CircuitBreaker  # noqa: F401 - API
from .budgets import (SECONDS_PER_DAY, ClientLimits, DailyBudget, TokenMeter,  # noqa: F401 - API
                      refusal, retry_after_seconds, seconds_to_utc_midnight, usage_parts,
                      usage_tokens)
from .errors import RateLimited


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

    def try_acquire(self, key: str, limit: int | None = None) -> bool:
        """`limit` overrides the default for this key (a named client's own cap)."""
        limit = limit or self.limit
        if limit is None:
            return True
        n = self._counts.get(key, 0)
        if n >= limit:
            return False
        self._counts[key] = n + 1
        return True

    def release(self, key: str) -> None:
        n = self._counts.get(key, 0)
        if n <= 0 and self.limit is None:
            return  # an unlimited key tracks nothing
        if n <= 0:
            raise ValueError("KeyedPermits released more times than acquired")
        if n == 1:
            del self._counts[key]
        else:
            self._counts[key] = n - 1


class Ticket:
    """What `Admission.admit` hands out: holds the concurrency permits until `release()`
    (idempotent; call it when the response, or the whole stream, has ended, with the tokens the
    provider reported, cut-short streams included: they count against the client's token rate
    and daily budget)."""

    __slots__ = ("_admission", "client", "_client_permit")

    def __init__(self, admission: Admission | None, client: ClientLimits | None,
                 client_permit: bool = False) -> None:
        self._admission, self.client, self._client_permit = admission, client, client_permit

    def release(self, usage: Any = None, now: float = 0.0, wall: float = 0.0) -> None:
        """`usage`: the provider's `ir.Usage` (or None); `now` monotonic, `wall` Unix time."""
        admission, self._admission = self._admission, None
        if admission is not None:
            admission._release(self, usage, now, wall)


class Admission:
    """Global and per-client rate limits, concurrency caps, tokens per minute and daily token
    budgets, checked in one call: the local store (one process). `ferryllm.shared_state` is the
    same interface on Redis, shared by every instance.

    Concurrency is checked first (a request refused for concurrency spends no rate token); a
    client's token is refunded when the global bucket then refuses. Client limits apply only
    when auth is enabled: a named client's own (`[[auth.clients]]`), else `[auth] per_key_*`."""

    def __init__(self, server: Any, auth: Any = None) -> None:
        per_key = auth is not None and auth.enabled
        self.global_permits = Permits(server.max_concurrent_requests)
        self.rate_per_minute = server.rate_limit_per_minute
        self.global_bucket = TokenBucket(self.rate_per_minute) if self.rate_per_minute else None
        self.key_concurrent = (auth.per_key_max_concurrent_requests if per_key else None) or None
        self.key_rate = (auth.per_key_rate_limit_per_minute if per_key else None) or None
        self.key_permits = KeyedPermits(self.key_concurrent)
        self.key_buckets = KeyedBuckets(self.key_rate) if self.key_rate else None
        self._named: dict[str, ClientLimits] = {}
        self._client_buckets: dict[str, TokenBucket] = {}  # named clients with their own rate
        self._meters: dict[str, TokenMeter] = {}
        self._budgets: dict[str, DailyBudget] = {}
        for c in (getattr(auth, "clients", ()) if per_key else ()):
            limits = self._named[c.name] = ClientLimits(
                c.name, c.name, c.rate_limit_per_minute or self.key_rate,
                c.tokens_per_minute, c.max_concurrent_requests or self.key_concurrent,
                c.daily_token_budget)
            if c.rate_limit_per_minute:
                self._client_buckets[c.name] = TokenBucket(c.rate_limit_per_minute)
            if limits.tokens_per_minute:
                self._meters[c.name] = TokenMeter(limits.tokens_per_minute)
            if limits.daily_token_budget:
                self._budgets[c.name] = DailyBudget(limits.daily_token_budget)
        self.per_client = per_key

    def client(self, identity: str | None) -> ClientLimits | None:
        """The limits of what `ClientAuth.authenticate` returned (a client name or a key id);
        None without auth."""
        if identity is None or not self.per_client:
            return None
        return self._named.get(identity) or ClientLimits(
            identity, None, self.key_rate, None, self.key_concurrent, None)

    def admit(self, client: ClientLimits | str | None, now: float, wall: float = 0.0) -> Ticket:
        """Raises `RateLimited` (429, with `retry_after`) or returns a `Ticket` to release.
        `now` is monotonic time, `wall` Unix time (for the UTC day of budgets)."""
        if isinstance(client, str) or (client is not None and not self.per_client):
            client = self.client(client if isinstance(client, str) else client.id)
        if not self.global_permits.try_acquire():
            raise refusal("concurrency", self.global_permits.limit, 1.0)
        permit = False
        try:
            if client is not None:
                cid = client.id
                if client.max_concurrent:
                    if not self.key_permits.try_acquire(cid, client.max_concurrent):
                        raise refusal("client_concurrency", client.max_concurrent, 1.0)
                    permit = True
                if (meter := self._meters.get(cid)) and (wait := meter.wait(now)) is not None:
                    raise refusal("tokens", client.tokens_per_minute, wait)
                if (budget := self._budgets.get(cid)) and (wait := budget.wait(wall)) is not None:
                    raise refusal("budget", client.daily_token_budget, wait)
                bucket = self._client_bucket(client, now)
                if bucket is not None and (wait := bucket.try_take(now)) is not None:
                    raise refusal("client_rate", client.rate_per_minute, wait)
            if self.global_bucket is not None:
                wait = self.global_bucket.try_take(now)
                if wait is not None:
                    if client is not None and (bucket := self._client_bucket(client, now)):
                        bucket.refund()
                    raise refusal("rate", self.rate_per_minute, wait)
        except RateLimited:
            self.global_permits.release()
            if permit:
                self.key_permits.release(client.id)  # type: ignore[union-attr]
            raise
        return Ticket(self, client, permit)

    def _client_bucket(self, client: ClientLimits, now: float) -> TokenBucket | None:
        bucket = self._client_buckets.get(client.id)
        if bucket is None and self.key_buckets is not None:
            bucket = self.key_buckets.bucket(client.id, now)
        return bucket

    def _release(self, ticket: Ticket, usage: Any, now: float, wall: float) -> None:
        self.global_permits.release()
        client = ticket.client
        if client is None:
            return
        if ticket._client_permit:
            self.key_permits.release(client.id)
        if usage is not None and (client.tokens_per_minute or client.daily_token_budget):
            self.spend(client, usage_tokens(usage), now, wall)

    def spend(self, client: ClientLimits, tokens: int, now: float, wall: float) -> None:
        """Count tokens a client used against its token rate and daily budget."""
        if (meter := self._meters.get(client.id)) is not None:
            meter.debit(tokens, now)
        if (budget := self._budgets.get(client.id)) is not None:
            budget.spend(tokens, wall)


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
        if not until:  # nothing cooling: the usual case, without a lookup per key
            return [0.0] * len(labels)
        if max(until.values()) <= now:  # every cooldown is over
            until.clear()
            return [0.0] * len(labels)
        return [max(0.0, until.get((provider, label), 0.0) - now) for label in labels]

    async def cool(self, provider: str, label: str, seconds: float, now: float) -> float:
        key = (provider, label)
        end = max(self._until.get(key, 0.0), now + seconds)
        self._until[key] = end
        return end - now
