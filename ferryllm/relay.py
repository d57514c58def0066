"""One request, end to end: route → policy → adapter → provider, with retries, fallback, the
circuit breaker, the stream pump, keep-alive pings and timeouts.

Retries and fallback are free until the first semantic byte reaches the client (`committed`).
Keep-alive pings may already have opened the response (`prepared`): they carry no content, so a
retry is still allowed after them, but from then on an error can only be sent in-band.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from . import policy, toolsearch_loop
from .accesslog import AccessRecord
from .config import Config, ProviderConfig
from .downstream import ClientStream, KeepAlive, StreamOutput, write_quietly
from .errors import GatewayError, InvalidRequest, ServiceUnavailable, UpstreamProtocolError
from .limits import ASK, HALF_OPEN, LocalCooldowns
from .ir import Request, Usage
from .pools import DEFAULT_KEY_COOLDOWN_SECS, Balancer, KeyPool
from .protocols import Protocol
from .router import Route
from .transport import Transport, read_limited, stream_error

log = logging.getLogger("ferryllm.relay")

@dataclass(slots=True)
class Outcome:
    """What happened to one request, for the access log and metrics."""

    provider: str | None = None
    key: str | None = None  # the label of the pool key used last
    backend_model: str | None = None
    retries: int = 0
    fallback: str | None = None
    ttft: float | None = None
    usage: Usage | None = None
    error_kind: str | None = None
    started: float = 0.0  # loop time the request started (streams: the base of `ttft`)
    client: Any = None  # the admitted client's `ClientLimits` (its id goes to the access log)
    partial: Any = None  # a `PartialUsage` when the client's tokens are metered


class Relay:
    def __init__(self, config: Config, adapters: dict[str, Any], transport: Transport,
                 breakers: Any, backoff: Any, metrics: Any, keepalive: KeepAlive, *,
                 key_adapters: dict[str, tuple[Any, ...]] | None = None,
                 cooldowns: Any = None, balancer: Balancer | None = None,
                 rand=random.random) -> None:
        """`key_adapters`: for a provider with a key pool, one adapter per key (each built with
        that key, so a request's headers cost the same as with one key); `cooldowns`: the
        `CooldownStore` (local unless shared state gives another)."""
        self.config = config
        self.adapters = adapters
        self.key_pools = {p.name: KeyPool(p) for p in config.providers if p.keys}
        self.key_adapters = key_adapters or {}
        self.cooldowns = cooldowns if cooldowns is not None else LocalCooldowns()
        self.balancer = balancer if balancer is not None else Balancer(config, rand)
        self.rand = rand
        # providers whose attempts need more than a send: a key pool, or balancer stats
        self._watched = frozenset(self.key_pools) | frozenset(self.balancer.stats)
        self.transport = transport
        self.breakers = breakers
        self.backoff = backoff
        self.metrics = metrics
        self.keepalive = keepalive
        server = config.server
        self._json_timeouts: dict[str, aiohttp.ClientTimeout] = {}
        self._stream_timeouts: dict[str, aiohttp.ClientTimeout] = {}
        # aiohttp's read timeout already bounds the wait for a stream's headers by the idle
        # timeout; a separate deadline (an asyncio.timeout, ~10 µs a request) is only needed when
        # the request timeout is the shorter of the two
        self._headers_deadlines: dict[str, float | None] = {}
        for p in config.providers:
            total = p.timeout_secs or server.request_timeout_secs
            self._json_timeouts[p.name] = aiohttp.ClientTimeout(total=total)
            self._headers_deadlines[p.name] = total if total < server.idle_timeout else None
            self._stream_timeouts[p.name] = aiohttp.ClientTimeout(
                total=None, connect=total, sock_read=server.idle_timeout)
        self._attempts = 1 + max(0, server.retry_attempts)

    # ------------------------------------------------------------------ plan

    def _plan(self, route: Route) -> list[ProviderConfig]:
        if route.pool:
            return [*self.balancer.order(route.config, route.pool), *route.fallbacks]
        return [route.provider, *route.fallbacks]

    def _prepare_request(self, req: Request, route: Route, provider: ProviderConfig) -> Request:
        return policy.apply(req, self.config, provider, model=route.backend_model)

    async def _attempts_for(self, req: Request, route: Route, outcome: Outcome, attempt_fn):
        """Run `attempt_fn(provider, adapter, request)` over the plan: the primary with its retries,
        then each fallback. Nothing is tried again once content reached the client
        (`err.committed`). A `retryable` error (connect, timeout, 429/5xx/529) is retried on the
        same provider, then falls back; any other provider-side failure (credentials rejected, a
        malformed stream) falls back at once; a client error (4xx) is the client's answer."""
        last_err: GatewayError | None = None
        plan = self._plan(route)
        for position, provider in enumerate(plan):
            breaker = self.breakers.get(provider.name)
            adapter = self.adapters[provider.name]
            prepared = self._prepare_request(req, route, provider)
            if position:
                outcome.fallback = provider.name
                self.metrics.fallback(plan[position - 1].name, provider.name)
            for attempt in range(self._attempts):
                probe = False
                if breaker is not None:
                    allowed = breaker.allow(time.monotonic())
                    if allowed is ASK:  # a shared breaker leaving `open`: the fleet decides
                        allowed = await breaker.ask(time.monotonic())
                    if not allowed:
                        last_err = last_err or ServiceUnavailable(
                            f"provider '{provider.name}' is unavailable (circuit open)")
                        break
                    probe = breaker.state == HALF_OPEN
                if attempt:
                    outcome.retries += 1
                    self.metrics.retry(provider.name)
                outcome.provider, outcome.backend_model = provider.name, prepared.model
                try:
                    if provider.name not in self._watched:
                        result = await attempt_fn(provider, adapter, prepared)
                    elif provider.name in self.balancer.stats:
                        result = await self._send(provider, adapter, prepared, outcome, attempt_fn)
                    else:
                        result = await self._on_keys(self.key_pools[provider.name], provider,
                                                     prepared, outcome, attempt_fn)
                except GatewayError as err:
                    self._record_failure(breaker, probe, provider, err)
                    last_err = err
                    if err.committed or (not err.retryable and err.status < 500):
                        raise
                    if not err.retryable:
                        break  # no use asking this provider again: next in the plan
                    if attempt + 1 < self._attempts:
                        await asyncio.sleep(self.backoff.delay(attempt, random.random(),
                                                               err.retry_after))
                    continue
                except BaseException:
                    if probe:
                        breaker.release_probe()
                    raise
                if breaker is not None:
                    breaker.success()
                return result
        assert last_err is not None
        raise last_err

    async def _send(self, provider: ProviderConfig, adapter, prepared: Request,
                    outcome: Outcome, attempt_fn):
        """One attempt on a pool member: its requests in flight and time to first token feed
        the balancer (with its key pool, if it has one: `_on_keys`)."""
        stats = self.balancer.stats[provider.name]
        pool = self.key_pools.get(provider.name)
        loop = asyncio.get_running_loop()
        start = loop.time()
        stats.busy += 1
        try:
            if pool is None:
                result = await attempt_fn(provider, adapter, prepared)
            else:
                result = await self._on_keys(pool, provider, prepared, outcome, attempt_fn)
        finally:
            stats.busy -= 1
        # a stream: to its first content byte; a JSON answer: to its end
        first = loop.time() if outcome.ttft is None else outcome.started + outcome.ttft
        stats.observe(max(0.0, first - start))
        return result

    async def _on_keys(self, pool: KeyPool, provider: ProviderConfig, prepared: Request,
                       outcome: Outcome, attempt_fn):
        """Send with a key of the pool. A 429 cools that key (at least its retry-after) and a
        401/403 takes it out until reload; either way the request moves to another key at once,
        without using a retry attempt. No key left: `pool.pick` raises (429 or 502)."""
        name, labels, store = provider.name, pool.labels, self.cooldowns
        adapters = self.key_adapters[name]
        while True:
            now = time.monotonic()
            index = pool.pick(await store.remaining(name, labels, now), now, self.rand())
            label = outcome.key = labels[index]
            self.metrics.key_event(name, label, "selected")
            try:
                return await attempt_fn(provider, adapters[index], prepared)
            except GatewayError as err:
                status = err.upstream_status
                if err.committed or status not in (401, 403, 429):
                    raise
                self.metrics.upstream_error(name, error_kind(err))
                if status == 429:
                    wait = err.retry_after or DEFAULT_KEY_COOLDOWN_SECS
                    wait = await store.cool(name, label, wait, time.monotonic())
                    self.metrics.key_event(name, label, "cooled")
                    log.info("provider %s key %s rate-limited: cooling for %.1fs", name, label,
                             wait)
                else:
                    pool.take_out(index)
                    self.metrics.key_event(name, label, "out")
                    log.error("provider %s key %s rejected by the provider (HTTP %d): out until "
                              "reload", name, label, status)
            finally:
                pool.release(index)

    async def adapter_for(self, provider: ProviderConfig):
        """The adapter for a single request outside the retry loop (token counting): with a
        key pool, that of a key chosen as for any request (its slot given back at once)."""
        pool = self.key_pools.get(provider.name)
        if pool is None:
            return self.adapters[provider.name]
        now = time.monotonic()
        index = pool.pick(await self.cooldowns.remaining(provider.name, pool.labels, now), now,
                          self.rand())
        pool.release(index)
        return self.key_adapters[provider.name][index]

    def _record_failure(self, breaker, probe: bool, provider: ProviderConfig,
                        err: GatewayError) -> None:
        """Connect errors, timeouts, 429/5xx and broken streams count against the provider;
        a client error (4xx) says nothing about its health, and neither does a key pool with no
        key free (the provider was not asked)."""
        if err.pool_exhausted:
            if probe:
                breaker.release_probe()
            return
        self.metrics.upstream_error(provider.name, error_kind(err))
        if breaker is None:
            return
        if err.retryable or isinstance(err, UpstreamProtocolError):
            breaker.failure(time.monotonic())
        elif probe:
            breaker.release_probe()

    # ------------------------------------------------------------------ JSON

    def json_timeout(self, provider: ProviderConfig) -> aiohttp.ClientTimeout:
        return self._json_timeouts[provider.name]

    async def _fetch_raw(self, provider: ProviderConfig, adapter, prepared: Request):
        """One JSON call: (the provider's body, its IR response)."""
        resp = await self.transport.post(
            provider, adapter.endpoint(prepared), adapter.headers(prepared),
            adapter.encode_request(prepared),
            timeout=self._json_timeouts[provider.name])
        if resp.status != 200:
            raise await upstream_error(provider, adapter, resp)
        try:
            raw = await resp.read()
        except Exception as exc:  # noqa: BLE001 - mapped to a GatewayError
            raise stream_error(provider, exc) from None
        finally:
            resp.release()
        return raw, adapter.decode_response(raw, prepared)

    async def fetch(self, provider: ProviderConfig, adapter, prepared: Request):
        """One JSON call's IR response (for loops over provider calls: `toolsearch_loop`)."""
        return (await self._fetch_raw(provider, adapter, prepared))[1]

    prepare = _prepare_request

    async def json(self, req: Request, route: Route, proto: Protocol, outcome: Outcome) -> bytes:
        async def attempt(provider: ProviderConfig, adapter, prepared: Request) -> bytes:
            raw, ir_resp = await self._fetch_raw(provider, adapter, prepared)
            outcome.usage = ir_resp.usage
            if prepared.native_protocol == adapter.protocol == proto.name:
                body = orjson.loads(raw)
                if "model" not in body:  # a protocol that names the model in the URL
                    return raw
                body["model"] = route.display_model
                return orjson.dumps(body)
            return proto.entry.encode_response(ir_resp, route.display_model, prepared)

        if req.tool_search is not None:  # a server tool search ferryllm may have to run
            attempt = toolsearch_loop.json_attempt(self, attempt, req, route, proto, outcome)
        return await self._attempts_for(req, route, outcome, attempt)

    # ------------------------------------------------------------------ streaming

    async def stream(self, request: web.Request, req: Request, route: Route, proto: Protocol,
                     outcome: Outcome, headers: dict[str, str], started: float) -> web.StreamResponse:
        entry = proto.entry
        outcome.started = started
        client = ClientStream(request, headers, entry.ping)
        self.keepalive.streams.add(client)
        loop = asyncio.get_running_loop()
        pump = (self._pump if req.tool_search is None
                else toolsearch_loop.stream_pump(self, self._pump, req))
        try:
            await self._attempts_for(
                req, route, outcome,
                lambda p, a, r: pump(client, p, a, r, route, proto, outcome, started, loop))
        except (ConnectionResetError, aiohttp.ClientConnectionResetError):
            outcome.error_kind = "client_disconnected"  # nobody is left to tell
        except Exception as exc:  # noqa: BLE001 - every failure ends as a protocol-shaped error
            err = exc if isinstance(exc, GatewayError) else internal_error(exc)
            outcome.error_kind = error_kind(err)
            if not client.prepared:
                raise err from None  # nothing sent yet: a normal HTTP error
            if not getattr(err, "relayed", False):
                # the encoder that sent the stream so far ends it (its event numbering goes on)
                encoder = client.encoder or entry.stream_encoder(req, route.display_model)
                await write_quietly(client, encoder.error(err))
        finally:
            self.keepalive.streams.discard(client)
        return client.response

    async def _pump(self, client: ClientStream, provider: ProviderConfig, adapter,
                    prepared: Request, route: Route, proto: Protocol, outcome: Outcome,
                    started: float, loop) -> None:
        resp = await self.transport.post(
            provider, adapter.endpoint(prepared), adapter.headers(prepared),
            adapter.encode_request(prepared),
            timeout=self._stream_timeouts[provider.name],
            headers_deadline=self._headers_deadlines[provider.name])
        if resp.status != 200:
            raise await upstream_error(provider, adapter, resp)
        breaker = self.breakers.get(provider.name)
        if breaker is not None:
            breaker.success()  # the provider answered; a long stream must not hold the probe
        out = StreamOutput(client, outcome, started, loop)
        decoder = adapter.stream_decoder(prepared)
        if prepared.native_protocol == adapter.protocol == proto.name:
            out.passthrough(prepared.model, route.display_model)
            client.encoder = None
        else:
            out.encoder = client.encoder = proto.entry.stream_encoder(prepared,
                                                                      route.display_model)
        content = resp.content
        try:
            # readany() directly, not `async for … in iter_any()`: one coroutine and one
            # StopAsyncIteration less per read (b"" is the end of the body either way)
            while chunk := await content.readany():
                try:
                    events = decoder.feed(chunk)
                except GatewayError as err:
                    await out.before_error(err, chunk)
                    raise
                await out.send(chunk, events)
            try:
                events = decoder.close()
            except GatewayError as err:
                await out.before_error(err, b"")
                raise
            await out.finish(events)
        except GatewayError as err:
            raise _mark(err, client)
        except (ConnectionResetError, aiohttp.ClientConnectionResetError):
            raise  # the client went away: nothing to send
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise _mark(stream_error(provider, exc), client) from None
        finally:
            resp.close()


async def upstream_error(provider: ProviderConfig, adapter, resp,
                         limit: int | None = None) -> GatewayError:
    """The provider's error status → a GatewayError keeping that status; a provider that echoes
    the gateway's own key in its message never gets it through to the client."""
    raw = await (read_limited(resp, limit) if limit else read_limited(resp))
    err = adapter.decode_error(resp.status, raw, resp.headers)
    err.upstream_status = resp.status
    for key in (provider.api_key, *(k.api_key for k in provider.keys)):
        if key and key in err.message:
            err.message = err.message.replace(key, "***")
            err.args = (err.message,)
    return err


def _mark(err: GatewayError, client: ClientStream) -> GatewayError:
    """Once content reached the client, an error can no longer be retried or fallen back."""
    if client.committed:
        err.committed = True
    return err


def internal_error(exc: BaseException) -> GatewayError:
    """A bug is logged with its traceback (code, never request data) and answered as a 500.
    JSON nested deeper than the encoder takes (orjson dumps 254 levels; the parser took 1024)
    or than Python recursion reaches is the client's doing: a 400, wherever it was met."""
    if isinstance(exc, RecursionError) or (isinstance(exc, TypeError)
                                           and str(exc) == "Recursion limit reached"):
        return InvalidRequest("a JSON value in the request is nested too deeply")
    log.error("internal error: %s", type(exc).__name__, exc_info=exc)
    return GatewayError("internal gateway error")


def error_kind(err: GatewayError) -> str:
    """A fixed-set label for metrics: connect, timeout, status_4xx, status_429, status_5xx,
    protocol, stream."""
    from .errors import UpstreamConnectError, UpstreamTimeout
    if isinstance(err, UpstreamConnectError):
        return "connect"
    if isinstance(err, UpstreamTimeout):
        return "timeout"
    if isinstance(err, UpstreamProtocolError):
        return "protocol"
    if err.status == 429:
        return "status_429"
    if 400 <= err.status < 500:
        return "status_4xx"
    return "status_5xx"


def access_record(request_id: str, entry: str, display_model: str, stream: bool, status: int,
                  outcome: Outcome, duration: float) -> AccessRecord:
    usage = outcome.usage or Usage()
    return AccessRecord(
        request_id=request_id, entry=entry, display_model=display_model,
        backend_model=outcome.backend_model, provider=outcome.provider, key=outcome.key,
        stream=stream,
        status=status, ttft_ms=None if outcome.ttft is None else outcome.ttft * 1000,
        duration_ms=duration * 1000, input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens, cache_read_tokens=usage.cache_read_input_tokens,
        cache_write_tokens=usage.cache_creation_input_tokens, retries=outcome.retries,
        fallback=outcome.fallback, error_kind=outcome.error_kind,
        client=outcome.client.id if outcome.client is not None else None)
