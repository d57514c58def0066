"""IR stream events → Anthropic Messages SSE bytes, frame for frame as the real API sends them.

The encoder trusts the IR stream to be well-formed (see `ferryllm.ir`) and keeps no `sent_*`
flags. Hot path: every frame prefix that does not depend on the stream is a class constant; a
block's delta prefix (which carries its index) is built once when the block starts, so a text
delta costs a few byte concatenations and one `orjson.dumps(str)` — no dict per delta.
"""
from __future__ import annotations

import orjson

from .. import ir
from ..errors import GatewayError
from ..sse import ANTHROPIC_PING
from .anthropic import error_body, message_id, usage_dict

_BLOCK_START = (b'event: content_block_start\ndata: {"type":"content_block_start","index":')
_DELTA = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
_BLOCK_STOP = b'event: content_block_stop\ndata: {"type":"content_block_stop","index":'

_TEXT_START = b',"content_block":{"type":"text","text":""}}\n\n'
_THINKING_START = b',"content_block":{"type":"thinking","thinking":"","signature":""}}\n\n'
_TEXT_MID = b',"delta":{"type":"text_delta","text":'
_THINKING_MID = b',"delta":{"type":"thinking_delta","thinking":'
_SIGNATURE_MID = b',"delta":{"type":"signature_delta","signature":'
_JSON_MID = b',"delta":{"type":"input_json_delta","partial_json":'
_DELTA_END = b"}}\n\n"
_STOP_END = b"}\n\n"
_TextDelta, _ToolArgsDelta, _ThinkingDelta = ir.TextDelta, ir.ToolArgsDelta, ir.ThinkingDelta
dumps = orjson.dumps


class StreamEncoder:
    PING = ANTHROPIC_PING
    MESSAGE_START = b"event: message_start\ndata: "
    MESSAGE_DELTA = b"event: message_delta\ndata: "
    MESSAGE_STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    ERROR = b"event: error\ndata: "

    __slots__ = ("display_model", "_index", "_prefix", "_text", "_json", "_thinking")

    def __init__(self, display_model: str) -> None:
        self.display_model = display_model
        # the open block's index, its delta prefix and that prefix with each delta's head
        self._index = -1
        self._prefix = self._text = self._json = self._thinking = b""

    def _open(self, index: int) -> bytes:
        idx = b"%d" % index
        self._index = index
        prefix = self._prefix = _DELTA + idx
        self._text, self._json = prefix + _TEXT_MID, prefix + _JSON_MID
        self._thinking = prefix + _THINKING_MID
        return idx

    def _delta_prefix(self, index: int) -> bytes:
        return self._prefix if index == self._index else _DELTA + b"%d" % index

    def encode(self, events: list[ir.StreamEvent]) -> bytes:
        out: list[bytes] = []
        add = out.append
        for ev in events:
            # deltas first, by identity: a class-pattern `match` costs more than the frame itself;
            # a delta is three pieces joined once at the end, not concatenated per frame
            cls = ev.__class__
            if cls is _TextDelta:
                add(self._text if ev.index == self._index else
                    _DELTA + b"%d" % ev.index + _TEXT_MID)
                add(dumps(ev.text))
                add(_DELTA_END)
            elif cls is _ToolArgsDelta:
                add(self._json if ev.index == self._index else
                    _DELTA + b"%d" % ev.index + _JSON_MID)
                add(dumps(ev.partial_json))
                add(_DELTA_END)
            elif cls is _ThinkingDelta:
                add(self._thinking if ev.index == self._index else
                    _DELTA + b"%d" % ev.index + _THINKING_MID)
                add(dumps(ev.thinking))
                add(_DELTA_END)
            else:
                add(self._frame(ev))
        return out[0] if len(out) == 1 else b"".join(out)

    def _frame(self, ev: ir.StreamEvent) -> bytes:
        match ev:
            case ir.SignatureDelta(index=index, signature=signature):
                return self._delta_prefix(index) + _SIGNATURE_MID + dumps(signature) + _DELTA_END
            case ir.TextStart(index=index):
                return _BLOCK_START + self._open(index) + _TEXT_START
            case ir.ThinkingStart(index=index, redacted_data=None):
                return _BLOCK_START + self._open(index) + _THINKING_START
            case ir.ThinkingStart(index=index, redacted_data=data):
                block = dumps({"type": "redacted_thinking", "data": data})
                return _BLOCK_START + self._open(index) + b',"content_block":' + block + _STOP_END
            case ir.ToolUseStart(index=index, id=id_, name=name):
                block = dumps({"type": "tool_use", "id": id_, "name": name, "input": {}})
                return _BLOCK_START + self._open(index) + b',"content_block":' + block + _STOP_END
            case ir.BlockStop(index=index):
                return _BLOCK_STOP + b"%d" % index + _STOP_END
            case ir.MessageStart():
                return self._message_start(ev)
            case ir.MessageDelta(stop_reason=reason, stop_sequence=seq, usage=usage):
                return self.MESSAGE_DELTA + dumps({
                    "type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": seq},
                    "usage": usage_dict(usage)}) + b"\n\n"
            case ir.MessageStop():
                return self.MESSAGE_STOP
        raise TypeError(f"not an IR stream event: {type(ev).__name__}")

    def _message_start(self, ev: ir.MessageStart) -> bytes:
        message = {"id": message_id(ev.id), "type": "message", "role": "assistant",
                   "model": self.display_model, "content": [], "stop_reason": None,
                   "stop_sequence": None, "usage": usage_dict(ev.usage)}
        return (self.MESSAGE_START + dumps({"type": "message_start", "message": message})
                + b"\n\n" + ANTHROPIC_PING)

    def error(self, err: GatewayError) -> bytes:
        return self.ERROR + error_body(err) + b"\n\n"
