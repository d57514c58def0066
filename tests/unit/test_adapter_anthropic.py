"""adapters/anthropic: IR ⇄ Anthropic provider JSON, pass-through, errors."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import orjson
import pytest

from ferryllm import __version__, ir
from ferryllm.protocols.anthropic.adapter import (
    DEFAULT_MAX_TOKENS, EFFORT_BUDGETS, AnthropicAdapter)
from ferryllm.protocols.anthropic.adapter_stream import StreamDecoder
from ferryllm.config import ProviderConfig
from ferryllm.protocols.anthropic.entry import decode_request
from ferryllm.errors import UpstreamError, UpstreamProtocolError

CLAUDE_CODE = Path(__file__).resolve().parents[1] / "fixtures" / "anthropic" / "claude_code_request.json"


def claude_code_body() -> dict:
    return json.loads(CLAUDE_CODE.read_text(encoding="utf-8"))

def adapter(**kw) -> AnthropicAdapter:
    fields = {"name": "claude", "type": "anthropic", "base_url": "https://api.anthropic.com",
              "api_key": "sk-ant-secret", **kw}
    return AnthropicAdapter(ProviderConfig(**fields))


def encode(req: ir.Request, **kw) -> dict:
    return orjson.loads(adapter(**kw).encode_request(req))


def user(*blocks) -> ir.Message:
    return ir.Message("user", list(blocks))


def assistant(*blocks) -> ir.Message:
    return ir.Message("assistant", list(blocks))


def simple(**kw) -> ir.Request:
    return ir.Request(model="claude-backend", messages=[user(ir.TextBlock("hi"))], **kw)


# ---------------------------------------------------------------- surface


def test_urls_and_protocol():
    a = adapter(base_url="http://localhost:8080")
    assert a.protocol == "anthropic"
    assert a.url == "http://localhost:8080/v1/messages"
    assert a.count_tokens_url == "http://localhost:8080/v1/messages/count_tokens"
    assert isinstance(a.stream_decoder(simple()), StreamDecoder)


def test_headers():
    a = adapter(headers=(("x-team", "blue"),))
    h = a.headers(simple())
    assert h == {"content-type": "application/json", "x-api-key": "sk-ant-secret",
                 "anthropic-version": "2023-06-01", "x-team": "blue",
                 "user-agent": f"ferryllm/{__version__}"}
    req = simple(headers={"anthropic-version": "2026-10-21", "anthropic-beta": "b1,b2"},
                 native_protocol="anthropic", native={"model": "m"})
    h2 = a.headers(req)  # pass-through: the client's own version
    assert h2["anthropic-version"] == "2026-10-21" and h2["anthropic-beta"] == "b1,b2"
    # a body ferryllm builds itself gets the provider's version, whatever a header said
    assert a.headers(simple(headers={"anthropic-version": "2026-10-21"}))[
        "anthropic-version"] == "2023-06-01"
    assert adapter(anthropic_version="2026-10-21").headers(simple())[
        "anthropic-version"] == "2026-10-21"
    assert "anthropic-beta" not in a.headers(simple())  # the static part is never mutated
    assert "x-api-key" not in adapter(api_key=None).headers(simple())


# ---------------------------------------------------------------- pass-through


def native_request(body: dict, model: str = "claude-opus-4-6-backend") -> ir.Request:
    req = decode_request(body, {"anthropic-version": "2023-06-01"})
    req.model = model
    return req


def test_passthrough_is_faithful():
    body = claude_code_body()
    snapshot = copy.deepcopy(body)
    out = encode(native_request(body))
    assert body == snapshot  # the client's body is not mutated
    expected = copy.deepcopy(snapshot)
    expected["model"] = "claude-opus-4-6-backend"
    assert out == expected  # cache_control, signatures, server tools, context_management…
    assert out["tools"][2] == {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}
    assert out["system"][1]["cache_control"] == {"type": "ephemeral"}
    assert out["messages"][1]["content"][0]["signature"] == "EpYBCkYIBhgC"


def test_passthrough_caps_max_tokens():
    out = encode(native_request(claude_code_body()), max_tokens_cap=32000)
    assert out["max_tokens"] == 32000
    out = encode(native_request(claude_code_body()), max_tokens_cap=100000)
    assert out["max_tokens"] == 64000
    req = native_request(claude_code_body())
    req.max_tokens = 20000  # lowered on the IR by a policy
    assert encode(req)["max_tokens"] == 20000


def test_passthrough_cap_shrinks_a_thinking_budget_that_no_longer_fits():
    body = claude_code_body()
    body["thinking"] = {"type": "enabled", "budget_tokens": 40000}
    out = encode(native_request(body), max_tokens_cap=32000)
    assert out["max_tokens"] == 32000 and out["thinking"] == {"type": "enabled",
                                                              "budget_tokens": 31999}
    assert body["thinking"]["budget_tokens"] == 40000
    out = encode(native_request(body), max_tokens_cap=1000)
    assert out["max_tokens"] == 1000 and "thinking" not in out
    body["thinking"]["budget_tokens"] = 2000
    assert encode(native_request(body), max_tokens_cap=32000)["thinking"]["budget_tokens"] == 2000


def test_passthrough_drops_unsigned_thinking_copying_only_changed_messages():
    body = claude_code_body()
    body["messages"].insert(1, {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "from an openai backend", "signature": ""},
        {"type": "thinking", "thinking": "no signature key"},
        {"type": "redacted_thinking", "data": "keep-me"},
        {"type": "text", "text": "earlier answer", "cache_control": {"type": "ephemeral"}}]})
    body["messages"].insert(2, {"role": "user", "content": "next"})
    snapshot = copy.deepcopy(body)
    a = adapter()
    out = a._passthrough(native_request(body))
    assert body == snapshot
    assert out["messages"][1]["content"] == [
        {"type": "redacted_thinking", "data": "keep-me"},
        {"type": "text", "text": "earlier answer", "cache_control": {"type": "ephemeral"}}]
    assert out["messages"][0] is body["messages"][0]  # unchanged messages are not copied
    assert out["messages"][3] is body["messages"][3]  # signed thinking kept as is
    assert out["messages"][1] is not body["messages"][1]


def test_passthrough_thinking_only_turn_dropped_and_neighbours_merged():
    body = {"model": "m", "max_tokens": 100, "messages": [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": ""}]},
        {"role": "user", "content": [{"type": "text", "text": "q2"}]}]}
    out = encode(native_request(body))
    assert out["messages"] == [{"role": "user", "content": [{"type": "text", "text": "q1"},
                                                            {"type": "text", "text": "q2"}]}]


def test_passthrough_leaves_messages_alone_without_unsigned_thinking():
    body = claude_code_body()
    out = adapter()._passthrough(native_request(body))
    assert out["messages"] is body["messages"]


def test_passthrough_serialises_like_the_client_sent():
    body = claude_code_body()
    raw = orjson.dumps(body)
    out = adapter().encode_request(native_request(orjson.loads(raw), model="claude-opus-4-6"))
    assert out == raw  # byte for byte when the model is unchanged and nothing is capped


# ---------------------------------------------------------------- IR → Anthropic


def test_minimal_ir_request():
    assert encode(simple()) == {"model": "claude-backend", "max_tokens": DEFAULT_MAX_TOKENS,
                                "messages": [{"role": "user",
                                              "content": [{"type": "text", "text": "hi"}]}]}


def test_full_ir_request():
    req = ir.Request(
        model="claude-backend",
        system=[ir.TextBlock("You are helpful."), ir.TextBlock("Be brief.")],
        messages=[
            user(ir.TextBlock("what is in these?"),
                 ir.ImageBlock(media_type="image/jpeg", data="/9j/"),
                 ir.ImageBlock(url="https://example.com/cat.png"),
                 ir.ImageBlock(url="data:image/webp;base64,UklGR")),
            assistant(ir.ThinkingBlock(thinking="unsigned", signature=None),
                      ir.ThinkingBlock(thinking="empty sig", signature=""),
                      ir.ThinkingBlock(thinking="signed", signature="sig=="),
                      ir.ThinkingBlock(redacted=True, data="opaque"),
                      ir.TextBlock("Let me look."),
                      ir.ToolUseBlock("call_1", "zoom", {"level": 2}),
                      ir.ToolUseBlock("call_2", "crop", {})),
            user(ir.ToolResultBlock("call_1", [ir.TextBlock("zoomed"),
                                               ir.ImageBlock(media_type="image/png", data="iVB")])),
            user(ir.ToolResultBlock("call_2", [], is_error=True)),
            user(ir.TextBlock("and now?")),
        ],
        tools=[ir.Tool("zoom", "Zoom in", {"type": "object", "properties": {}}),
               ir.Tool("crop", None, {"type": "object"})],
        tool_choice=ir.ToolChoice("tool", "zoom"), parallel_tool_calls=False,
        max_tokens=500, temperature=0.3, top_p=0.8, top_k=20, stop=["END"], user="u-1",
        stream=True)
    assert encode(req) == {
        "model": "claude-backend", "max_tokens": 500,
        "system": [{"type": "text", "text": "You are helpful."},
                   {"type": "text", "text": "Be brief."}],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "what is in these?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg",
                                             "data": "/9j/"}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
                {"type": "image", "source": {"type": "base64", "media_type": "image/webp",
                                             "data": "UklGR"}}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "signed", "signature": "sig=="},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "call_1", "name": "zoom", "input": {"level": 2}},
                {"type": "tool_use", "id": "call_2", "name": "crop", "input": {}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": [
                    {"type": "text", "text": "zoomed"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                 "data": "iVB"}}]},
                {"type": "tool_result", "tool_use_id": "call_2", "is_error": True},
                {"type": "text", "text": "and now?"}]},
        ],
        "tools": [{"name": "zoom", "description": "Zoom in",
                   "input_schema": {"type": "object", "properties": {}}},
                  {"name": "crop", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "zoom", "disable_parallel_tool_use": True},
        "stop_sequences": ["END"], "temperature": 0.3, "top_p": 0.8, "top_k": 20,
        "metadata": {"user_id": "u-1"}, "stream": True}


def test_single_system_block_is_a_string():
    assert encode(simple(system=[ir.TextBlock("sys")]))["system"] == "sys"
    assert "system" not in encode(simple(system=[ir.TextBlock("")]))


def test_tool_results_open_the_user_turn():
    req = ir.Request(model="m", messages=[
        user(ir.TextBlock("q")),
        assistant(ir.ToolUseBlock("t1", "f", {})),
        user(ir.TextBlock("note first")),
        user(ir.ToolResultBlock("t1", [ir.TextBlock("r")]))])
    last = encode(req)["messages"][-1]["content"]
    assert [b["type"] for b in last] == ["tool_result", "text"]


def test_empty_messages_are_skipped_and_roles_still_alternate():
    req = ir.Request(model="m", messages=[
        user(ir.TextBlock("a")),
        assistant(ir.ThinkingBlock(thinking="unsigned")),  # nothing left for Anthropic
        user(ir.TextBlock("b")),
        assistant(ir.TextBlock("c"))])
    msgs = encode(req)["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant"]
    assert msgs[0]["content"] == [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]


@pytest.mark.parametrize("choice,parallel,want", [
    (ir.ToolChoice("auto"), None, {"type": "auto"}),
    (ir.ToolChoice("any"), None, {"type": "any"}),
    (ir.ToolChoice("none"), None, {"type": "none"}),
    (ir.ToolChoice("any", disable_parallel=True), None,
     {"type": "any", "disable_parallel_tool_use": True}),
    (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
    (None, None, None),
    (None, True, None),
])
def test_tool_choice(choice, parallel, want):
    req = simple(tools=[ir.Tool("f", "d", {"type": "object"})], tool_choice=choice,
                 parallel_tool_calls=parallel)
    assert encode(req).get("tool_choice") == want


def test_no_tool_choice_without_tools():
    assert "tool_choice" not in encode(simple(tool_choice=ir.ToolChoice("any")))


def test_max_tokens_cap_on_ir_path():
    assert encode(simple(max_tokens=100000), max_tokens_cap=8192)["max_tokens"] == 8192
    assert encode(simple(), max_tokens_cap=1000)["max_tokens"] == 1000
    assert encode(simple(max_tokens=50), max_tokens_cap=8192)["max_tokens"] == 50


# ---------------------------------------------------------------- reasoning


def test_effort_budget_table():
    assert EFFORT_BUDGETS["low"] == 2048 and EFFORT_BUDGETS["medium"] == 8192
    assert EFFORT_BUDGETS["high"] == 16384 and EFFORT_BUDGETS["max"] == 32000


@pytest.mark.parametrize("effort", ["low", "medium", "high", "max"])
def test_effort_without_max_tokens_makes_room(effort):
    out = encode(simple(reasoning=ir.Reasoning(effort=effort)))
    budget = EFFORT_BUDGETS[effort]
    assert out["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert out["max_tokens"] == budget + DEFAULT_MAX_TOKENS


def test_explicit_budget():
    out = encode(simple(max_tokens=20000, reasoning=ir.Reasoning(budget_tokens=5000)))
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 5000}
    assert out["max_tokens"] == 20000


def test_budget_raised_to_minimum():
    out = encode(simple(max_tokens=8000, reasoning=ir.Reasoning(budget_tokens=100)))
    assert out["thinking"]["budget_tokens"] == 1024


def test_budget_shrinks_below_explicit_max_tokens():
    out = encode(simple(max_tokens=4000, reasoning=ir.Reasoning(effort="high")))
    assert out["max_tokens"] == 4000 and out["thinking"]["budget_tokens"] == 3999


def test_budget_respects_cap():
    out = encode(simple(reasoning=ir.Reasoning(effort="max")), max_tokens_cap=10000)
    assert out["max_tokens"] == 10000 and out["thinking"]["budget_tokens"] == 9999


def test_thinking_left_off_when_max_tokens_too_small():
    out = encode(simple(max_tokens=1000, reasoning=ir.Reasoning(budget_tokens=2000)))
    assert "thinking" not in out and out["max_tokens"] == 1000


def test_reasoning_disabled_or_absent_sends_nothing():
    assert "thinking" not in encode(simple(reasoning=ir.Reasoning(enabled=False, effort="high")))
    assert "thinking" not in encode(simple())


def test_adaptive_without_budget_or_effort():
    assert encode(simple(reasoning=ir.Reasoning(adaptive=True)))["thinking"] == {
        "type": "adaptive"}


def test_sampling_params_dropped_with_thinking():
    out = encode(simple(max_tokens=8000, temperature=0.2, top_k=5, top_p=0.5,
                        reasoning=ir.Reasoning(budget_tokens=2000)))
    assert "temperature" not in out and "top_k" not in out and "top_p" not in out
    out = encode(simple(max_tokens=8000, temperature=1, top_p=0.97,
                        reasoning=ir.Reasoning(budget_tokens=2000)))
    assert out["temperature"] == 1 and out["top_p"] == 0.97


def test_stream_flag_only_when_streaming():
    assert "stream" not in encode(simple())
    assert encode(simple(stream=True))["stream"] is True


# ---------------------------------------------------------------- responses


RESPONSE = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
    "model": "claude-opus-4-6",
    "content": [
        {"type": "thinking", "thinking": "Let me think", "signature": "EqQB"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"q": 1}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
        {"type": "text", "text": "héllo 世界", "citations": None},
        {"type": "tool_use", "id": "toolu_01", "name": "get_weather",
         "input": {"location": "Paris"}},
    ],
    "stop_reason": "tool_use", "stop_sequence": None,
    "usage": {"input_tokens": 12, "cache_creation_input_tokens": 100,
              "cache_read_input_tokens": 2000, "output_tokens": 50,
              "server_tool_use": {"web_search_requests": 1}, "service_tier": "standard"},
}


def test_decode_response():
    resp = adapter().decode_response(orjson.dumps(RESPONSE), simple())
    assert resp == ir.Response(
        id="msg_01XFDUDYJgAACzvnptvVoYEL", model="claude-opus-4-6",
        content=[ir.ThinkingBlock(thinking="Let me think", signature="EqQB"),
                 ir.ThinkingBlock(redacted=True, data="opaque"),
                 ir.TextBlock("héllo 世界"),
                 ir.ToolUseBlock("toolu_01", "get_weather", {"location": "Paris"})],
        stop_reason="tool_use", stop_sequence=None,
        usage=ir.Usage(input_tokens=12, output_tokens=50, cache_read_input_tokens=2000,
                       cache_creation_input_tokens=100))


def test_decode_response_stop_sequence_and_null_cache_fields():
    body = {"id": "msg_2", "type": "message", "role": "assistant", "model": "m",
            "content": [{"type": "text", "text": "x"}], "stop_reason": "stop_sequence",
            "stop_sequence": "END",
            "usage": {"input_tokens": 3, "output_tokens": 1, "cache_read_input_tokens": None}}
    resp = adapter().decode_response(orjson.dumps(body), simple())
    assert resp.stop_sequence == "END" and resp.usage == ir.Usage(3, 1, 0, 0)


@pytest.mark.parametrize("raw", [
    b"not json", b"[]", b'{"id": "x"}', b'{"content": [{"type": "text"}]}',
    b'{"content": [{"type": "tool_use", "id": "t", "name": "n", "input": "str"}]}',
    b'{"content": "text"}',
])
def test_decode_response_malformed(raw):
    with pytest.raises(UpstreamProtocolError) as info:
        adapter().decode_response(raw, simple())
    assert "claude" in str(info.value)


# ---------------------------------------------------------------- errors


def error_json(kind: str, message: str) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": kind, "message": message},
                         "request_id": "req_011"})


def test_decode_error_rate_limit_keeps_status_and_retry_after():
    err = adapter().decode_error(429, error_json("rate_limit_error", "slow down"),
                                 {"retry-after": "7", "request-id": "req_011"})
    assert isinstance(err, UpstreamError)
    assert (err.status, err.kind, str(err), err.retry_after) == (
        429, "rate_limit_error", "slow down", 7.0)
    assert err.retryable and err.provider == "claude"


def test_decode_error_retry_after_any_case():
    err = adapter().decode_error(529, error_json("overloaded_error", "Overloaded"),
                                 {"Retry-After": "2"})
    assert (err.status, err.kind, err.retry_after) == (529, "overloaded_error", 2.0)


def test_decode_error_bad_request_message_kept():
    err = adapter().decode_error(400, error_json("invalid_request_error",
                                                 "max_tokens: must be at most 64000"), {})
    assert (err.status, err.kind, str(err)) == (400, "invalid_request_error",
                                                "max_tokens: must be at most 64000")
    assert not err.retryable


def test_decode_error_credentials_rejected_is_502():
    err = adapter().decode_error(401, error_json("authentication_error", "invalid x-api-key"),
                                 {})
    assert err.status == 502 and "credentials" in str(err) and "sk-ant-secret" not in str(err)


def test_decode_error_non_json_body():
    err = adapter().decode_error(502, b"<html>Bad Gateway</html>", {})
    assert err.status == 502 and "Bad Gateway" in str(err)
    err = adapter().decode_error(503, b"", {})
    assert err.status == 503 and "claude" in str(err)


def test_mid_conversation_system_instruction_joins_the_user_turn():
    from ferryllm import ir as _ir
    from ferryllm.config import ProviderConfig
    req = _ir.Request(model="m", max_tokens=10, messages=[
        _ir.Message("user", [_ir.TextBlock("hi")]),
        _ir.Message("system", [_ir.TextBlock("# Environment")])])
    adapter = AnthropicAdapter(ProviderConfig(name="p", type="anthropic",
                                              base_url="http://127.0.0.1:1", api_key="k"))
    body = orjson.loads(adapter.encode_request(req))
    assert body["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "hi"}, {"type": "text", "text": "# Environment"}]}]


def test_signatures_of_another_provider_kind_never_reach_anthropic():
    """A thinking block signed by another kind of provider (tagged "<protocol>:…", ir.own_signature)
    is dropped like an unsigned one, in pass-through bodies and in bodies built from the IR."""
    body = {"model": "m", "max_tokens": 100, "messages": [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "t", "signature": "gemini:c2ln"},
            {"type": "thinking", "thinking": "mine", "signature": "EqQBCkYIBRgC+/="},
            {"type": "text", "text": "a"}]},
        {"role": "user", "content": "q2"}]}
    out = encode(native_request(body))
    assert out["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "mine", "signature": "EqQBCkYIBRgC+/="},
        {"type": "text", "text": "a"}]
    req = ir.Request(model="m", max_tokens=100, messages=[
        user(ir.TextBlock("q")),
        assistant(ir.ThinkingBlock(thinking="x", signature=ir.tag_signature("gemini", "c2ln")),
                  ir.ThinkingBlock(thinking="y", signature="EqQB"), ir.TextBlock("a"))])
    assert encode(req)["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "y", "signature": "EqQB"}, {"type": "text", "text": "a"}]
    assert ir.own_signature("gemini", "gemini:c2ln") == "c2ln"
    assert ir.own_signature("gemini", "EqQB") is None
    assert ir.own_signature(None, "openai_responses:abc") is None


def test_no_max_tokens_gets_the_cap_or_the_model_maximum():
    """A client that sets no limit (Codex never does) is not cut at a small default."""
    assert encode(simple(), max_tokens_cap=20000)["max_tokens"] == 20000
    req = ir.Request(model="claude-sonnet-4-5-20250929", messages=[user(ir.TextBlock("hi"))])
    assert encode(req)["max_tokens"] == 64000
    req.model = "claude-opus-4-1"
    assert encode(req)["max_tokens"] == 32000
    req.reasoning = ir.Reasoning(effort="high")
    out = encode(req)
    assert out["max_tokens"] == 32000 and out["thinking"]["budget_tokens"] == 16384


def test_structured_output_becomes_output_config_format():
    """A JSON schema the client asked for (OpenAI response_format, Responses text.format, Gemini
    responseJsonSchema: the Gemini CLI's model router) reaches Anthropic as structured output; a
    bare JSON mode has no Anthropic equivalent and sends nothing."""
    schema = {"type": "object", "properties": {
        "model_choice": {"type": "string", "maxLength": 40},
        "score": {"type": "integer", "minimum": 1, "maximum": 100},
        "tags": {"type": "array", "minItems": 2, "items": {"type": "object", "properties": {
            "name": {"type": "string"}}}}}, "required": ["model_choice"]}
    req = simple(response_format={"type": "json_schema", "name": "route", "schema": schema})
    assert encode(req)["output_config"] == {"format": {"type": "json_schema", "schema": {
        "type": "object", "additionalProperties": False, "required": ["model_choice"],
        "properties": {"model_choice": {"type": "string"}, "score": {"type": "integer"},
                       "tags": {"type": "array", "items": {
                           "type": "object", "additionalProperties": False,
                           "properties": {"name": {"type": "string"}}}}}}}}
    assert schema["properties"]["score"]["minimum"] == 1  # the client's schema is not changed
    assert "output_config" not in encode(simple(response_format={"type": "json_object"}))
    assert "output_config" not in encode(simple())
