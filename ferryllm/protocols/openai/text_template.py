"""Plain text chunks of an OpenAI-compatible stream, recognised by their bytes (sans-IO).

Most chunks of a stream differ only in the text of `choices[0].delta.content`: same id, created,
model, index, `finish_reason: null`. Once the decoder has parsed one such chunk, the bytes before
and after its text's JSON string form a template. A later chunk that is exactly prefix + one JSON
string + suffix is that same chunk with other text (a JSON string token can only be swapped for
another string token), so its text comes from parsing the string alone instead of the whole
chunk, and the decoder's per-chunk field checks are skipped. Anything else — another shape, a
string with trailing bytes, a usage or finish chunk — does not fit and takes the full path.

A template is learned only from a chunk with one choice, a delta of exactly `{"content": text}`,
no usage, no finish reason and no error, and only after a probe proves the position: the prefix
and suffix around a different string must parse to the same chunk with that string as content.
"""
from __future__ import annotations

import re

import orjson

# up to the opening quote of the delta's content string, compact or with spaces
_COMPACT = b'"delta":{"content":"'
_SPACED = re.compile(rb'"delta"\s*:\s*\{\s*"content"\s*:\s*"')
_PROBE_TEXT = '"{x}\n'
_PROBE = orjson.dumps(_PROBE_TEXT)
_MAX_TRIES = 4  # chunks examined before giving up on a stream whose chunks never qualify


class TextTemplate:
    __slots__ = ("prefix", "suffix", "_tries")

    def __init__(self) -> None:
        self.prefix: bytes | None = None  # None until learned
        self.suffix = b""
        self._tries = 0

    def text(self, data: bytes) -> str | None:
        """The text of a chunk that fits the template, else None."""
        # removeprefix/removesuffix return `data` itself when it does not fit: two identity
        # checks, and no argument parsing (bytes.startswith's costs as much as the whole test)
        inner = data.removeprefix(self.prefix)
        if inner is data:
            return None
        string = inner.removesuffix(self.suffix)
        if string is inner:
            return None
        try:
            text = orjson.loads(string)
        except orjson.JSONDecodeError:
            return None
        return text if text.__class__ is str else None

    def wants(self) -> bool:
        return self.prefix is None and self._tries < _MAX_TRIES

    def learn(self, data: bytes, obj: dict) -> None:
        """Take `data` (which parsed to `obj`) as the template if it is a plain text chunk."""
        self._tries += 1
        if obj.get("usage") or obj.get("error"):
            return
        choices = obj.get("choices")
        if choices.__class__ is not list or len(choices) != 1:
            return
        choice = choices[0]
        if choice.__class__ is not dict or choice.get("finish_reason"):
            return
        delta = choice.get("delta")
        if delta.__class__ is not dict or len(delta) != 1:
            return
        text = delta.get("content")
        if text.__class__ is not str or not text:
            return
        if data.count(b'"delta"') != 1:  # one place only (a key may end in `\\"delta`)
            return
        at = data.find(b'"delta"')
        if data.startswith(_COMPACT, at):
            start = at + len(_COMPACT) - 1
        else:
            found = _SPACED.match(data, at)
            if found is None:
                return
            start = found.end() - 1
        stop = _string_end(data, start)
        if stop < 0:
            return
        prefix, suffix = data[:start], data[stop:]
        try:
            probe = orjson.loads(prefix + _PROBE + suffix)
            if probe["choices"][0]["delta"] != {"content": _PROBE_TEXT}:
                return
            probe["choices"][0]["delta"] = delta
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
            return
        if probe != obj:
            return
        self.prefix, self.suffix = prefix, suffix


def _string_end(data: bytes, start: int) -> int:
    """The end of the JSON string opening at `start`: after the first quote not escaped by an
    odd run of backslashes (-1 if none)."""
    at = start
    while True:
        at = data.find(b'"', at + 1)
        if at < 0:
            return -1
        back = at
        while data[back - 1] == 0x5C:  # \\
            back -= 1
        if not (at - back) % 2:
            return at + 1
