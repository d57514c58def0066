"""Anthropic Messages SSE (provider side) → IR stream events. Sans-IO: `feed(bytes)`, `close()`.

The output is a well-formed IR stream (see `ferryllm.ir`): blocks the IR does not model
(`server_tool_use`, `web_search_tool_result`, …) are skipped with their deltas and stop, and the
blocks after them renumbered so IR indices stay consecutive from 0; `message_delta` is remembered
(its usage merged over `message_start`'s: fields present win, absent ones keep the start value)
and emitted as the single `MessageDelta` right before `MessageStop`. `ping` and unknown events
and deltas (`citations_delta`, …) are ignored.

Errors: malformed data raises `UpstreamProtocolError`, an in-band `event: error` raises
`from_upstream(...)` with the status its type stands for, and `close()` before `message_stop`
raises `UpstreamProtocolError`. The error is raised by the `feed()`/`close()` whose bytes hold it
(a pass-through relay can still forward that chunk as is); the IR events decoded from the same
call before it are on the exception as `err.events` (a list, possibly empty), so a translating
caller loses nothing and the output never depends on how the bytes were split.
"""
from __future__ import annotations

import orjson

from ... import ir
from ...errors import GatewayError, UpstreamProtocolError, from_upstream
from ...sse import SSEEvent, SSEParser

STATUS_BY_ERROR_TYPE = {
    "invalid_request_error": 400, "authentication_error": 401, "billing_error": 402,
    "permission_error": 403, "not_found_error": 404, "request_too_large": 413,
    "rate_limit_error": 429, "api_error": 500, "timeout_error": 504, "overloaded_error": 529,
}


_USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_read_input_tokens",
                 "cache_creation_input_tokens")


def usage_into(usage: ir.Usage, raw: dict | None) -> None:
    """Overwrite `usage` with the fields `raw` carries (cumulative counts; absent keeps):
    the four totals, the 1-hour share of the cache writes (`cache_creation` by TTL) and the
    thinking share of the output (`output_tokens_details`)."""
    if not raw:
        return
    for field in _USAGE_FIELDS:
        v = raw.get(field)
        if v is not None:
            setattr(usage, field, v)
    by_ttl = raw.get("cache_creation")
    if by_ttl is not None:
        hour = by_ttl.get("ephemeral_1h_input_tokens") or 0
        usage.cache_creation_1h_input_tokens = hour
        if raw.get("cache_creation_input_tokens") is None:  # only the breakdown was given
            usage.cache_creation_input_tokens = hour + (by_ttl.get("ephemeral_5m_input_tokens") or 0)
    details = raw.get("output_tokens_details")
    if details is not None:
        usage.thinking_tokens = details.get("thinking_tokens") or 0


def copy_usage(u: ir.Usage) -> ir.Usage:
    return ir.Usage(u.input_tokens, u.output_tokens, u.cache_read_input_tokens,
                    u.cache_creation_input_tokens, u.cache_creation_1h_input_tokens,
                    u.thinking_tokens)


