"""The circuit breaker per provider (sans-IO: every method that needs time takes `now`,
monotonic seconds). The wiring and what counts as a failure are described in `ferryllm.limits`;
with `[shared_state]`, `ferryllm.shared_state.SharedBreaker` shares one breaker per provider
across the fleet on top of this one."""
from __future__ import annotations

from typing import Any, Callable

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
# What a shared breaker's `allow()` returns when only the fleet can tell (leaving `open`, or
# half-open): the caller then awaits `breaker.ask(now)`. A local breaker never returns it.
ASK = "ask"


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
