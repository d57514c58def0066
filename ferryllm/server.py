"""The aiohttp application: routes, admission (auth, rate limits, concurrency permits), error
rendering per entry, access log and metrics; `run()` and `run_demo()` for the CLI."""
from __future__ import annotations

import asyncio
import itertools
import logging
import os
import math
import re
import signal
import sys
import time
import uuid
from dataclasses import replace
from typing import Any, Callable

import orjson
from aiohttp import web

from . import __version__, policy, protocols
from .accesslog import AccessLog, config_secrets, setup_logging
from .auth import ClientAuth
from .config import Config
from .errors import GatewayError, InvalidRequest, NotFound, RequestTooLarge
from .limits import Admission, Backoff, Breakers
from .loop import event_loop_factory, tune_gc
from .metrics import Metrics
from .downstream import SSE_HEADERS, KeepAlive, PartialUsage
from .protocols import CHAT, COUNT_TOKENS, MODELS, EntryRoute, Protocol
from .relay import Outcome, Relay, access_record, internal_error, upstream_error
from .router import Router
from .tokens import count_tokens
from .transport import Transport, read_limited

log = logging.getLogger("ferryllm.server")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class Gateway:
    """Everything one app needs, built at start-up and again at each reload (`ferryllm.reload`):
    `previous`, the gateway it replaces, hands over what outlives a config (metrics, key
    cooldowns). `active` counts the requests it serves; once `retire`d it closes its provider
    sessions when the last one ends."""

    def __init__(self, config: Config, previous: Gateway | None = None) -> None:
        self.config = config
        self.active, self.retired = 0, False
        self.router = Router(config)
        # a key pool gets one adapter per key, each with its key in its headers
        key_adapters = {p.name: tuple(protocols.get(p.type).adapter(replace(p, api_key=k.api_key))
                                      for k in p.keys)
                        for p in config.providers if p.keys}
        self.adapters = {p.name: key_adapters[p.name][0] if p.keys
                         else protocols.get(p.type).adapter(p) for p in config.providers}
        self.transport = Transport(config.providers)
        key_labels = {p.name: tuple(k.label for k in p.keys) for p in config.providers if p.keys}
        clients = [c.name for c in config.auth.clients]
        if previous is None or previous.metrics.shared_state != (config.shared_state is not None):
            self.metrics = Metrics(provider_names=[p.name for p in config.providers],
                                   entries=[p.name for p in protocols.entries()],
                                   key_labels=key_labels, clients=clients,
                                   shared_state=config.shared_state is not None)
        else:
            self.metrics = previous.metrics
            self.metrics.add_providers([p.name for p in config.providers], key_labels, clients)
        self.breakers = Breakers(config, on_change=self.metrics.circuit)
        self.auth = ClientAuth(config.auth)
        self.admission = Admission(config.server, config.auth)
        self.shared = None  # [shared_state]: the same limits, on Redis for the whole fleet
        if config.shared_state is not None:
            from .shared_state import SharedState  # nothing about Redis without the section
            self.shared = SharedState(config, self.admission, self.breakers, self.metrics)
        self.keepalive = KeepAlive(config.server.keepalive_interval_secs)
        self.access = AccessLog(config.logging.format)
        self.relay = Relay(config, self.adapters, self.transport, self.breakers,
                           Backoff(config.server.retry_backoff_ms, config.server.retry_backoff_max_ms),
                           self.metrics, self.keepalive, key_adapters=key_adapters,
                           cooldowns=self.shared.cooldowns if self.shared is not None
                           else previous.relay.cooldowns if previous is not None else None)
        self.body_limit = int(config.server.body_limit_mb * 1024 * 1024)

    async def start(self) -> None:
        self.keepalive.start()
        if self.shared is not None:
            await self.shared.start()

    def retire(self) -> None:
        """No new request comes here; close once the last one has ended."""
        self.retired = True
        if not self.active:
            _closing.add(task := asyncio.get_running_loop().create_task(self.close()))
            task.add_done_callback(_closing.discard)

    async def close(self) -> None:
        """Idempotent: a retired gateway may be closed again at shutdown."""
        await self.keepalive.stop()
        await self.transport.close()
        shared, self.shared = self.shared, None
        if shared is not None:
            await shared.close()

    async def admit(self, request: web.Request, proto: Protocol):
        """Auth, then rate limits, concurrency permits, token rates and budgets: a `Ticket` to
        release (with the provider's usage) when the response or the whole stream has ended.
        Keys are looked for where the entry's protocol puts them too (`Entry.client_keys`)."""
        client = None
        if self.auth.enabled:
            extra = proto.entry.client_keys
            client = self.admission.client(
                self.auth.authenticate(request.headers, extra(request) if extra else ()))
        if self.shared is not None:
            return await self.shared.admit(client, time.monotonic(), time.time())
        return self.admission.admit(client, time.monotonic(), time.time())


