"""The client side of a stream: the SSE response (opened lazily, headers sent with the first
bytes), the keep-alive ticker shared by all open streams, pass-through model rewriting, and
`StreamOutput`, which turns one provider attempt's chunks or IR events into client bytes and
stamps time to first token and usage on the request's outcome."""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import orjson
from aiohttp import web

from .errors import GatewayError, UpstreamError
from .ir import MessageStart, MessageStop, TextDelta, ThinkingDelta, ToolArgsDelta, Usage

if TYPE_CHECKING:
    from .relay import Outcome

SSE_HEADERS = {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
    "connection": "keep-alive",
}




class SSEResponse(web.StreamResponse):
    """Headers go out with the first bytes (a ping or content), so a short stream is one write:
    headers, data and the chunked terminator together."""

    _send_headers_immediately = False


class ClientStream:
    """The client's SSE response: opened lazily, stamped on every write for the keep-alive ticker."""

    __slots__ = ("request", "response", "ping_frame", "committed", "ended", "last_write", "loop",
                 "encoder")

    def __init__(self, request: web.Request, headers: dict[str, str], ping: bytes) -> None:
        self.request = request
        self.response = SSEResponse(status=200, headers=headers)
        self.ping_frame = ping
        self.committed = False
        self.ended = False
        self.loop = asyncio.get_running_loop()
        self.last_write = self.loop.time()
        self.encoder = None  # the entry's stream encoder of the current attempt, if translating

    @property
    def prepared(self) -> bool:
        return self.response.prepared

    async def write(self, data: bytes) -> None:
        if not self.response.prepared:
            await self.response.prepare(self.request)
        self.last_write = self.loop.time()
        await self.response.write(data)

    async def end(self, data: bytes) -> None:
        """The last bytes of a complete stream, with the end of the response in the same write."""
        if not self.response.prepared:
            await self.response.prepare(self.request)
        self.ended = True
        await self.response.write_eof(data)

    async def ping(self) -> None:
        if self.ended:
            return
        try:
            await self.write(self.ping_frame)
        except (ConnectionError, RuntimeError):
            pass  # the client is gone; the pump notices on its own write


