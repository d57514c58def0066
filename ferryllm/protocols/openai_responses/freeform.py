"""The raw text of a freeform (custom) tool call, pulled out of the JSON arguments a
function-calling provider streams (`{"input": "…"}`) as they arrive, so a Responses client gets
`response.custom_tool_call_input.delta` events in step with the provider. Sans-IO.

Only whole JSON escapes are decoded (a `\\uD83D\\uDE00` pair waits for its second half); text
that is not `{"input": "…` stops the streaming, and the final `.done` event (the parsed
arguments, `output.custom_input`) stays authoritative either way.
"""
from __future__ import annotations

import re

import orjson

_HEAD = re.compile(r'\s*\{\s*"input"\s*:\s*"')
_SAFE = re.compile(r'(?:[^"\\]|\\["\\/bfnrt]|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[0-9a-fA-F]{4}'
                   r'|\\u(?![dD][89abAB])[0-9a-fA-F]{4})*')
_GIVE_UP = 64  # characters of arguments without the `{"input": "` head: not that shape


class InputStream:
    __slots__ = ("buf", "pos", "stopped", "sent")

    def __init__(self) -> None:
        self.buf = ""
        self.pos = -1  # where the undecoded part of the value starts (-1: head not seen)
        self.stopped = False
        self.sent: list[str] = []

    def feed(self, piece: str) -> str:
        """The value's text that `piece` completes ("" when none)."""
        self.buf += piece
        if self.stopped:
            return ""
        if self.pos < 0:
            m = _HEAD.match(self.buf)
            if m is None:
                if len(self.buf) > _GIVE_UP or "," in self.buf or "}" in self.buf:
                    self.stopped = True
                return ""
            self.pos = m.end()
        end = _SAFE.match(self.buf, self.pos).end()
        if end == self.pos:
            if end < len(self.buf) and self.buf[end] == '"':
                self.stopped = True  # the value is complete
            return ""
        try:
            text = orjson.loads('"' + self.buf[self.pos:end] + '"')
        except orjson.JSONDecodeError:  # raw control characters: not JSON
            self.stopped = True
            return ""
        self.pos = end
        if end < len(self.buf) and self.buf[end] == '"':
            self.stopped = True
        self.sent.append(text)
        return text

    def rest(self, final: str) -> str:
        """What a last delta must add so the deltas sum to `final` ("" if they cannot)."""
        sent = "".join(self.sent)
        return final[len(sent):] if final.startswith(sent) else ""
