"""`[shared_state]`: limits, leases, breakers and budgets shared by every instance through Redis.

    shared = SharedState(config, admission, breakers, metrics)   # once per app (server.py)
    await shared.start()                                         # renewal task; on_cleanup: close()
    ticket = await shared.admit(client, monotonic, wall)         # one round trip (ADMIT)
    ticket.release(tokens, monotonic, wall)                      # FINISH, in the background

The same interface as `limits.Admission` (the local store, which it falls back to): a ticket
holds the request's leases (renewed every third of `lease_ttl_secs` while it runs) until
`release()`. Every call is bounded by `timeout_ms`; a failed or slow call marks Redis down: with
`on_failure = "local"` the request — and every request after it — is decided by the local store
without touching Redis, with `"reject"` it is a 503; a background probe (PING) brings shared
state back as soon as Redis answers. One log line per transition, never one per request.

Imported only when the section is configured (redis-py, asyncio, with hiredis)."""
from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from typing import Any

from redis.exceptions import NoScriptError, RedisError

from . import shared_scripts
from .redis_pipe import Pipe, Script, pack
from .breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from .errors import ServiceUnavailable
from .limits import ASK, Admission, ClientLimits, Ticket, refusal, usage_parts, usage_tokens

log = logging.getLogger("ferryllm.shared_state")

PROBE_INTERVAL = 0.5  # seconds between PINGs while Redis is down
STARTUP_TIMEOUT = 3.0  # seconds for the first connection and loading the scripts


