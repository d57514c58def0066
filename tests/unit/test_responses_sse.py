"""protocols/openai_responses StreamDecoder: every recorded Responses stream in every chunking
gives one output (`tests/fixtures/openai_responses/NAME.sse` → `NAME.expected`, one IR event
per line, a last `{"raise": …}` line for a stream that must fail)."""
from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from ferryllm import ir
from ferryllm.errors import GatewayError
from ferryllm.protocols.openai_responses.adapter_stream import StreamDecoder
from tests.chunking import chunkings
from tests.irjson import event_fields

FIXTURES = Path(__file__).parent.parent / "fixtures" / "openai_responses"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.sse"))
REQUEST = ir.Request(model="backend-model", messages=[ir.Message("user", [ir.TextBlock("hi")])],
                     tools=[ir.Tool("get_weather", None, {"type": "object"})], stream=True)


def render(ev: ir.StreamEvent) -> str:
    return orjson.dumps({"event": type(ev).__name__, **event_fields(ev)}).decode()


def run(chunks: list[bytes]) -> tuple[list[str], str | None]:
    dec = StreamDecoder(REQUEST, "resp")
    lines: list[str] = []
    try:
        for chunk in chunks:
            lines.extend(render(ev) for ev in dec.feed(chunk))
        lines.extend(render(ev) for ev in dec.close())
    except GatewayError as err:
        lines.extend(render(ev) for ev in getattr(err, "events", []))
        return lines, orjson.dumps({"raise": type(err).__name__, "status": err.status,
                                    "code": err.code, "message": err.message}).decode()
    return lines, None


def expected(name: str) -> tuple[list[str], str | None]:
    lines = (FIXTURES / f"{name}.expected").read_text("utf-8").splitlines()
    if lines and lines[-1].startswith('{"raise"'):
        return lines[:-1], lines[-1]
    return lines, None


@pytest.mark.parametrize("name", NAMES)
def test_fixture_in_every_chunking(name: str) -> None:
    want = expected(name)
    data = (FIXTURES / f"{name}.sse").read_bytes()
    for chunks in chunkings(data):
        assert run(chunks) == want, f"{name}: chunking of {len(chunks)} reads"


def test_every_fixture_has_an_expectation() -> None:
    assert NAMES and all((FIXTURES / f"{n}.expected").exists() for n in NAMES)


def test_custom_call_arguments_are_the_raw_input_as_json() -> None:
    lines, _ = run([(FIXTURES / "custom_call.sse").read_bytes()])
    args = "".join(orjson.loads(l)["partial_json"] for l in lines
                   if orjson.loads(l)["event"] == "ToolArgsDelta")
    assert orjson.loads(args)["input"].startswith("*** Begin Patch\n*** Update File: notes.txt")