class Live:
    """The gateway new requests get: swapped whole by a reload."""

    __slots__ = ("gateway", "retired")

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.retired: list[Gateway] = []  # closed at shutdown if still open

    def swap(self, new: Gateway) -> Gateway:
        old, self.gateway = self.gateway, new
        self.retired = [g for g in self.retired if g.active]
        self.retired.append(old)
        old.retire()
        return old


GATEWAY = web.AppKey("gateway", Gateway)  # the gateway the app was built with
LIVE = web.AppKey("live", Live)  # the one serving now
_closing: set[asyncio.Task] = set()  # reloads running, retired gateways being closed


_ID_PREFIX = "req_" + uuid.uuid4().hex[:12]
_ids = itertools.count(1)


def _new_id_prefix() -> None:  # a forked worker must not repeat its parent's ids
    global _ID_PREFIX, _ids
    _ID_PREFIX, _ids = "req_" + uuid.uuid4().hex[:12], itertools.count(1)


os.register_at_fork(after_in_child=_new_id_prefix)


def _request_id(request: web.Request) -> str:
    """The client's `x-request-id` when it is sane, else a process-unique id (no uuid4 per
    request: a random per-process prefix and a counter)."""
    given = request.headers.get("x-request-id")
    if given and _REQUEST_ID.match(given):
        return given
    return f"{_ID_PREFIX}{next(_ids):x}"


def _error_response(proto: Protocol, err: GatewayError, request_id: str) -> web.Response:
    headers = {"request-id": request_id, "x-request-id": request_id}
    if err.retry_after is not None:
        headers["retry-after"] = str(max(0, math.ceil(err.retry_after)))
    return web.Response(status=err.status, body=proto.entry.error_body(err),
                        content_type="application/json", headers=headers)


async def _read_json(request: web.Request, limit: int, timeout: float) -> dict:
    if request.content_length is not None and request.content_length > limit:
        raise RequestTooLarge(f"request body is larger than the {limit} byte limit")
    content = request.content
    if content.is_eof():
        # the usual case: the body came with the headers and is all in the buffer. Taken as it
        # is, not through request.read() (two awaits, a bytearray and a copy of the body)
        raw = content.read_nowait()
        if len(raw) > limit:  # a chunked body has no content-length to check first
            raise RequestTooLarge(f"request body is larger than the {limit} byte limit")
    else:
        try:  # a body still arriving is bounded in time too (a slow client holds a permit)
            async with asyncio.timeout(timeout):
                raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise RequestTooLarge(f"request body is larger than the {limit} byte limit") from None
        except TimeoutError:
            raise InvalidRequest("request body not received in time", status=408) from None
    if not raw:
        raise InvalidRequest("request body is empty; expected a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON ({exc.msg} at position {exc.pos})") from None
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    return body