class SharedState:
    def __init__(self, config: Any, local: Admission, breakers: Any, metrics: Any) -> None:
        s = config.shared_state
        self.timeout = s.timeout_ms / 1000.0
        self.reject = s.on_failure == "reject"
        self.ttl_ms = int(s.lease_ttl_secs * 1000)
        self.local, self.metrics = local, metrics
        self.redis = Pipe(s.url, self.timeout)
        self._admit = Script(shared_scripts.ADMIT)
        self._finish = Script(shared_scripts.FINISH)
        self._renew = Script(shared_scripts.RENEW)
        self._breaker = Script(shared_scripts.BREAKER)
        self._cool = Script(shared_scripts.COOL)
        p = s.key_prefix
        self.prefix = p
        self.k_rate, self.k_leases, self.k_fleet = f"{p}:rate", f"{p}:leases", f"{p}:fleet"
        self._instance = uuid.uuid4().hex[:12]  # built after fork: one per worker
        self._ids = itertools.count(1)
        self.leases: dict[str, tuple[str, ...]] = {}  # live lease member → the sets holding it
        self.up = True
        self._tasks: set[asyncio.Task] = set()
        self._renewer: asyncio.Task | None = None
        self._prober: asyncio.Task | None = None
        self._client_keys: dict[str, tuple[str, str, str, str]] = {}
        self.fleet_version = b""
        self.cooldowns = SharedCooldowns(self)
        self.breakers: dict[str, SharedBreaker] = {}
        if breakers.enabled:
            for name, local_breaker in breakers:
                self.breakers[name] = breakers._all[name] = SharedBreaker(self, local_breaker)
        metrics.shared_state_up(True)

    # ---------------------------------------------------------------- life cycle

    async def start(self) -> None:
        """Connect and load the scripts now (a start-up allowance of a few seconds), so the
        first requests do not pay for it within `timeout_ms`."""
        self._renewer = asyncio.create_task(self._renew_forever())
        try:
            for script in (self._admit, self._finish, self._renew, self._breaker, self._cool):
                await self.redis.send(pack("SCRIPT", "LOAD", script.body),
                                      max(self.timeout, STARTUP_TIMEOUT))
        except (RedisError, OSError, TimeoutError) as exc:
            self._down(exc)

    async def close(self) -> None:
        for task in (self._renewer, self._prober):
            if task is not None:
                task.cancel()
        if self._tasks:  # let the last FINISH calls reach Redis (each bounded by the timeout)
            await asyncio.wait(list(self._tasks), timeout=self.timeout * 2)
        await self.redis.close()

    def spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def call(self, script: Script, keys: tuple, args: tuple, cache: bool = True) -> Any:
        """One round trip bounded by `timeout_ms`; None (and Redis marked down) when it fails
        or is too slow."""
        if not self.up:
            return None
        try:
            try:
                return await self.redis.send(script.evalsha(keys, args, cache))
            except NoScriptError:
                return await self.redis.send(script.eval(keys, args))
        except (RedisError, OSError, TimeoutError) as exc:
            self._down(exc)
            return None

    def fire(self, script: Script, keys: tuple, args: tuple) -> None:
        """A call nobody waits for (FINISH): no task, a callback notes a failure."""
        if not self.up:
            return
        fut = self.redis.send(script.evalsha(keys, args))
        self._tasks.add(fut)
        fut.add_done_callback(lambda f: self._fired(f, script, keys, args))

    def _fired(self, fut: asyncio.Future, script: Script, keys: tuple, args: tuple) -> None:
        self._tasks.discard(fut)
        exc = None if fut.cancelled() else fut.exception()
        if isinstance(exc, NoScriptError):
            self.spawn(self.call(script, keys, args))
        elif exc is not None:
            self._down(exc)

    def _down(self, exc: BaseException) -> None:
        self.metrics.shared_state_failure()
        if not self.up:
            return
        self.up = False
        self.metrics.shared_state_up(False)
        log.warning("shared state unavailable (%s); %s until Redis answers again",
                    type(exc).__name__, "rejecting requests with 503" if self.reject
                    else "using this instance's own limits")
        self._prober = asyncio.ensure_future(self._probe())

    async def _probe(self) -> None:
        while True:
            await asyncio.sleep(PROBE_INTERVAL)
            try:
                await self.redis.send(pack("PING"))
            except (RedisError, OSError, TimeoutError):
                continue
            self.up = True
            self.fleet_version = b""  # learn the fleet's breakers and cooldowns again
            self.metrics.shared_state_up(True)
            log.warning("shared state available again; limits are shared")
            return

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_ms / 3000.0)
            if self.leases and self.up:
                members = list(self.leases)
                keys = tuple(k for m in members for k in self.leases[m])
                args = (self.ttl_ms, *(m for m in members for _ in self.leases[m]))
                await self.call(self._renew, keys, args, cache=False)

    # ---------------------------------------------------------------- admission

    def _keys(self, client: ClientLimits | None) -> tuple[str, str, str, str]:
        """(rate, leases, tpm, usage prefix) of a client; the id is a name or a short hash."""
        if client is None:
            return self.k_rate, self.k_leases, self.k_rate, ""
        keys = self._client_keys.get(client.id)
        if keys is None:
            c = f"{self.prefix}:c:{client.id}"
            keys = self._client_keys[client.id] = (f"{c}:rate", f"{c}:leases", f"{c}:tpm",
                                                   f"{c}:usage:")
        return keys

    async def admit(self, client: ClientLimits | None, now: float, wall: float) -> Ticket:
        if not self.up:
            return self._fallback(client, now, wall)
        server = self.local
        rate, leases, tpm, usage = self._keys(client)
        member = f"{self._instance}:{next(self._ids):x}"
        gcap = server.global_permits.limit or 0
        ccap = (client.max_concurrent or 0) if client else 0
        reply = await self.call(self._admit, (self.k_rate, self.k_leases, rate, leases, tpm,
                                              self.k_fleet), (
            member, self.ttl_ms, server.rate_per_minute or 0, gcap,
            (client.rate_per_minute or 0) if client else 0, ccap,
            (client.tokens_per_minute or 0) if client else 0,
            (client.daily_token_budget or 0) if client else 0, usage, self.fleet_version))
        if reply is None:
            return self._fallback(client, now, wall)
        ok, reason, limit, wait_ms, version, fields, redis_now = reply
        if version != self.fleet_version:
            self._learn(version, fields, redis_now, now)
        if not ok:
            raise refusal(reason.decode(), limit, wait_ms / 1000.0)
        held = tuple(k for k, cap in ((self.k_leases, gcap), (leases, ccap)) if cap)
        if held:
            self.leases[member] = held
        return SharedTicket(self, client, member if held else None, leases, tpm, usage)

    def _fallback(self, client: ClientLimits | None, now: float, wall: float) -> Ticket:
        if self.reject:
            raise ServiceUnavailable("shared state (Redis) is unavailable", retry_after=1.0)
        self.metrics.local_admission()
        return self.local.admit(client, now, wall)

    def finish(self, ticket: SharedTicket, usage: Any) -> None:
        member = ticket.member
        if member is not None:
            self.leases.pop(member, None)
        tokens = usage_tokens(usage)
        if member is None and not tokens:
            return  # nothing held, nothing spent: no round trip
        client = ticket.client
        args = (member or "", tokens, (client.tokens_per_minute or 0) if client else 0,
                ticket.usage_prefix, *usage_parts(usage))
        self.fire(self._finish, (self.k_leases, ticket.leases_key, ticket.tpm_key), args)

    # ---------------------------------------------------------------- breakers and cooldowns

    def _learn(self, version: bytes, fields: list, redis_now: int, now: float) -> None:
        """The fleet hash changed: mirror its breakers and cooldowns (times → local monotonic)."""
        self.fleet_version = version
        flat = dict(zip(fields[::2], fields[1::2]))
        self.cooldowns.learn(flat, redis_now, now)
        for name, breaker in self.breakers.items():
            b = name.encode()
            state = flat.get(b + b"|s", b"closed").decode()
            opened = int(flat.get(b + b"|o", b"0"))
            left = max(0, breaker.cooldown_ms - (redis_now - opened)) if state == OPEN else 0
            breaker.learn(state, int(flat.get(b + b"|f", b"0")), left)


