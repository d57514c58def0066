"""protocols/openai_responses StreamEncoder: every recorded IR stream (the `.expected` files of
every provider's fixtures) encodes to a stream that follows OpenAI's grammar
(`tests/responses_grammar.py`) and carries exactly the text, calls and usage of the IR; fed
event by event it gives the same bytes; freeform calls stream their raw text however the
provider cut the JSON."""
from __future__ import annotations

import orjson
import pytest

from ferryllm import ir
from ferryllm.errors import RateLimited, UpstreamError
from ferryllm.protocols.openai_responses.entry import decode_request
from ferryllm.protocols.openai_responses.entry_stream import StreamEncoder
from tests.responses_grammar import check_stream, parse_sse
from tests.streamsummary import FIXTURES, fixture_names, summarise

EVENTS = {cls.__name__: cls for cls in (
    ir.MessageStart, ir.TextStart, ir.ThinkingStart, ir.ToolUseStart, ir.TextDelta,
    ir.ThinkingDelta, ir.SignatureDelta, ir.ToolArgsDelta, ir.BlockStop, ir.MessageDelta,
    ir.MessageStop)}
CASES = [(kind, name) for kind in ("openai", "anthropic", "openai_responses")
         for name in fixture_names(kind) if summarise(kind, name).complete]
TOOLS = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}},
         {"type": "custom", "name": "apply_patch", "description": "Edit files"},
         {"type": "namespace", "name": "mcp__srv", "description": "d", "tools": [
             {"type": "function", "name": "lookup", "parameters": {"type": "object"}}]}]


def ir_events(kind: str, name: str) -> list:
    out = []
    for line in (FIXTURES / kind / f"{name}.expected").read_text("utf-8").splitlines():
        data = orjson.loads(line)
        if "raise" in data:
            break
        cls = EVENTS[data.pop("event")]
        if "usage" in data:
            data["usage"] = ir.Usage(**data["usage"])
        out.append(cls(**data))
    return out


def context(include=("reasoning.encrypted_content",)):
    return decode_request({"model": "m", "input": "hi", "tools": TOOLS,
                           "include": list(include)}).entry_context


def encode(events, ctx=None, one_by_one=False) -> bytes:
    enc = StreamEncoder("gpt-5", ctx if ctx is not None else context(), created=1)
    if one_by_one:
        return b"".join(enc.encode([ev]) for ev in events)
    return enc.encode(events)


@pytest.mark.parametrize("kind,name", CASES)
def test_recorded_stream_follows_the_grammar(kind, name):
    want = summarise(kind, name)
    events = ir_events(kind, name)
    raw = encode(events)
    assert raw == encode(events, one_by_one=True)
    final = check_stream(parse_sse(raw))
    texts = [b["text"] for b in want.blocks if b["type"] == "text"]
    assert [c["text"] for i in final["output"] if i["type"] == "message"
            for c in i["content"]] == texts
    calls = []
    for call_id, name, args in want.tools:  # as the client declared them (TOOLS)
        if name == "apply_patch":
            calls.append(("custom_tool_call", call_id, name, None,
                          orjson.loads(args)["input"]))
        elif name == "mcp__srv__lookup":
            calls.append(("function_call", call_id, "lookup", "mcp__srv", args or "{}"))
        else:
            calls.append(("function_call", call_id, name, None, args or "{}"))
    assert [(i["type"], i["call_id"], i["name"], i.get("namespace"),
             i.get("arguments", i.get("input"))) for i in final["output"]
            if "call_id" in i] == calls
    thinking = [b for b in want.blocks if b["type"] == "thinking"]
    reasoning = [i for i in final["output"] if i["type"] == "reasoning"]
    assert len(reasoning) == len(thinking) and all("summary" in i for i in reasoning)
    assert "".join(s["text"] for i in reasoning for s in i["summary"]) == want.thinking
    for block, item in zip(thinking, reasoning):
        if block["redacted"]:
            assert item["encrypted_content"] == "anthropic_redacted:" + block["redacted"]
        elif block["signature"].startswith("openai_responses:"):  # a Responses provider's own
            assert item["encrypted_content"] == block["signature"].split(":", 1)[1]
        elif block["signature"]:
            assert item["encrypted_content"] == "anthropic:" + block["signature"]
    u = want.usage
    prompt = u["input_tokens"] + u["cache_read_input_tokens"] + u["cache_creation_input_tokens"]
    assert final["usage"]["input_tokens"] == prompt
    assert final["usage"]["input_tokens_details"]["cached_tokens"] == u["cache_read_input_tokens"]
    assert final["usage"]["output_tokens"] == u["output_tokens"]
    assert final["usage"]["total_tokens"] == prompt + u["output_tokens"]
    assert final["usage"]["output_tokens_details"] == {
        "reasoning_tokens": u.get("thinking_tokens", 0)}
    cut = ("max_tokens", "refusal", "model_context_window_exceeded")
    status = "incomplete" if want.stop_reason in cut else "completed"
    assert final["status"] == status
    if want.stop_reason == "max_tokens":
        assert final["incomplete_details"] == {"reason": "max_output_tokens"}


