"""adapters/think_filter: a leading <think>…</think> in content, cut anywhere by the deltas."""
from __future__ import annotations

import pytest

from ferryllm.protocols.openai.think_filter import PLAIN, TEXT, THINKING, ThinkFilter


def run(deltas: list[str]) -> list[tuple[int, str]]:
    """Pieces merged by kind (how they are cut is the deltas' business, not the filter's)."""
    f = ThinkFilter()
    pieces = [p for d in deltas for p in f.feed(d)] + f.settle()
    merged: list[tuple[int, str]] = []
    for kind, text in pieces:
        assert text, "no empty piece"
        if merged and merged[-1][0] == kind:
            merged[-1] = (kind, merged[-1][1] + text)
        else:
            merged.append((kind, text))
    return merged


@pytest.mark.parametrize("content, want", [
    ("<think>plan</think>answer", [(THINKING, "plan"), (TEXT, "answer")]),
    ("  <think>\n plan \n</think>\n\nanswer", [(THINKING, "plan \n"), (TEXT, "answer")]),
    ("no tags <think>x</think>", [(TEXT, "no tags <think>x</think>")]),
    ("<think>never closed", [(THINKING, "never closed")]),
    ("<thi", [(TEXT, "<thi")]),
    ("   ", []),
    ("<think>a</thi", [(THINKING, "a</thi")]),
])
def test_every_cut_gives_the_same_pieces(content, want):
    assert run([content]) == want
    for i in range(len(content) + 1):
        assert run([content[:i], content[i:]]) == want, i
    assert run(list(content)) == want


def test_plain_text_is_decided_by_the_first_visible_character():
    f = ThinkFilter()
    assert f.feed("hello") == [(TEXT, "hello")] and f.state == PLAIN
    assert f.feed("<think>later</think>") == [(TEXT, "<think>later</think>")]