class SharedTicket(Ticket):
    __slots__ = ("store", "member", "leases_key", "tpm_key", "usage_prefix")

    def __init__(self, store: SharedState, client: ClientLimits | None, member: str | None,
                 leases_key: str, tpm_key: str, usage_prefix: str) -> None:
        super().__init__(None, client)
        self.store, self.member = store, member
        self.leases_key, self.tpm_key, self.usage_prefix = leases_key, tpm_key, usage_prefix

    def release(self, usage: Any = None, now: float = 0.0, wall: float = 0.0) -> None:
        store, self.store = self.store, None
        if store is not None:
            store.finish(self, usage)


class SharedBreaker:
    """One provider's breaker for the whole fleet: the state lives in Redis (`BREAKER`); this
    object mirrors it (learnt from every admission's reply) so that a closed breaker, and an open
    one still cooling down, cost no round trip. Leaving `open` asks Redis, which admits exactly one
    half-open probe fleet-wide. While Redis is down, the provider's local breaker decides."""

    def __init__(self, store: SharedState, local: CircuitBreaker) -> None:
        self.store, self.local = store, local
        self.name = local.name
        self.threshold = local.threshold
        self.cooldown_ms = int(local.cooldown * 1000)
        self.probe_timeout_ms = int((local.probe_timeout or local.cooldown) * 1000)
        self._state, self.failures = CLOSED, 0
        self._open_until = 0.0  # monotonic time until which `open` fails fast without asking
        self._probe = False  # this instance holds the fleet's half-open probe
        self._now = 0.0

    @property
    def enabled(self) -> bool:
        return self.threshold > 0

    @property
    def state(self) -> str:
        return self._state if self.store.up else self.local.state

    def _set(self, state: str, failures: int, left_ms: float) -> None:
        if state != self._state and self.local.on_change is not None:
            self.local.on_change(self.name, state)
        self._state, self.failures = state, failures
        self._open_until = self._now + left_ms / 1000.0 if state == OPEN else 0.0

    def learn(self, state: str, failures: int, left_ms: float) -> None:
        self._now = time.monotonic()
        self._set(state, failures, left_ms)

    def allow(self, now: float) -> Any:
        if not self.store.up:
            return self.local.allow(now)
        if self._state == CLOSED:
            return True
        if self._state == OPEN and now < self._open_until:
            return False
        return ASK

    async def ask(self, now: float) -> bool:
        reply = await self._call("allow", now)
        if reply is None:
            return self.local.allow(now)
        if reply[0] and self._state == HALF_OPEN:
            self._probe = True  # this instance holds the fleet's probe
        return bool(reply[0])

    async def _call(self, verb: str, now: float) -> Any:
        reply = await self.store.call(self.store._breaker, (self.store.k_fleet,), (
            self.name, verb, self.threshold, self.cooldown_ms, self.probe_timeout_ms))
        if reply is not None:
            self._now = now
            self._set(reply[1].decode(), int(reply[2]), int(reply[3]))
        return reply

    def _report(self, verb: str) -> None:
        self.store.spawn(self._call(verb, time.monotonic()))

    def success(self) -> None:
        self.local.success()
        self._probe = False
        if self.store.up and (self._state != CLOSED or self.failures):
            self._report("success")

    def failure(self, now: float) -> None:
        self.local.failure(now)
        self._probe = False
        if self.store.up and self.threshold:
            self._report("failure")

    def release_probe(self) -> None:
        self.local.release_probe()
        if self._probe and self.store.up:
            self._probe = False
            self._report("release")

    cancel = release_probe

    def is_open(self, now: float) -> bool:
        if not self.store.up:
            return self.local.is_open(now)
        return self._state == OPEN and now < self._open_until


class SharedCooldowns:
    """The key pools' `CooldownStore` for the fleet: `cool()` is one round trip (`COOL`, on a
    429); `remaining()` reads this instance's mirror of the fleet hash, learnt from the admission
    every request makes anyway, so a cooldown set by one instance holds on every other from its
    next request on, and choosing a key costs no round trip. While Redis is down (or for a
    cooldown Redis could not take), the local store decides."""

    def __init__(self, store: SharedState) -> None:
        from .limits import LocalCooldowns
        self.store, self.local = store, LocalCooldowns()
        self._until: dict[tuple[str, str], float] = {}  # (provider, label) → monotonic end

    def learn(self, flat: dict[bytes, bytes], redis_now: int, now: float) -> None:
        until = {}
        for field, value in flat.items():
            provider, sep, label = field.decode().partition("#")
            if sep and (left := int(value) - redis_now) > 0:
                until[provider, label] = now + left / 1000.0
        self._until = until

    async def remaining(self, provider: str, labels: Any, now: float) -> list[float]:
        local = await self.local.remaining(provider, labels, now)
        if not self.store.up:
            return local
        until = self._until
        return [max(mine, until.get((provider, label), 0.0) - now)
                for mine, label in zip(local, labels)]

    async def cool(self, provider: str, label: str, seconds: float, now: float) -> float:
        reply = await self.store.call(self.store._cool, (self.store.k_fleet,),
                                      (provider, label, seconds))
        if reply is None:
            return await self.local.cool(provider, label, seconds, now)
        left = int(reply) / 1000.0
        self._until[provider, label] = now + left
        return left