class KeepAlive:
    """One ticker for all open streams: a stream silent for `interval` seconds gets a ping (an
    Anthropic `ping` event or an SSE comment), from before the provider's first byte on."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.streams: set[ClientStream] = set()
        self._task: asyncio.Task | None = None
        self._pings: set[asyncio.Task] = set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        tick = max(0.01, self.interval / 4)
        while True:
            await asyncio.sleep(tick)
            now = loop.time()
            for stream in self.streams:
                if now - stream.last_write >= self.interval:
                    stream.last_write = now
                    task = loop.create_task(stream.ping())
                    self._pings.add(task)
                    task.add_done_callback(self._pings.discard)


class ModelRewriter:
    """Same-protocol pass-through: replace the backend model with the display model in the
    provider's bytes. Works on whole lines (the model field never spans lines); the unfinished
    tail waits for the next read."""

    __slots__ = ("_old", "_new", "_tail")

    def __init__(self, backend: str, display: str) -> None:
        b, d = orjson.dumps(backend), orjson.dumps(display)
        self._old = (b'"model":' + b, b'"model": ' + b)
        self._new = (b'"model":' + d, b'"model": ' + d)
        self._tail = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._tail + chunk if self._tail else chunk
        cut = data.rfind(b"\n") + 1
        self._tail = data[cut:]
        out = data[:cut]
        for old, new in zip(self._old, self._new):
            out = out.replace(old, new)
        return out

    def close(self) -> bytes:
        tail, self._tail = self._tail, b""
        return tail




class PartialUsage:
    """What a stream cut short used, for a client's token rate and budget (the provider charges
    it too): the usage its `MessageStart` reported plus the output sent so far, estimated from
    its text; input tokens estimated from the request when the provider reported none. Fed only
    for clients with token limits (`Outcome.partial`)."""

    __slots__ = ("request", "start", "chars")

    def __init__(self, request) -> None:
        self.request, self.start, self.chars = request, None, 0

    def feed(self, events: list) -> None:
        for ev in events:
            cls = ev.__class__
            if cls is TextDelta:
                self.chars += len(ev.text)
            elif cls is ToolArgsDelta:
                self.chars += len(ev.partial_json)
            elif cls is ThinkingDelta:
                self.chars += len(ev.thinking)
            elif cls is MessageStart:
                self.start = ev.usage

    def usage(self) -> Usage | None:
        """None when nothing came back (the provider was not reached or sent nothing)."""
        if self.start is None and not self.chars:
            return None
        from .tokens import count_tokens
        start = self.start or Usage()
        known_input = start.prompt_tokens
        return Usage(start.input_tokens if known_input else count_tokens(self.request),
                     max(start.output_tokens, (self.chars + 3) // 4),
                     start.cache_read_input_tokens, start.cache_creation_input_tokens)


class StreamOutput:
    """The client side of one stream attempt: translated (an entry `StreamEncoder`) or passed
    through (the provider's bytes, `model` rewritten). Stamps TTFT and usage on the outcome."""

    __slots__ = ("client", "outcome", "started", "loop", "encoder", "is_passthrough", "rewriter")

    def __init__(self, client: ClientStream, outcome: Outcome, started: float, loop) -> None:
        self.client, self.outcome, self.started, self.loop = client, outcome, started, loop
        self.encoder = None
        self.is_passthrough = False
        self.rewriter: ModelRewriter | None = None

    def passthrough(self, backend_model: str, display_model: str) -> None:
        self.is_passthrough = True
        if backend_model != display_model:
            self.rewriter = ModelRewriter(backend_model, display_model)

    async def send(self, chunk: bytes, events: list) -> None:
        client = self.client
        if client.ended:
            return  # bytes after the end of the message are not the client's
        if self.is_passthrough:
            data = self.rewriter.feed(chunk) if self.rewriter else chunk
        elif events:
            data = self.encoder.encode(events)
        else:
            return
        if not client.committed:
            client.committed = True
            self.outcome.ttft = self.loop.time() - self.started
        if events and self.outcome.partial is not None:
            self.outcome.partial.feed(events)
        if events and events[-1].__class__ is MessageStop:
            self.outcome.usage = events[-2].usage
            if self.rewriter is not None:
                data += self.rewriter.close()
            await client.end(data)
        elif data:
            await client.write(data)

    async def finish(self, events: list) -> None:
        """The provider's body ended: send what is left and end the response."""
        if self.client.ended:
            return
        if events and (not self.is_passthrough or events[-1].__class__ is MessageStop):
            await self.send(b"", events)
        elif self.rewriter is not None:
            rest = self.rewriter.close()
            if rest:
                await self.client.write(rest)

    async def _write(self, data: bytes) -> None:
        if not self.client.committed:
            self.client.committed = True
            self.outcome.ttft = self.loop.time() - self.started
        await self.client.write(data)

    async def before_error(self, err: GatewayError, chunk: bytes) -> None:
        """Nothing the provider said before an error is lost once the client has content (or the
        error cannot be retried): a pass-through relays the chunk holding the provider's own
        error event as is; a translation sends the events decoded before it (`err.events`)."""
        if not (self.client.committed or not err.retryable):
            return  # a clean retry is still possible: send nothing
        if self.is_passthrough:
            if self.client.committed and isinstance(err, UpstreamError) and chunk:
                await self.client.write(self.rewriter.feed(chunk) if self.rewriter else chunk)
                err.relayed = True
            return
        pending = getattr(err, "events", None)
        if pending:
            await self._write(self.encoder.encode(pending))


async def write_quietly(client: ClientStream, data: bytes) -> None:
    try:
        await client.write(data)
    except (ConnectionError, RuntimeError):
        pass
