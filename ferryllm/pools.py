"""Key pools (several keys for one provider) and provider pools (several providers for one
route). Sans-IO: the caller passes the clock, the random numbers and the cooldowns it read from
the `CooldownStore` (`limits`), so every choice is deterministic under test.

    pool = KeyPool(provider)                        # a provider with `keys = [...]`
    remaining = await store.remaining(provider.name, pool.labels, now)
    index = pool.pick(remaining, now, rand())       # raises RateLimited (all cooling) or
    try: ... send with key `index` ...              #   UpstreamError 502 (all taken out)
    finally: pool.release(index)
    pool.take_out(index)                            # the provider rejected it (401/403)

    balancer = Balancer(config)                     # once per gateway
    order = balancer.order(route_config, pool)      # the pool's members, best first
    stats = balancer.stats.get(name)                # None unless the provider is in a pool
"""
from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Callable, Sequence
from itertools import accumulate
from typing import Any

from .errors import RateLimited, UpstreamError
from .limits import Permits, TokenBucket

DEFAULT_KEY_COOLDOWN_SECS = 5.0  # a key's 429 without a usable retry-after cools it this long
LATENCY_ALPHA = 0.2  # weight of a new sample in the moving average of time to first token
LATENCY_EXPLORE = 0.05  # share of requests sent to a random pool member, to keep measuring


def weighted_index(weights: Sequence[float], rand: float) -> int:
    """The index chosen by `rand` in [0, 1) with probability proportional to its weight."""
    point = rand * sum(weights)
    for i, w in enumerate(weights):
        point -= w
        if point < 0:
            return i
    return len(weights) - 1


class KeyPool:
    """The keys of one provider: each with its weight, optional rate limit and concurrency cap,
    and whether it was taken out (the provider rejected it; until reload)."""

    def __init__(self, provider: Any) -> None:
        self.provider = provider.name
        keys = provider.keys
        self.labels = tuple(k.label for k in keys)
        self.weights = tuple(k.weight for k in keys)
        self.buckets = tuple(TokenBucket(k.rate_limit_per_minute) if k.rate_limit_per_minute
                             else None for k in keys)
        self.permits = tuple(Permits(k.max_concurrent_requests) for k in keys)
        self.out = [False] * len(keys)
        # no per-key limit and no key out: while nothing cools, a choice is one bisection
        self._unlimited = all(b is None for b in self.buckets) and \
            all(p.limit is None for p in self.permits)
        self._fast = self._unlimited
        self._cumulative = tuple(accumulate(self.weights))

    def pick(self, remaining: Sequence[float], now: float, rand: float) -> int:
        """A weighted choice among the keys that are in, not cooling, under their concurrency cap
        and with a rate token (taken, with a concurrency slot to `release`)."""
        if self._fast and not any(remaining):
            cumulative = self._cumulative
            return min(bisect_right(cumulative, rand * cumulative[-1]), len(cumulative) - 1)
        candidates = [i for i, cooling in enumerate(remaining)
                      if not self.out[i] and cooling <= 0.0 and self._has_slot(i)]
        while candidates:
            i = candidates[weighted_index([self.weights[j] for j in candidates], rand)]
            bucket = self.buckets[i]
            if bucket is None or bucket.try_take(now) is None:
                self.permits[i].try_acquire()
                return i
            candidates.remove(i)
        raise self._exhausted(remaining, now)

    def _has_slot(self, i: int) -> bool:
        p = self.permits[i]
        return p.limit is None or p.in_use < p.limit

    def _exhausted(self, remaining: Sequence[float], now: float) -> Exception:
        waits = []
        for i, cooling in enumerate(remaining):
            if self.out[i]:
                continue
            wait = cooling
            bucket = self.buckets[i]
            if bucket is not None:
                bucket._refill(now)
                if bucket.tokens < 1.0:
                    wait = max(wait, (1.0 - bucket.tokens) / bucket.rate)
            if not self._has_slot(i):
                wait = max(wait, 1.0)
            waits.append(wait)
        if not waits:
            err: Exception = UpstreamError(
                f"provider '{self.provider}': every key was rejected by the provider (401/403); "
                "fix the keys and reload", status=502, provider=self.provider)
            err.retryable = False
        else:  # like the provider's own 429: retried (after the wait) and fallen back from
            err = RateLimited(f"provider '{self.provider}': every key is cooling down or at its "
                              "limit", retry_after=min(waits))
            err.retryable = True
        err.pool_exhausted = True
        return err

    def release(self, index: int) -> None:
        if self._unlimited:
            return
        permits = self.permits[index]
        if permits.in_use:
            permits.release()

    def take_out(self, index: int) -> None:
        self.out[index] = True
        self._fast = False


class ProviderStats:
    """What the balancer knows of a pool member: requests in flight and the moving average of
    its time to first token (None until the first sample)."""

    __slots__ = ("busy", "latency")

    def __init__(self) -> None:
        self.busy = 0
        self.latency: float | None = None

    def observe(self, seconds: float) -> None:
        last = self.latency
        self.latency = seconds if last is None else last + LATENCY_ALPHA * (seconds - last)


class Balancer:
    """Orders a route's pool for one request: the chosen member first, the others after it (tried
    when the chosen one fails, before the route's fallbacks).

    - `weighted`: a weighted random choice (`weights`, default 1 each), the rest in config order;
    - `latency`: members never measured first, then the lowest moving average of time to first
      token; with probability `explore` a random member goes first, so a slow one that became
      fast is noticed;
    - `least_busy`: fewest requests in flight from this process, ties broken at random."""

    def __init__(self, config: Any, rand: Callable[[], float] = random.random,
                 explore: float = LATENCY_EXPLORE) -> None:
        self.rand, self.explore = rand, explore
        members = {name for r in config.routes for name in r.pool}
        self.stats = {name: ProviderStats() for name in members}

    def order(self, route: Any, pool: Sequence[Any]) -> list[Any]:
        """`route`: the route's config (balance, weights); `pool`: its members' configs."""
        balance, rand = route.balance, self.rand
        if balance == "weighted":
            first = weighted_index(route.weights or [1.0] * len(pool), rand())
        elif balance == "latency":
            if rand() < self.explore:
                first = min(int(rand() * len(pool)), len(pool) - 1)
            else:
                ranked = sorted(range(len(pool)), key=self._latency_rank(pool))
                return [pool[i] for i in ranked]
        else:  # least_busy
            stats = self.stats
            ranked = sorted(((stats[p.name].busy, rand(), i) for i, p in enumerate(pool)))
            return [pool[i] for _, _, i in ranked]
        return [pool[first], *pool[:first], *pool[first + 1:]]

    def _latency_rank(self, pool: Sequence[Any]) -> Callable[[int], tuple]:
        stats = self.stats

        def rank(i: int) -> tuple:
            latency = stats[pool[i].name].latency
            return (latency is not None, latency or 0.0, i)
        return rank
