"""What a client may use and what refusing it says: `ClientLimits` (a named client's own limits,
or a plain key's defaults), tokens per minute (`TokenMeter`), daily token budgets (`DailyBudget`,
UTC days), the provider usage they count, and the 429s every store words alike (`refusal`).
Sans-IO: time is passed in. `ferryllm.limits` re-exports all of it."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .errors import RateLimited


def retry_after_seconds(wait: float) -> int:
    """A `retry-after` header value: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(wait))


SECONDS_PER_DAY = 86_400


def seconds_to_utc_midnight(wall: float) -> float:
    """Seconds from `wall` (Unix time) to the next UTC day, when daily budgets start afresh."""
    return SECONDS_PER_DAY - wall % SECONDS_PER_DAY


@dataclass(frozen=True, slots=True)
class ClientLimits:
    """Who a request is for and what it may use. `id` is a named client's configured name or,
    for a plain `[auth]` key, its key id (a short hash); `name` is set for named clients only
    (metrics and the access log carry it). None limits are off."""

    id: str
    name: str | None = None
    rate_per_minute: int | None = None
    tokens_per_minute: int | None = None
    max_concurrent: int | None = None
    daily_token_budget: int | None = None


class TokenMeter:
    """Tokens per minute: a bucket of `per_minute` tokens refilled continuously, debited by what
    a request really used once it ended (so it may go below zero). A request is admitted while
    the level is above zero; the wait is the time until it is again."""

    __slots__ = ("capacity", "rate", "level", "stamp")

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.level = self.capacity
        self.stamp: float | None = None

    def _refill(self, now: float) -> None:
        if self.stamp is not None and now > self.stamp:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        if self.stamp is None or now > self.stamp:
            self.stamp = now

    def wait(self, now: float) -> float | None:
        self._refill(now)
        return None if self.level > 0 else (1.0 - self.level) / self.rate

    def debit(self, tokens: int, now: float) -> None:
        self._refill(now)
        self.level -= tokens


class DailyBudget:
    """Tokens used in the current UTC day (`wall` is Unix time)."""

    __slots__ = ("limit", "day", "used")

    def __init__(self, limit: int) -> None:
        self.limit, self.day, self.used = limit, -1, 0

    def _roll(self, wall: float) -> None:
        day = int(wall // SECONDS_PER_DAY)
        if day != self.day:
            self.day, self.used = day, 0

    def wait(self, wall: float) -> float | None:
        self._roll(wall)
        return None if self.used < self.limit else seconds_to_utc_midnight(wall)

    def spend(self, tokens: int, wall: float) -> None:
        self._roll(wall)
        self.used += tokens


def usage_parts(usage: Any) -> tuple[int, int, int, int]:
    """(input, output, cache read, cache write) of an `ir.Usage`, zeros for None."""
    if usage is None:
        return 0, 0, 0, 0
    return (usage.input_tokens, usage.output_tokens, usage.cache_read_input_tokens,
            usage.cache_creation_input_tokens)


def usage_tokens(usage: Any) -> int:
    """What counts against a token rate and a budget: every token the provider processed."""
    return max(0, sum(usage_parts(usage)))


# The refusals, worded once for every store (`reason` is what a shared store reports back).
REFUSALS = {
    "concurrency": ("too many concurrent requests (limit {limit})", 1.0),
    "client_concurrency": ("too many concurrent requests for this API key (limit {limit})", 1.0),
    "client_rate": ("rate limit exceeded for this API key ({limit} requests per minute)", None),
    "rate": ("rate limit exceeded ({limit} requests per minute)", None),
    "tokens": ("token rate limit exceeded for this API key ({limit} tokens per minute)", None),
    "budget": ("daily token budget of this API key is spent ({limit} tokens); it renews at "
               "00:00 UTC", None),
}


def refusal(reason: str, limit: int | None, wait: float) -> RateLimited:
    """The 429 for a refusal: `retry_after` is `wait` in whole seconds (concurrency: 1)."""
    message, fixed = REFUSALS[reason]
    return RateLimited(message.format(limit=limit),
                       retry_after=fixed if fixed is not None else retry_after_seconds(wait))