async def _chat(request: web.Request, proto: Protocol, decode) -> web.StreamResponse:
    gw = request.app[LIVE].gateway
    gw.active += 1
    loop = asyncio.get_running_loop()
    started = loop.time()
    request_id = _request_id(request)
    outcome = Outcome()
    display_model, stream, status = "", False, 500
    gw.metrics.request_started(proto.name)
    ticket = None
    try:
        ticket = await gw.admit(request, proto)
        outcome.client = ticket.client
        body = await _read_json(request, gw.body_limit, gw.config.server.request_timeout_secs)
        req = decode(body, request)
        display_model, stream = req.model, req.stream
        client = ticket.client
        if stream and client is not None and (client.tokens_per_minute or
                                              client.daily_token_budget):
            outcome.partial = PartialUsage(req)  # a stream cut short counts too
        route = gw.router.resolve(req.model)
        if stream:
            ctype = proto.entry.stream_content_type
            headers = {**SSE_HEADERS, "content-type": ctype if ctype.__class__ is str else ctype(req),
                       "request-id": request_id, "x-request-id": request_id}
            resp = await gw.relay.stream(request, req, route, proto, outcome, headers, started)
        else:
            out = await gw.relay.json(req, route, proto, outcome)
            resp = web.Response(body=out, content_type="application/json",
                                headers={"request-id": request_id, "x-request-id": request_id})
        status = 499 if outcome.error_kind == "client_disconnected" else resp.status
        return resp
    except asyncio.CancelledError:
        status, outcome.error_kind = 499, "client_disconnected"
        raise
    except Exception as exc:  # noqa: BLE001 - every failure ends as a protocol-shaped error
        err = exc if isinstance(exc, GatewayError) else internal_error(exc)
        outcome.error_kind = outcome.error_kind or err.kind
        status = err.status
        if err.status >= 500:
            log.warning("request %s failed: %s", request_id, err.message)
        return _error_response(proto, err, request_id)
    finally:
        usage = outcome.usage
        if usage is None and outcome.partial is not None:
            usage = outcome.partial.usage()  # cut short: what was used so far, estimated
        if ticket is not None:
            ticket.release(usage, time.monotonic(), time.time())
        duration = loop.time() - started
        gw.metrics.request_finished(proto.name, outcome.provider, status, duration, outcome.ttft)
        if outcome.usage is not None and outcome.provider:
            gw.metrics.tokens(outcome.provider, outcome.usage)
        if outcome.client is not None and outcome.client.name is not None:
            gw.metrics.client_finished(outcome.client.name, status, usage)
        if gw.access.enabled():
            gw.access.write(access_record(request_id, proto.name, display_model, stream, status,
                                          outcome, duration))
        gw.active -= 1
        if gw.retired and not gw.active:
            gw.retire()


async def _count_tokens(request: web.Request, proto: Protocol, decode) -> web.Response:
    """Forwarded to the route's provider when its adapter counts tokens (`count_tokens`), else
    a local estimate; never a generation."""
    gw = request.app[LIVE].gateway
    gw.active += 1
    request_id = _request_id(request)
    ticket = None
    try:
        ticket = await gw.admit(request, proto)
        body = await _read_json(request, gw.body_limit, gw.config.server.request_timeout_secs)
        req = decode(body, request)
        route = gw.router.resolve(req.model)
        adapter = await gw.relay.adapter_for(route.provider)
        count = getattr(adapter, "count_tokens", None)
        if count is None:
            out = proto.entry.encode_count_tokens(count_tokens(policy.resolve_deferred(req)))
        else:
            prepared = replace(req, model=route.backend_model)
            url, upstream_body = count(prepared)
            resp = await gw.transport.post(route.provider, url, adapter.headers(prepared),
                                           upstream_body,
                                           timeout=gw.relay.json_timeout(route.provider))
            if resp.status != 200:
                raise await upstream_error(route.provider, adapter, resp)
            raw = await read_limited(resp, gw.body_limit)
            if adapter.protocol == proto.name:  # the provider's answer is the client's
                return web.Response(body=raw, content_type="application/json",
                                    headers={"request-id": request_id})
            out = proto.entry.encode_count_tokens(adapter.decode_count_tokens(raw))
        return web.Response(body=orjson.dumps(out), content_type="application/json",
                            headers={"request-id": request_id})
    except Exception as exc:  # noqa: BLE001 - every failure ends as a protocol-shaped error
        err = exc if isinstance(exc, GatewayError) else internal_error(exc)
        return _error_response(proto, err, request_id)
    finally:
        if ticket is not None:
            ticket.release()
        gw.active -= 1
        if gw.retired and not gw.active:
            gw.retire()


