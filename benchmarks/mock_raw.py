"""The mock upstream's fast engine: a minimal HTTP/1.1 server on `asyncio.Protocol` that answers
with responses encoded once (status line, headers and chunked body: one `transport.write()` per
response when there is no gap), so that the mock costs far less CPU than the gateway it feeds.

It speaks just enough HTTP/1.1 for HTTP clients such as aiohttp's: keep-alive, `Content-Length`
request bodies, `Connection: close`, one request at a time per connection (a pipelined request
waits for the previous response). Request bodies sent chunked get 411. The same `Mock` logic as
the aiohttp app (`mock_upstream.build_app`) decides what to answer, so the bytes on the wire are
the same apart from the response headers (no `Date`/`Server`).
"""
from __future__ import annotations

import asyncio

import orjson

from benchmarks.mock_upstream import MODELS, Mock, Plan

GEMINI = b"/v1beta/models/"  # + {model}:{action}
MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024
REASONS = {200: b"OK", 400: b"Bad Request", 401: b"Unauthorized", 403: b"Forbidden",
           404: b"Not Found", 411: b"Length Required", 413: b"Payload Too Large",
           429: b"Too Many Requests", 500: b"Internal Server Error", 502: b"Bad Gateway",
           503: b"Service Unavailable", 529: b"Overloaded"}


def response(status: int, body: bytes, extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n"
            % (status, REASONS.get(status, b"Error"), len(body), extra) + body)


class RawHTTP(asyncio.Protocol):
    """One connection. `routes` maps a POST path to (Mock, protocol)."""

    __slots__ = ("routes", "health", "transport", "buf", "busy", "timer")

    def __init__(self, routes: dict[bytes, tuple[Mock, str]], health: Mock) -> None:
        self.routes, self.health = routes, health
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.busy = False
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        if self.timer:
            self.timer.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy:
            self.process()

    def process(self) -> None:
        buf = self.buf
        while not self.busy and self.transport is not None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    self.fail(431, "request head too large")
                return
            lines = bytes(buf[:end]).split(b"\r\n")
            try:
                method, target, version = lines[0].split(b" ", 2)
            except ValueError:
                self.fail(400, "bad request line")
                return
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
            if "transfer-encoding" in headers:
                self.fail(411, "send a content-length")
                return
            try:
                size = int(headers.get("content-length") or 0)
            except ValueError:
                self.fail(400, "bad content-length")
                return
            if size > MAX_BODY:
                self.fail(413, "body too large")
                return
            if len(buf) < end + 4 + size:
                return
            body = bytes(buf[end + 4:end + 4 + size])
            del buf[:end + 4 + size]
            keep = version == b"HTTP/1.1" and headers.get("connection", "").lower() != "close"
            self.respond(method, target.split(b"?", 1)[0], body, headers, keep)

    def respond(self, method: bytes, path: bytes, body: bytes, headers: dict, keep: bool) -> None:
        route = self.routes.get(path) if method == b"POST" else None
        model = stream = None
        if route is None and method == b"POST" and path.startswith(GEMINI):
            # Gemini puts the model and the action in the path
            route = self.routes.get(GEMINI)
            name, _, action = path[len(GEMINI):].partition(b":")
            model, stream = name.decode("latin-1"), action == b"streamGenerateContent"
        if route is None:
            if method == b"GET" and path == b"/health":
                self.send([response(200, orjson.dumps(self.health.health_body()))], 0.0, 0.0, keep)
            elif method == b"GET" and path == b"/v1/models":
                self.send([response(200, orjson.dumps(MODELS))], 0.0, 0.0, keep)
            else:
                self.send([response(404, b'{"error":{"type":"not_found_error","message":"no such route"}}')],
                          0.0, 0.0, keep)
            return
        mock, protocol = route
        plan: Plan = mock.plan(protocol, body, headers, model, stream)
        enc = plan.enc
        if enc is None:
            parts = [response(plan.status, plan.error, b"retry-after: 1\r\n" if plan.status == 429 else b"")]
        elif not plan.stream:
            parts = [enc.raw_json]
        elif plan.gap <= 0:
            parts = [enc.raw_whole]
        else:
            parts = list(enc.raw_parts)
        self.send(parts, plan.ttfb, plan.gap, keep)

    def send(self, parts: list[bytes], ttfb: float, gap: float, keep: bool) -> None:
        if ttfb <= 0 and len(parts) == 1:
            self.transport.write(parts[0])
            if not keep:
                self.transport.close()
            return
        self.busy = True
        self.timer = asyncio.get_running_loop().call_later(ttfb, self._next, parts, 0, gap, keep)

    def _next(self, parts: list[bytes], i: int, gap: float, keep: bool) -> None:
        self.timer = None
        if self.transport is None:
            return
        self.transport.write(parts[i])
        if i + 1 < len(parts):
            self.timer = asyncio.get_running_loop().call_later(gap, self._next, parts, i + 1, gap, keep)
            return
        self.busy = False
        if not keep:
            self.transport.close()
        elif self.buf:
            self.process()

    def fail(self, status: int, message: str) -> None:
        body = orjson.dumps({"error": {"type": "invalid_request_error", "message": message}})
        self.transport.write(response(status, body, b"connection: close\r\n"))
        self.transport.close()
        self.busy = True  # nothing more is read from this connection


async def start(host: str, port: int, mock: Mock) -> asyncio.AbstractServer:
    """Serve `mock` (its configured protocol, or both) with the raw engine."""
    routes: dict[bytes, tuple[Mock, str]] = {}
    if mock.config.protocol in ("openai", "both"):
        routes[b"/v1/chat/completions"] = (mock, "openai")
    if mock.config.protocol in ("anthropic", "both"):
        routes[b"/v1/messages"] = (mock, "anthropic")
    if mock.config.protocol == "gemini":
        routes[GEMINI] = (mock, "gemini")
    if mock.config.protocol == "responses":
        routes[b"/v1/responses"] = (mock, "responses")
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: RawHTTP(routes, mock), host, port, backlog=4096,
                                    reuse_address=True)