def test_no_encrypted_content_unless_included():
    raw = encode(ir_events("anthropic", "thinking"), context(include=()))
    final = check_stream(parse_sse(raw))
    assert all("encrypted_content" not in i for i in final["output"])


PATCH = '*** Begin Patch\n*** Add File: a.txt\n+"quoted" ünï 🚀\\n\ttab\n*** End Patch\n'


@pytest.mark.parametrize("spaced", [False, True])
def test_freeform_call_streams_raw_text_at_every_cut(spaced):
    args = orjson.dumps({"input": PATCH}).decode()
    if spaced:
        args = args.replace('{"input":', '{ "input" : ')
    for cut in range(1, len(args)):
        for pieces in ([args[:cut], args[cut:]], [args[i:i + 3] for i in range(0, len(args), 3)]):
            events = [ir.MessageStart("m1", "m", ir.Usage()),
                      ir.ToolUseStart(0, "call_p", "apply_patch"),
                      *[ir.ToolArgsDelta(0, p) for p in pieces], ir.BlockStop(0),
                      ir.MessageDelta("tool_use", None, ir.Usage()), ir.MessageStop()]
            parsed = parse_sse(encode(events))
            final = check_stream(parsed)
            (item,) = final["output"]
            assert item == {"id": item["id"], "type": "custom_tool_call", "status": "completed",
                            "call_id": "call_p", "name": "apply_patch", "input": PATCH}
            deltas = [e for e in parsed if e["type"] == "response.custom_tool_call_input.delta"]
            assert deltas and "".join(e["delta"] for e in deltas) == PATCH


def test_freeform_call_in_another_shape_is_given_whole():
    events = [ir.MessageStart("m1", "m", ir.Usage()), ir.ToolUseStart(0, "c", "apply_patch"),
              ir.ToolArgsDelta(0, '{"patch": "x'), ir.ToolArgsDelta(0, 'yz"}'), ir.BlockStop(0),
              ir.MessageDelta("tool_use", None, ir.Usage()), ir.MessageStop()]
    final = check_stream(parse_sse(encode(events)))
    assert final["output"][0]["input"] == "xyz"


def test_namespaced_call_comes_back_with_its_namespace():
    events = [ir.MessageStart("m1", "m", ir.Usage()),
              ir.ToolUseStart(0, "call_n", "mcp__srv__lookup"), ir.ToolArgsDelta(0, "{}"),
              ir.BlockStop(0), ir.MessageDelta("tool_use", None, ir.Usage()), ir.MessageStop()]
    final = check_stream(parse_sse(encode(events)))
    item = final["output"][0]
    assert (item["name"], item["namespace"], item["call_id"]) == ("lookup", "mcp__srv", "call_n")


def test_call_without_arguments_streams_empty_object():
    events = [ir.MessageStart("m1", "m", ir.Usage()), ir.ToolUseStart(0, "c", "get_weather"),
              ir.BlockStop(0), ir.MessageDelta("tool_use", None, ir.Usage()), ir.MessageStop()]
    final = check_stream(parse_sse(encode(events)))
    assert final["output"][0]["arguments"] == "{}"


@pytest.mark.parametrize("err,code", [
    (RateLimited("slow down"), "rate_limit_exceeded"),
    (UpstreamError("prompt is too long: 300000 tokens > 200000 maximum", status=400),
     "context_length_exceeded"),
    (UpstreamError("boom", status=500), "server_error"),
    (UpstreamError("Overloaded", status=529), "server_error")])
def test_error_after_first_byte_is_response_failed(err, code):
    enc = StreamEncoder("gpt-5", context(), created=1)
    raw = enc.encode([ir.MessageStart("m1", "m", ir.Usage()), ir.TextStart(0),
                      ir.TextDelta(0, "par")])
    raw += enc.error(err)
    events = parse_sse(raw)
    final = check_stream(events)
    assert events[-1]["type"] == "response.failed"
    assert final["status"] == "failed" and final["error"]["code"] == code


def test_error_before_any_event_opens_the_response_first():
    raw = StreamEncoder("gpt-5", context(), created=1).error(RateLimited("slow"))
    events = parse_sse(raw)
    assert [e["type"] for e in events] == ["response.created", "response.in_progress",
                                           "response.failed"]
