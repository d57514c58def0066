"""Gemini `streamGenerateContent?alt=sse` (provider side) → IR stream events. Sans-IO:
`feed(bytes)`, `close()`.

Each SSE frame is a whole `GenerateContentResponse`. `Parts` turns the parts of its first
candidate into IR blocks, one open at a time: consecutive text parts extend one text block,
consecutive thought parts one thinking block, each `functionCall` is a whole tool_use block
(`ToolUseStart`, one `ToolArgsDelta`, `BlockStop`; an id made up when the provider sent none).
A `thoughtSignature` on a thought part is that thinking block's signature; on any other part it
becomes an empty thinking block (a carrier) right before that part's block, or, for a text part
that continues an open text block (Gemini signs the last part of a text answer), right after that
text block; the adapter puts a carrier's signature back on the part after it, else on the turn's
last part. Signatures are tagged `gemini:` (`ir.tag_signature`).

The stream has no terminal event: `MessageDelta` (the last finish reason; `STOP` after a function
call anywhere in the stream is `tool_use`; usage from the last chunk that carried counts) and
`MessageStop` come from `close()`. A body that ends without a finish reason is a cut stream
(`UpstreamProtocolError`); `MALFORMED_FUNCTION_CALL` / `UNEXPECTED_TOOL_CALL` are retryable
upstream errors; an in-band `{"error": …}` chunk is the provider's error with its code. As in the
other decoders, events decoded from the same `feed()` before an error are on `err.events`.
"""
from __future__ import annotations

import uuid

import orjson

from ... import ir
from ...errors import GatewayError, UpstreamError, UpstreamProtocolError, from_upstream
from ...sse import SSEParser
from ...toolnames import ToolNames
from .fields import PROTOCOL, RETRY_REASONS, STATUS_CODES, STOP_REASONS, usage_from

_TEXT, _THINKING = 1, 2
_END, _NEXT = b"\r\n\r\n", b"\r\n\r\ndata: "


class Parts:
    """Parts of one answer → IR block events (`feed(parts, out)`, then `finish(out)`)."""

    __slots__ = ("_next", "_open", "_names", "_ids", "_deferred", "calls")

    def __init__(self, names: ToolNames | None, id_prefix: str) -> None:
        self._next = 0  # the next IR block index
        self._open = 0  # _TEXT, _THINKING or 0
        self._names = names
        self._ids = id_prefix
        self._deferred: str | None = None  # a signature on the open text, for after it
        self.calls = 0  # function calls seen

    def _close(self, out: list) -> None:
        if self._open:
            out.append(ir.BlockStop(self._next - 1))
            self._open = 0
            if self._deferred:  # a text's signature follows its block (its carrier)
                sig, self._deferred = self._deferred, None
                self._carrier(sig, out)

    def _start(self, kind: int, out: list) -> int:
        self._close(out)
        index = self._next
        self._next += 1
        out.append(ir.TextStart(index) if kind == _TEXT else ir.ThinkingStart(index))
        self._open = kind
        return index

    def _carrier(self, signature: str, out: list) -> None:
        index = self._start(_THINKING, out)
        out.append(ir.SignatureDelta(index, ir.tag_signature(PROTOCOL, signature)))
        self._close(out)

    def feed(self, parts: list, out: list) -> None:
        # the provider writes camelCase (the API's JSON output), so no snake_case look-ups here
        for part in parts:
            text = part.get("text")
            sig = part.get("thoughtSignature")
            if text is not None and not sig and self._open == _TEXT and "thought" not in part:
                if text:  # the hot case: more of the open text
                    out.append(ir.TextDelta(self._next - 1, text))
                continue
            if text is not None and part.get("thought") is True:
                index = (self._next - 1 if self._open == _THINKING
                         else self._start(_THINKING, out))
                if text:
                    out.append(ir.ThinkingDelta(index, text))
                if sig:  # a signature ends its thinking block
                    out.append(ir.SignatureDelta(index, ir.tag_signature(PROTOCOL, sig)))
                    self._close(out)
                continue
            if sig:
                if text is not None and self._open == _TEXT:
                    self._deferred = sig  # a text's signature: the text stays one block
                else:
                    self._carrier(sig, out)
            if text is not None:
                if text:
                    index = self._next - 1 if self._open == _TEXT else self._start(_TEXT, out)
                    out.append(ir.TextDelta(index, text))
                continue
            call = part.get("functionCall")
            if call is not None:
                self._call(call, out)
            # inlineData, executableCode, …: nothing the IR carries for an answer

    def _call(self, call: dict, out: list) -> None:
        self._close(out)
        name = call["name"]
        if not isinstance(name, str):
            raise TypeError("name")
        args = call.get("args")
        if args is None:
            args = {}
        elif not isinstance(args, dict):
            raise TypeError("args")
        call_id = call.get("id") or f"{self._ids}_{self.calls}"
        self.calls += 1
        if self._names:
            name = self._names.to_client(name)
        index = self._next
        self._next += 1
        out.append(ir.ToolUseStart(index, call_id, name))
        out.append(ir.ToolArgsDelta(index, orjson.dumps(args).decode()))
        out.append(ir.BlockStop(index))

    def finish(self, out: list) -> None:
        self._close(out)


