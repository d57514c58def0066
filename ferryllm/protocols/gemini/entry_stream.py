"""IR stream events → Gemini `streamGenerateContent?alt=sse` bytes: one `data: <one-line
GenerateContentResponse>` frame per chunk, `\\r\\n\\r\\n` after each, no `[DONE]`.

    TextDelta          → a chunk with one `{"text": …}` part
    ThinkingDelta      → a chunk with one `{"text": …, "thought": true}` part
    ToolUse… BlockStop → a chunk with one complete `{"functionCall": {id, name, args}}` part
    MessageDelta       → the last chunk: `finishReason` and `usageMetadata` (and an empty text
                         part carrying a signature nothing else took)
    MessageStart, MessageStop, TextStart, BlockStop of text/thinking: nothing on the wire

With `array=True` the same chunks form one JSON array (`streamGenerateContent` without
`?alt=sse`): `[` before the first, `,` between, `]` after the last (or after an error chunk).

A signed thinking block's signature goes on the next part that is not a thought
(`fields.PendingSignatures`). Hot path: a chunk's head and tail are bytes built once per stream,
so a text delta is `head + orjson.dumps(text) + tail`.
"""
from __future__ import annotations

import orjson

from ... import ir
from ...errors import GatewayError
from .entry import error_body
from .fields import PendingSignatures, finish_reason, usage_metadata

_HEAD = b'data: {"candidates":[{"content":{"parts":['
_PARTS_END = b'],"role":"model"},"index":0}],'
_END = b"}\r\n\r\n"
PING = b"\r\n"  # an empty line: every Gemini client skips it (a `:` comment breaks google-genai)

_TextDelta, _ThinkingDelta, _ToolArgsDelta = ir.TextDelta, ir.ThinkingDelta, ir.ToolArgsDelta
dumps = orjson.dumps


class StreamEncoder:
    PING = PING

    __slots__ = ("display_model", "_thoughts", "_array", "_opened", "_tail", "_text", "_text_end", "_thought_end", "_pending",
                 "_thinking", "_signature", "_redacted", "_tool", "_args", "_id")

    def __init__(self, display_model: str, thoughts: bool = True, array: bool = False) -> None:
        self.display_model = display_model
        self._thoughts = thoughts  # send thought parts (the client asked for includeThoughts)
        self._array = array  # one JSON array instead of SSE frames
        self._opened = False  # the array's `[` went out
        self._pending = PendingSignatures()
        self._thinking: list[str] = []  # the open thinking block's text, for an envelope
        self._signature = ""
        self._redacted: str | None = None
        self._tool: tuple[str, str] | None = None
        self._args: list[str] = []
        self._prepare("")

    def _prepare(self, resp_id: str) -> None:
        self._id = resp_id
        tail = (b'"modelVersion":' + dumps(self.display_model) + b',"responseId":'
                + dumps(resp_id) + _END)
        self._tail = tail
        self._text = _HEAD + b'{"text":'
        self._text_end = b"}" + _PARTS_END + tail
        self._thought_end = b',"thought":true}' + _PARTS_END + tail

    def _part(self, part: dict) -> bytes:
        sig = self._pending.take()
        if sig:
            part["thoughtSignature"] = sig
        return _HEAD + dumps(part) + _PARTS_END + self._tail

    def encode(self, events: list[ir.StreamEvent]) -> bytes:
        out: list[bytes] = []
        add = out.append
        for ev in events:
            cls = ev.__class__
            if cls is _TextDelta:
                if self._pending.blocks:
                    add(self._part({"text": ev.text}))
                elif ev.text:
                    add(self._text + dumps(ev.text) + self._text_end)
            elif cls is _ThinkingDelta:
                if ev.thinking:
                    self._thinking.append(ev.thinking)
                    if self._thoughts:
                        add(self._text + dumps(ev.thinking) + self._thought_end)
            elif cls is _ToolArgsDelta:
                self._args.append(ev.partial_json)
            else:
                frame = self._frame(ev)
                if frame:
                    add(frame)
        if self._array:
            return self._as_array(b"".join(out), events)
        return b"".join(out)

    def _as_array(self, frames: bytes, events: list) -> bytes:
        """SSE frames → array elements (a chunk's JSON has no raw line break to cut at)."""
        items = [f[6:] for f in frames.split(b"\r\n\r\n") if f]
        out = b""
        if items:
            out = (b",\r\n" if self._opened else b"[") + b"\r\n,\r\n".join(items)
            self._opened = True
        if events and events[-1].__class__ is ir.MessageStop:
            out += b"]" if self._opened else b"[]"
        return out

    def _frame(self, ev: ir.StreamEvent) -> bytes:
        cls = ev.__class__
        if cls is ir.ToolUseStart:
            self._tool, self._args = (ev.id, ev.name), []
        elif cls is ir.ThinkingStart:
            self._thinking, self._signature, self._redacted = [], "", ev.redacted_data
        elif cls is ir.SignatureDelta:
            self._signature += ev.signature
        elif cls is ir.BlockStop:
            return self._stop()
        elif cls is ir.MessageStart:
            self._prepare(ev.id)
        elif cls is ir.MessageDelta:
            parts = b""
            sig = self._pending.take()
            if sig:
                parts = dumps({"text": "", "thoughtSignature": sig})
            return (_HEAD + parts + b'],"role":"model"},"finishReason":'
                    + dumps(finish_reason(ev.stop_reason)) + b',"index":0}],"usageMetadata":'
                    + dumps(usage_metadata(ev.usage)) + b"," + self._tail)
        return b""

    def _stop(self) -> bytes:
        if self._tool is not None:
            (call_id, name), self._tool = self._tool, None
            raw = "".join(self._args)
            self._args = []
            try:
                args = orjson.loads(raw) if raw else {}
            except orjson.JSONDecodeError:
                args = None
            if not isinstance(args, dict):
                args = {"_raw": raw}
            return self._part({"functionCall": {"id": call_id, "name": name, "args": args}})
        if self._signature or self._redacted is not None:
            block = (ir.ThinkingBlock(redacted=True, data=self._redacted)
                     if self._redacted is not None else
                     ir.ThinkingBlock("".join(self._thinking), self._signature))
            self._pending.blocks.append(block)
            self._signature, self._redacted, self._thinking = "", None, []
        return b""

    def error(self, err: GatewayError) -> bytes:
        """The in-band error frame (then the stream ends)."""
        if self._array:
            return (b",\r\n" if self._opened else b"[") + error_body(err) + b"]"
        return b"data: " + error_body(err) + b"\r\n\r\n"
