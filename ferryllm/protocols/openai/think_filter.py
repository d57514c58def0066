"""A leading `<think>…</think>` in streamed `delta.content` (reasoning models served without a
reasoning parser put their reasoning there) → reasoning, the rest → text, wherever the deltas
happen to cut the tags (sans-IO).

Only a `<think>` at the very start counts (after whitespace): anything else first makes the whole
content plain text for good (`PLAIN`, the state the hot path checks). Whitespace and a partial
`<thi…` are held until they can be told apart; whitespace right after either tag is dropped.
"""
from __future__ import annotations

from .fields import CLOSE_TAG, OPEN_TAG

TEXT, THINKING = 0, 1  # piece kinds (the stream decoder's segment kinds)
_PROBE, _THINK_LEAD, _THINK, _TEXT_LEAD, PLAIN = range(5)


def _partial_tag(buf: str, tag: str) -> int:
    """Length of the longest suffix of `buf` that is a proper prefix of `tag`."""
    for size in range(min(len(tag) - 1, len(buf)), 0, -1):
        if buf.endswith(tag[:size]):
            return size
    return 0


class ThinkFilter:
    __slots__ = ("state", "held")

    def __init__(self) -> None:
        self.state = _PROBE
        self.held = ""  # content held back until it can be told apart

    def feed(self, buf: str) -> list[tuple[int, str]]:
        """One content delta → (kind, text) pieces, in order."""
        out: list[tuple[int, str]] = []
        if self.held:
            buf, self.held = self.held + buf, ""
        while buf:
            state = self.state
            if state == _PROBE:
                stripped = buf.lstrip()
                if stripped.startswith(OPEN_TAG):
                    buf, self.state = stripped[len(OPEN_TAG):], _THINK_LEAD
                elif not stripped or OPEN_TAG.startswith(stripped):
                    self.held = buf  # whitespace or a possible "<thi…" so far
                    break
                else:
                    self.state = PLAIN
                    out.append((TEXT, buf))
                    break
            elif state == _THINK_LEAD or state == _TEXT_LEAD:
                buf = buf.lstrip()
                if buf:
                    self.state = _THINK if state == _THINK_LEAD else PLAIN
            elif state == _THINK:
                end = buf.find(CLOSE_TAG)
                if end >= 0:
                    if end:
                        out.append((THINKING, buf[:end]))
                    buf, self.state = buf[end + len(CLOSE_TAG):], _TEXT_LEAD
                    continue
                keep = _partial_tag(buf, CLOSE_TAG)
                if keep:
                    buf, self.held = buf[:-keep], buf[-keep:]
                if buf:
                    out.append((THINKING, buf))
                break
            else:
                out.append((TEXT, buf))
                break
        return out

    def settle(self) -> list[tuple[int, str]]:
        """Another kind of segment (or the end) comes: what is held goes out now. Held
        whitespace at the very start is dropped (a `<think>` may still follow it)."""
        held, self.held = self.held, ""
        if not held:
            return []
        if self.state == _THINK:
            return [(THINKING, held)]
        if held.strip():  # _PROBE with a partial "<thi…" that never completed
            self.state = PLAIN
            return [(TEXT, held)]
        return []