async def _models(request: web.Request, proto: Protocol) -> web.Response:
    gw = request.app[LIVE].gateway
    rows = [{"id": pattern, "owned_by": provider, "match_type": match_type,
             "backend_model": backend}
            for pattern, match_type, provider, backend in gw.router.models()]
    return web.Response(body=orjson.dumps(proto.entry.encode_models(rows)),
                        content_type="application/json")


_HANDLERS = {CHAT: _chat, COUNT_TOKENS: _count_tokens}


def _handler(proto: Protocol, route: EntryRoute):
    if route.kind == MODELS:
        async def models(request: web.Request) -> web.Response:
            return await _models(request, proto)
        return models
    run, decode = _HANDLERS[route.kind], route.decode

    async def handler(request: web.Request) -> web.StreamResponse:
        return await run(request, proto, decode)
    return handler


async def health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def readyz(request: web.Request) -> web.Response:
    gw = request.app[LIVE].gateway
    now = time.monotonic()
    if not gw.breakers.enabled or gw.breakers.available(now):
        return web.Response(text="ready")
    return web.Response(status=503, text="not ready: every provider's circuit is open")


async def metrics(request: web.Request) -> web.Response:
    gw = request.app[LIVE].gateway
    if not gw.config.metrics.enabled:
        return _not_found(request)
    body, content_type = gw.metrics.render()
    return web.Response(body=body, headers={"content-type": content_type})


async def root(request: web.Request) -> web.Response:
    return web.json_response({"name": "ferryllm", "version": __version__})


def _not_found(request: web.Request) -> web.Response:
    return _error_response(protocols.entry_for_path(request.path), NotFound(f"no route for {request.method} {request.path[:200]}"),
                           _request_id(request))


async def no_route(request: web.Request) -> web.Response:
    """The catch-all route, registered last: 404, or 405 when another route has the path, in the
    entry's protocol shape. aiohttp's router tries every other resource first (a path matched with
    another method does not stop the search), so this replaces an error middleware — with any
    middleware at all, aiohttp wraps every handler of every request in two more coroutines."""
    allowed: set[str] = set()
    own = request.match_info.route.resource
    for resource in request.app.router.resources():
        if resource is not own:
            allowed |= (await resource.resolve(request))[1]
    if not allowed:
        return _not_found(request)
    err = GatewayError(f"method {request.method} not allowed on {request.path[:200]}", status=405)
    err.kind = "invalid_request_error"
    return _error_response(protocols.entry_for_path(request.path), err, _request_id(request))


def build_app(config: Config) -> web.Application:
    gw = Gateway(config)
    app = web.Application(client_max_size=gw.body_limit)
    app[GATEWAY] = gw
    app[LIVE] = live = Live(gw)
    r = app.router
    for proto in protocols.entries():
        for route in proto.entry.routes:
            r.add_route(route.method, route.path, _handler(proto, route))
    r.add_get("/health", health)
    r.add_get("/healthz", health)
    r.add_get("/readyz", readyz)
    r.add_get("/metrics", metrics)
    r.add_get("/", root)  # HEAD / too (Claude Code's first probe)
    r.add_route("*", "/{tail:.*}", no_route)  # last: 404/405 in protocol shape

    async def on_startup(app: web.Application) -> None:
        await gw.start()

    async def on_cleanup(app: web.Application) -> None:
        for g in (*live.retired, live.gateway):
            await g.close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


