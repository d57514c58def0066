"""A scripted mock provider: a real aiohttp server on 127.0.0.1 that answers each request with the
next `Reply` of its script (or its default), records what it received, and counts the streams
it has open (to prove that a client disconnect cancels the upstream request)."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


@dataclass
class Reply:
    status: int = 200
    body: bytes | dict | None = None  # JSON reply (non-stream) or error body
    chunks: list[bytes] | None = None  # stream: written one by one
    headers: dict[str, str] = field(default_factory=dict)
    gap: float = 0.0  # pause between chunks
    delay: float = 0.0  # pause before the headers
    hang_after: int | None = None  # after this many chunks, stay silent until cancelled
    resume: asyncio.Event | None = None  # … or until this is set, then go on
    reset_after: int | None = None  # after this many chunks, drop the connection


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    raw_headers: tuple[tuple[bytes, bytes], ...] = ()  # as sent: repeats and case kept

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


class MockProvider:
    def __init__(self, default: Reply | None = None) -> None:
        self.script: list[Reply] = []
        self.default = default
        self.by_key: dict[str, Reply] = {}  # the reply to every request sent with this key
        self.received: list[Received] = []
        self.open_streams = 0
        self.finished_streams = 0
        self.cancelled_streams = 0
        self.stream_closed = asyncio.Event()  # set whenever a stream ends, however it ends

    def then(self, *replies: Reply) -> "MockProvider":
        self.script.extend(replies)
        return self

    def app(self) -> web.Application:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.received.append(Received(request.path, dict(request.headers), await request.read(),
                                      request.raw_headers))
        reply = self.by_key.get(sent_key(request.headers))
        if reply is None:
            reply = self.script.pop(0) if self.script else self.default
        if reply is None:
            return web.json_response({"error": {"message": "mock has no reply scripted"}}, status=500)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.chunks is None:
            body = reply.body if isinstance(reply.body, bytes) else orjson.dumps(reply.body)
            return web.Response(status=reply.status, body=body, headers=reply.headers,
                                content_type="application/json")
        resp = web.StreamResponse(status=reply.status, headers={
            "content-type": "text/event-stream", **reply.headers})
        await resp.prepare(request)
        self.open_streams += 1
        try:
            for i, chunk in enumerate(reply.chunks):
                if reply.hang_after is not None and i == reply.hang_after:
                    await (reply.resume or asyncio.Event()).wait()
                if reply.reset_after is not None and i == reply.reset_after:
                    request.transport.close()
                    return resp
                await resp.write(chunk)
                if reply.gap:
                    await asyncio.sleep(reply.gap)
            if reply.hang_after is not None and reply.hang_after >= len(reply.chunks):
                await asyncio.Event().wait()
            await resp.write_eof()
            self.finished_streams += 1
        except (asyncio.CancelledError, ConnectionError):
            self.cancelled_streams += 1
            raise
        finally:
            self.open_streams -= 1
            self.stream_closed.set()
        return resp


def sent_key(headers) -> str:
    """The provider key a request carries (`x-api-key` or `Authorization: Bearer`)."""
    return headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")


def sse_frames(text: str) -> list[bytes]:
    """A fixture file's text → one chunk per SSE event (as a provider flushes them)."""
    data = text.encode()
    sep = b"\r\n\r\n" if b"\r\n\r\n" in data else b"\n\n"
    parts = [p + sep for p in data.split(sep) if p.strip()]
    return parts