def call_id_prefix(response_id: str | None) -> str:
    return "call_" + (response_id or uuid.uuid4().hex)[:40]


def candidate_error(reason: str, provider: str) -> UpstreamError:
    err = UpstreamError(f"provider '{provider}' ended the answer with {reason}", status=502,
                        provider=provider)
    err.retryable = True  # a new attempt usually produces a well-formed call
    return err


def inband_error(error: dict, provider: str) -> GatewayError:
    code = error.get("code")
    if not isinstance(code, int) or not 400 <= code < 600:
        code = STATUS_CODES.get(error.get("status"), 500)
    message = error.get("message")
    return from_upstream(code, message if isinstance(message, str) else "", provider=provider)


class StreamDecoder:
    __slots__ = ("_parser", "_provider", "_names", "_parts", "_usage", "_reason", "_started",
                 "_done", "_refused")

    def __init__(self, req: ir.Request | None = None, provider: str = "gemini") -> None:
        self._parser = SSEParser()
        self._provider = provider
        self._names = ToolNames.for_request(req) if req is not None and req.tools else None
        self._parts: Parts | None = None
        self._usage = ir.Usage()
        self._reason: str | None = None
        self._started = self._done = self._refused = False

    @property
    def usage(self) -> ir.Usage:
        return self._usage

    def feed(self, chunk: bytes) -> list[ir.StreamEvent]:
        out: list[ir.StreamEvent] = []
        try:
            parser = self._parser
            if chunk[-4:] == _END and chunk[:6] == b"data: " and parser.idle():
                # the usual read: whole one-line frames (`data: {…}\r\n\r\n` each), split
                # without the line parser; JSON keeps \r and \n escaped inside strings
                frames = chunk[6:-4].split(_NEXT)
                for data in frames:
                    if 10 in data or 13 in data:
                        break
                else:
                    for data in frames:
                        self._chunk(data, out)
                    return out
            payloads, rest = parser.data_frames(chunk)
            for data in payloads:
                self._chunk(data, out)
            if rest:
                for event in parser.feed(rest):
                    self._chunk(event.data, out)
        except GatewayError as err:
            err.events = out
            raise
        return out

    def close(self) -> list[ir.StreamEvent]:
        out: list[ir.StreamEvent] = []
        try:
            for event in self._parser.close():
                self._chunk(event.data, out)
            if self._reason is None and not self._refused:
                raise UpstreamProtocolError(
                    f"provider '{self._provider}' stream ended before a finish reason")
            self._parts.finish(out)
            reason = self._reason
            if reason == ir.END_TURN and self._parts.calls:
                reason = ir.TOOL_USE
            u = self._usage
            out.append(ir.MessageDelta(reason, None, ir.Usage(
                u.input_tokens, u.output_tokens, u.cache_read_input_tokens,
                u.cache_creation_input_tokens)))
            out.append(ir.MessageStop())
            self._done = True
        except GatewayError as err:
            err.events = out
            raise
        return out

    def _chunk(self, data: bytes, out: list) -> None:
        if data[:1] != b"{" and data.strip() == b"[DONE]":  # not Gemini's, but harmless
            return
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UpstreamProtocolError(
                f"provider '{self._provider}' sent malformed JSON in its stream") from None
        if not isinstance(obj, dict):
            raise UpstreamProtocolError(f"provider '{self._provider}' sent a non-object chunk")
        error = obj.get("error")
        if error is not None:
            raise inband_error(error if isinstance(error, dict) else {}, self._provider)
        try:
            self._response(obj, out)
        except (KeyError, TypeError, AttributeError, ValueError):
            raise UpstreamProtocolError(
                f"provider '{self._provider}' sent a malformed chunk") from None

    def _response(self, obj: dict, out: list) -> None:
        meta = obj.get("usageMetadata")
        if meta:
            self._usage = usage_from(meta)
        if not self._started:
            self._started = True
            rid = obj.get("responseId")
            self._parts = Parts(self._names, call_id_prefix(rid))
            u = self._usage
            out.append(ir.MessageStart(rid or "", obj.get("modelVersion") or "",
                                       ir.Usage(u.input_tokens, 0, u.cache_read_input_tokens)))
        candidates = obj.get("candidates")
        if not candidates:
            feedback = obj.get("promptFeedback")
            if feedback and feedback.get("blockReason"):
                self._refused, self._reason = True, ir.REFUSAL
            return
        candidate = candidates[0]
        content = candidate.get("content")
        if content:
            parts = content.get("parts")
            if parts:
                self._parts.feed(parts, out)
        reason = candidate.get("finishReason")
        if reason:
            if reason in RETRY_REASONS:
                raise candidate_error(reason, self._provider)
            self._reason = STOP_REASONS.get(reason, ir.END_TURN)