def make_runner(app: web.Application, config: Config) -> web.AppRunner:
    return web.AppRunner(
        app, handle_signals=False, access_log=None, handler_cancellation=True,
        shutdown_timeout=config.server.shutdown_grace_secs,
        max_line_size=config.server.max_header_size, max_field_size=config.server.max_header_size)


async def serve_forever(config: Config, *, reuse_port: bool = False,
                        on_ready: Callable[[Any], None] | None = None,
                        extra_apps: list | None = None) -> None:
    """Serve until SIGTERM/SIGINT, then stop accepting, drain for up to `shutdown_grace_secs`;
    SIGHUP reloads the config file (`ferryllm.reload`)."""
    app = build_app(config)
    runner = make_runner(app, config)
    await runner.setup()
    host, port = config.server.host_port
    site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None, backlog=2048)
    await site.start()
    tune_gc()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    from .reload import reload_app

    def hup() -> None:
        _closing.add(task := loop.create_task(reload_app(app)))
        task.add_done_callback(_closing.discard)
    loop.add_signal_handler(signal.SIGHUP, hup)
    log.info("ferryllm %s listening on %s", __version__, config.server.listen)
    if on_ready:
        on_ready(runner)
    try:
        await stop.wait()
    finally:
        log.info("shutting down: draining in-flight requests for up to %ss",
                 config.server.shutdown_grace_secs)
        await runner.cleanup()
        for extra in extra_apps or ():
            await extra.cleanup()


def run_async(coro) -> None:
    """Run on uvloop; after the loop closes, late signals are ignored."""
    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(coro)
    finally:
        # closing the loop restored the default handlers: a second SIGTERM arriving while the
        # process exits must not turn a clean drain into death by signal
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)


def run(config: Config, *, workers: int = 1) -> int:
    setup_logging(config.logging.level, config.logging.format, secrets=config_secrets(config))
    if workers > 1:
        from .workers import supervise
        return supervise(config, workers)
    try:
        run_async(serve_forever(config))
    except OSError as exc:
        print(f"error: cannot listen on {config.server.listen}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def run_demo(listen: str | None = None) -> int:
    """Gateway + built-in mock OpenAI-compatible provider on loopback; no key, no network."""
    from .mock import build_mock_app, demo_config

    async def main() -> None:
        mock_runner = web.AppRunner(build_mock_app(), access_log=None)
        await mock_runner.setup()
        mock_site = web.TCPSite(mock_runner, "127.0.0.1", 0)
        await mock_site.start()
        mock_port = mock_site._server.sockets[0].getsockname()[1]
        config = demo_config(listen or "127.0.0.1:3000", mock_port)
        setup_logging(config.logging.level, config.logging.format)
        base = "http://" + config.server.listen

        def ready(_: Any) -> None:
            print(DEMO_BANNER.format(base=base), flush=True)
        await serve_forever(config, on_ready=ready, extra_apps=[mock_runner])

    try:
        run_async(main())
    except OSError as exc:
        print(f"error: cannot listen on {listen or '127.0.0.1:3000'}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    return 0


DEMO_BANNER = """ferryllm demo: gateway on {base}, routing every model to a built-in mock provider.

Try it:
  curl -s {base}/v1/messages -H 'content-type: application/json' \\
    -d '{{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{{"role":"user","content":"hello"}}]}}'
  curl -sN {base}/v1/chat/completions -H 'content-type: application/json' \\
    -d '{{"model":"gpt-4o","stream":true,"messages":[{{"role":"user","content":"hello"}}]}}'

Claude Code against it (ask it to "use a tool" for a Bash round trip):
  ANTHROPIC_BASE_URL={base} ANTHROPIC_API_KEY=demo claude --print -- "say hello"
  ANTHROPIC_BASE_URL={base} ANTHROPIC_API_KEY=demo claude --print --allowedTools Bash -- "please use a tool"

Ctrl-C stops it."""