class StreamDecoder:
    __slots__ = ("_parser", "_provider", "_usage", "_stop_reason", "_stop_sequence",
                 "_stop_details", "_started", "_done", "_next", "_open_up", "_open_ir", "_skip")

    def __init__(self, provider: str = "anthropic") -> None:
        self._parser = SSEParser()
        self._provider = provider
        self._usage = ir.Usage()
        self._stop_reason: str | None = None
        self._stop_sequence: str | None = None
        self._stop_details: dict | None = None
        self._started = self._done = False
        self._next = 0  # the next IR block index
        self._open_up: int | None = None  # upstream index of the open block
        self._open_ir = -1  # its IR index (-1 while a skipped block is open)
        self._skip = False  # the open block is one the IR does not model

    # -- public

    def feed(self, chunk: bytes) -> list[ir.StreamEvent]:
        out: list[ir.StreamEvent] = []
        try:
            for event in self._parser.feed(chunk):
                self._event(event, out)
        except GatewayError as err:
            err.events = out  # decoded before the error, for the caller to deliver
            raise
        return out

    def close(self) -> list[ir.StreamEvent]:
        out: list[ir.StreamEvent] = []
        try:
            for event in self._parser.close():
                self._event(event, out)
            if not self._done:
                raise UpstreamProtocolError("provider stream ended before completion")
        except GatewayError as err:
            err.events = out
            raise
        return out

    @property
    def usage(self) -> ir.Usage:
        """What the provider reported so far (for metrics when a stream fails)."""
        return self._usage

    # -- internals

    def _event(self, event: SSEEvent, out: list[ir.StreamEvent]) -> None:
        if self._done:
            return
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            raise UpstreamProtocolError(
                f"provider '{self._provider}' sent malformed JSON in its stream") from None
        if not isinstance(data, dict):
            raise UpstreamProtocolError(f"provider '{self._provider}' sent a non-object event")
        kind = data.get("type")
        if kind is None:
            kind = event.event.decode("utf-8", "replace")
        try:
            self._dispatch(kind, data, out)
        except (KeyError, TypeError, AttributeError, ValueError):
            raise UpstreamProtocolError(
                f"provider '{self._provider}' sent a malformed {str(kind)[:40]} event") from None

    def _dispatch(self, kind: str, data: dict, out: list[ir.StreamEvent]) -> None:
        if kind == "content_block_delta":
            index = data["index"]
            if index != self._open_up:
                raise UpstreamProtocolError(
                    f"provider '{self._provider}' sent a delta for a block that is not open")
            if self._skip:
                return
            delta = data["delta"]
            dtype = delta["type"]
            if dtype == "text_delta":
                out.append(ir.TextDelta(self._open_ir, delta["text"]))
            elif dtype == "input_json_delta":
                out.append(ir.ToolArgsDelta(self._open_ir, delta["partial_json"]))
            elif dtype == "thinking_delta":
                out.append(ir.ThinkingDelta(self._open_ir, delta["thinking"]))
            elif dtype == "signature_delta":
                out.append(ir.SignatureDelta(self._open_ir, delta["signature"]))
            # citations_delta and other delta types: nothing the IR carries
        elif kind == "content_block_start":
            self._block_start(data["index"], data["content_block"], out)
        elif kind == "content_block_stop":
            if data["index"] == self._open_up:
                if not self._skip:
                    out.append(ir.BlockStop(self._open_ir))
                self._open_up, self._skip = None, False
        elif kind == "message_start":
            if self._started:
                raise UpstreamProtocolError(
                    f"provider '{self._provider}' sent a second message_start")
            message = data["message"]
            usage_into(self._usage, message.get("usage"))
            self._started = True
            u = self._usage
            out.append(ir.MessageStart(id=message.get("id") or "", model=message.get("model") or "",
                                       usage=copy_usage(u)))
        elif kind == "message_delta":
            delta = data.get("delta") or {}
            if "stop_reason" in delta:
                self._stop_reason = delta["stop_reason"]
            if "stop_sequence" in delta:
                self._stop_sequence = delta["stop_sequence"]
            details = delta.get("stop_details")
            if details.__class__ is dict:
                self._stop_details = details
            usage_into(self._usage, data.get("usage"))
        elif kind == "message_stop":
            if not self._started:
                raise UpstreamProtocolError(
                    f"provider '{self._provider}' ended a message it never started")
            self._close_open(out)
            u = self._usage
            out.append(ir.MessageDelta(self._stop_reason, self._stop_sequence, copy_usage(u),
                                       self._stop_details))
            out.append(ir.MessageStop())
            self._done = True
        elif kind == "error":
            error = data.get("error") or {}
            etype = error.get("type")
            message = error.get("message")
            raise from_upstream(STATUS_BY_ERROR_TYPE.get(etype, 500),
                                message if isinstance(message, str) else "",
                                provider=self._provider)
        # ping and unknown events: ignored

    def _block_start(self, index: int, block: dict, out: list[ir.StreamEvent]) -> None:
        if not self._started:
            raise UpstreamProtocolError(
                f"provider '{self._provider}' started a block before message_start")
        if not isinstance(index, int):
            raise TypeError("index")
        self._close_open(out)
        btype = block["type"]
        self._open_up, self._skip = index, False
        if btype == "text":
            out.append(ir.TextStart(self._next))
            text = block.get("text")
            if text:
                out.append(ir.TextDelta(self._next, text))
        elif btype == "thinking":
            out.append(ir.ThinkingStart(self._next))
            thinking, signature = block.get("thinking"), block.get("signature")
            if thinking:
                out.append(ir.ThinkingDelta(self._next, thinking))
            if signature:
                out.append(ir.SignatureDelta(self._next, signature))
        elif btype == "redacted_thinking":
            out.append(ir.ThinkingStart(self._next, redacted_data=block["data"]))
        elif btype == "tool_use":
            out.append(ir.ToolUseStart(self._next, block["id"], block["name"]))
            tool_input = block.get("input")
            if tool_input:  # normally {} at the start; a non-empty one is sent as one fragment
                out.append(ir.ToolArgsDelta(self._next, orjson.dumps(tool_input).decode()))
        else:  # server_tool_use, web_search_tool_result, …: the IR does not carry them
            self._skip = True
            self._open_ir = -1
            return
        self._open_ir = self._next
        self._next += 1

    def _close_open(self, out: list[ir.StreamEvent]) -> None:
        """A block still open when another starts or the message stops is closed here."""
        if self._open_up is not None:
            if not self._skip:
                out.append(ir.BlockStop(self._open_ir))
            self._open_up, self._skip = None, False
