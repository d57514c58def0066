"""entry/anthropic: Anthropic Messages client JSON ⇄ IR."""
from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import orjson
import pytest

from ferryllm import ir
from ferryllm.protocols.anthropic.entry import (
    decode_count_tokens, decode_request, encode_response, error_body)
from ferryllm.errors import InvalidRequest, ModelNotFound, RateLimited, UpstreamError

CLAUDE_CODE = Path(__file__).resolve().parents[1] / "fixtures" / "anthropic" / "claude_code_request.json"
HEADERS = {"x-api-key": "client-key", "anthropic-version": "2023-06-01"}


def body(**extra):
    b = {"model": "claude-sonnet-4-5", "max_tokens": 1024,
         "messages": [{"role": "user", "content": "Hello"}]}
    b.update(extra)
    return b


def claude_code_body() -> dict:
    """Shaped like what Claude Code 2.1.x sends on `POST /v1/messages?beta=true`: adaptive
    thinking, output_config.effort, context_management, a JSON string in metadata.user_id, three
    system blocks (the billing header first), tools with `$schema`/`additionalProperties`, a
    server tool, cache_control everywhere."""
    return json.loads(CLAUDE_CODE.read_text(encoding="utf-8"))


# ---------------------------------------------------------------- requests


def test_minimal_request():
    req = decode_request(body(), HEADERS)
    assert req.model == "claude-sonnet-4-5" and req.max_tokens == 1024
    assert req.messages == [ir.Message("user", [ir.TextBlock("Hello")])]
    assert req.system == [] and req.tools == [] and req.tool_choice is None
    assert req.stream is False and req.reasoning is None and req.user is None
    assert req.native_protocol == "anthropic" and req.native is not None
    assert req.headers == {"anthropic-version": "2023-06-01"}


def test_native_is_the_client_body():
    b = body(context_management={"edits": []})
    assert decode_request(b, {}).native is b


def test_forwarded_headers_lower_cased():
    req = decode_request(body(), {"Anthropic-Version": "2023-06-01",
                                  "ANTHROPIC-BETA": "interleaved-thinking-2025-05-14,x",
                                  "Authorization": "Bearer k", "x-api-key": "k"})
    assert req.headers == {"anthropic-version": "2023-06-01",
                           "anthropic-beta": "interleaved-thinking-2025-05-14,x"}


def test_claude_code_request_accepted():
    b = claude_code_body()
    snapshot = copy.deepcopy(b)
    req = decode_request(b, {"anthropic-version": "2023-06-01",
                             "anthropic-beta": "claude-code-20250219,oauth-2025-04-20"})
    assert b == snapshot  # decoding never mutates the client's body
    assert req.stream is True and req.max_tokens == 64000
    assert req.reasoning == ir.Reasoning(enabled=True, effort="high", adaptive=True)
    assert req.user == '{"device_id":"abc","account_uuid":"","session_id":"s-1"}'
    assert [s.text[:12] for s in req.system] == ["x-anthropic-", "You are Clau", "Environment:"]
    assert [t.name for t in req.tools] == ["Bash", "Read"]  # web_search dropped
    assert req.tools[0].input_schema["additionalProperties"] is False
    assert req.tools[0].input_schema["$schema"].startswith("https://")
    assistant = req.messages[1].content
    assert assistant[0] == ir.ThinkingBlock(thinking="I should run ls", signature="EpYBCkYIBhgC")
    assert assistant[2] == ir.ToolUseBlock("toolu_01", "Bash", {"command": "ls"})
    assert req.messages[2].content == [
        ir.ToolResultBlock("toolu_01", [ir.TextBlock("a.txt\nb.txt")]), ir.TextBlock("thanks")]
    assert req.headers["anthropic-beta"] == "claude-code-20250219,oauth-2025-04-20"


def test_system_string_and_blocks():
    assert decode_request(body(system="be brief"), {}).system == [ir.TextBlock("be brief")]
    assert decode_request(body(system=""), {}).system == []
    req = decode_request(body(system=[{"type": "text", "text": "a"},
                                      {"type": "text", "text": "b",
                                       "cache_control": {"type": "ephemeral", "ttl": "1h"}}]), {})
    assert req.system == [ir.TextBlock("a"), ir.TextBlock("b")]


def test_all_block_kinds():
    content = [
        {"type": "text", "text": "look", "cache_control": {"type": "ephemeral"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
        {"type": "tool_result", "tool_use_id": "toolu_9", "is_error": True, "content": [
            {"type": "text", "text": "failed"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg",
                                         "data": "/9j/"}},
            {"type": "search_result", "source": "x", "title": "t", "content": []}]},
        {"type": "tool_result", "tool_use_id": "toolu_10"},
    ]
    assistant = [
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "thinking", "thinking": "hmm"},
        {"type": "tool_use", "id": "toolu_9", "name": "shot", "input": {}},
    ]
    req = decode_request(body(messages=[{"role": "assistant", "content": assistant},
                                        {"role": "user", "content": content}]), {})
    assert req.messages[0].content == [
        ir.ThinkingBlock(redacted=True, data="opaque"), ir.ThinkingBlock(thinking="hmm"),
        ir.ToolUseBlock("toolu_9", "shot", {})]
    assert req.messages[1].content == [
        ir.TextBlock("look"), ir.ImageBlock(media_type="image/png", data="iVBOR"),
        ir.ImageBlock(url="https://example.com/a.jpg"),
        ir.ToolResultBlock("toolu_9", [ir.TextBlock("failed"),
                                       ir.ImageBlock(media_type="image/jpeg", data="/9j/")],
                           is_error=True),
        ir.ToolResultBlock("toolu_10", [])]


@pytest.mark.parametrize("kind", ["document", "server_tool_use", "web_search_tool_result",
                                  "container_upload", "search_result", "brand_new_block"])
def test_unknown_and_unmodelled_blocks_dropped_with_debug_log(kind, caplog):
    secret = "PROMPT-TEXT-MUST-NOT-BE-LOGGED"
    block = {"type": kind, "text": secret, "source": {"type": "text", "data": secret}}
    with caplog.at_level(logging.DEBUG, logger="ferryllm.translate"):
        req = decode_request(body(messages=[{"role": "user", "content": [
            {"type": "text", "text": "keep"}, block]}]), {})
    assert req.messages[0].content == [ir.TextBlock("keep")]
    assert any(kind in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records)
    assert secret not in caplog.text


def test_server_tools_dropped_with_info_log(caplog):
    tools = [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
             {"type": "web_fetch_20250910", "name": "web_fetch"},
             {"type": "code_execution_20250825", "name": "code_execution"},
             {"type": "bash_20250124", "name": "bash"},
             {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
             {"name": "mystery_without_schema"},
             {"type": "custom", "name": "mine", "input_schema": {"type": "object"}},
             {"name": "plain", "description": "d", "input_schema": {"type": "object"},
              "defer_loading": False, "cache_control": {"type": "ephemeral"}}]
    with caplog.at_level(logging.INFO, logger="ferryllm.translate"):
        req = decode_request(body(tools=tools), {})
    assert req.tools == [ir.Tool("mine", None, {"type": "object"}),
                         ir.Tool("plain", "d", {"type": "object"})]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(infos) == 6 and any("web_search_20250305" in m for m in infos)


def test_tool_choice():
    for kind in ("auto", "any", "none"):
        assert decode_request(body(tool_choice={"type": kind}), {}).tool_choice == \
            ir.ToolChoice(kind)
    req = decode_request(body(tool_choice={"type": "tool", "name": "Bash",
                                           "disable_parallel_tool_use": True}), {})
    assert req.tool_choice == ir.ToolChoice("tool", "Bash", disable_parallel=True)
    assert req.parallel_tool_calls is False


def test_sampling_stop_stream_user():
    req = decode_request(body(temperature=0.2, top_p=0.9, top_k=40, stream=True,
                              stop_sequences=["\n\nHuman:", "END"],
                              metadata={"user_id": "user-7"}), {})
    assert (req.temperature, req.top_p, req.top_k, req.stream) == (0.2, 0.9, 40, True)
    assert req.stop == ["\n\nHuman:", "END"] and req.user == "user-7"
    assert decode_request(body(temperature=1), {}).temperature == 1
    assert decode_request(body(metadata={}), {}).user is None


@pytest.mark.parametrize("thinking,output_config,want", [
    ({"type": "enabled", "budget_tokens": 2048}, None, ir.Reasoning(budget_tokens=2048)),
    ({"type": "adaptive"}, None, ir.Reasoning(adaptive=True)),
    ({"type": "disabled"}, None, ir.Reasoning(enabled=False)),
    (None, {"effort": "low"}, ir.Reasoning(effort="low")),
    (None, {"effort": "max", "format": {"type": "json_schema"}}, ir.Reasoning(effort="max")),
    ({"type": "enabled", "budget_tokens": 5000}, {"effort": "medium"},
     ir.Reasoning(effort="medium", budget_tokens=5000)),
    ({"type": "adaptive", "display": "omitted"}, {"effort": "high"},
     ir.Reasoning(effort="high", adaptive=True)),
    (None, {"format": {"type": "json_schema"}}, None),
    (None, {"effort": None}, None),
])
def test_reasoning(thinking, output_config, want):
    extra = {}
    if thinking is not None:
        extra["thinking"] = thinking
    if output_config is not None:
        extra["output_config"] = output_config
    assert decode_request(body(**extra), {}).reasoning == want


def test_ignored_fields_accepted():
    req = decode_request(body(context_management={"edits": []}, service_tier="auto",
                              container="container_1", mcp_servers=[{"type": "url", "url": "u",
                                                                     "name": "n"}],
                              output_config={"format": {"type": "json_schema", "schema": {}}},
                              some_future_field={"x": 1}), {})
    assert req.messages


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("mutate,param", [
    (lambda b: b.pop("model"), "model"),
    (lambda b: b.update(model=42), "model"),
    (lambda b: b.update(model=""), "model"),
    (lambda b: b.pop("messages"), "messages"),
    (lambda b: b.update(messages={"role": "user"}), "messages"),
    (lambda b: b.pop("max_tokens"), "max_tokens"),
    (lambda b: b.update(max_tokens=0), "max_tokens"),
    (lambda b: b.update(max_tokens="100"), "max_tokens"),
    (lambda b: b.update(max_tokens=True), "max_tokens"),
    (lambda b: b.update(max_tokens=1.5), "max_tokens"),
    (lambda b: b["messages"].append("hi"), "messages.1"),
    (lambda b: b["messages"].append({"role": "tool", "content": "x"}), "messages.1.role"),
    (lambda b: b["messages"].append({"role": "assistant"}), "messages.1.content"),
    (lambda b: b["messages"].append({"role": "user", "content": 5}), "messages.1.content"),
    (lambda b: b["messages"].extend([{"role": "assistant", "content": "a"},
                                     {"role": "user", "content": [{"type": "text"}]}]),
     "messages.2.content.0.text"),
    (lambda b: b["messages"].append({"role": "user", "content": ["text"]}),
     "messages.1.content.0"),
    (lambda b: b["messages"].append({"role": "user", "content": [{"text": "no type"}]}),
     "messages.1.content.0.type"),
    (lambda b: b["messages"].append({"role": "assistant", "content": [
        {"type": "tool_use", "id": "t", "name": "n", "input": "ls"}]}),
     "messages.1.content.0.input"),
    (lambda b: b["messages"].append({"role": "user", "content": [
        {"type": "tool_result", "content": "x"}]}), "messages.1.content.0.tool_use_id"),
    (lambda b: b["messages"].append({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t", "is_error": "yes"}]}),
     "messages.1.content.0.is_error"),
    (lambda b: b["messages"].append({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t", "content": 3}]}),
     "messages.1.content.0.content"),
    (lambda b: b["messages"].append({"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "data": "x"}}]}),
     "messages.1.content.0.source.media_type"),
    (lambda b: b["messages"].append({"role": "user", "content": [{"type": "image"}]}),
     "messages.1.content.0.source"),
    (lambda b: b.update(system=5), "system"),
    (lambda b: b.update(system=[{"type": "text", "text": 1}]), "system.0.text"),
    (lambda b: b.update(tools={"name": "x"}), "tools"),
    (lambda b: b.update(tools=[{"name": 1, "input_schema": {}}]), "tools.0.name"),
    (lambda b: b.update(tools=[{"name": "x", "input_schema": []}]), "tools.0.input_schema"),
    (lambda b: b.update(tools=[{"name": "x", "description": 3, "input_schema": {}}]),
     "tools.0.description"),
    (lambda b: b.update(tool_choice={"type": "required"}), "tool_choice.type"),
    (lambda b: b.update(tool_choice={"type": "tool"}), "tool_choice.name"),
    (lambda b: b.update(tool_choice={"type": []}), "tool_choice.type"),  # unhashable: was a 500
    (lambda b: b.update(tool_choice={"type": {}}), "tool_choice.type"),
    (lambda b: b.update(tool_choice="auto"), "tool_choice"),
    (lambda b: b.update(stop_sequences="END"), "stop_sequences"),
    (lambda b: b.update(stop_sequences=["a", 1]), "stop_sequences.1"),
    (lambda b: b.update(temperature="hot"), "temperature"),
    (lambda b: b.update(top_p=True), "top_p"),
    (lambda b: b.update(top_k=0.5), "top_k"),
    (lambda b: b.update(stream="yes"), "stream"),
    (lambda b: b.update(metadata={"user_id": 5}), "metadata.user_id"),
    (lambda b: b.update(metadata="u"), "metadata"),
    (lambda b: b.update(thinking={"type": "enabled"}), "thinking.budget_tokens"),
    (lambda b: b.update(thinking="on"), "thinking"),
    (lambda b: b.update(output_config={"effort": 3}), "output_config.effort"),
])
def test_validation_names_the_param(mutate, param):
    b = body()
    mutate(b)
    with pytest.raises(InvalidRequest) as info:
        decode_request(b, {})
    assert info.value.param == param
    assert info.value.status == 400 and info.value.kind == "invalid_request_error"
    assert str(info.value).startswith(param)


def test_body_must_be_an_object():
    with pytest.raises(InvalidRequest):
        decode_request([1, 2], {})


def test_count_tokens_needs_no_max_tokens():
    b = body()
    del b["max_tokens"]
    req = decode_count_tokens(b, HEADERS)
    assert req.max_tokens is None and req.native_protocol == "anthropic"
    with pytest.raises(InvalidRequest) as info:
        decode_count_tokens(body(max_tokens=-1), {})
    assert info.value.param == "max_tokens"
    with pytest.raises(InvalidRequest) as info:
        decode_count_tokens({"model": "m"}, {})
    assert info.value.param == "messages"


# ---------------------------------------------------------------- responses


def test_encode_response():
    resp = ir.Response(
        id="chatcmpl-123", model="gpt-4o", stop_reason="tool_use", stop_sequence=None,
        content=[ir.ThinkingBlock(thinking="hmm", signature=None),
                 ir.ThinkingBlock(thinking="signed", signature="sig"),
                 ir.ThinkingBlock(redacted=True, data="opaque"),
                 ir.TextBlock("Hi"),
                 ir.ToolUseBlock("call_1", "Bash", {"command": "ls"})],
        usage=ir.Usage(input_tokens=10, output_tokens=5, cache_read_input_tokens=90,
                       cache_creation_input_tokens=3))
    out = encode_response(resp, "claude-display")
    assert out == {
        "id": "msg_chatcmpl-123", "type": "message", "role": "assistant",
        "model": "claude-display",
        "content": [{"type": "thinking", "thinking": "hmm", "signature": ""},
                    {"type": "thinking", "thinking": "signed", "signature": "sig"},
                    {"type": "redacted_thinking", "data": "opaque"},
                    {"type": "text", "text": "Hi"},
                    {"type": "tool_use", "id": "call_1", "name": "Bash",
                     "input": {"command": "ls"}}],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 10, "cache_creation_input_tokens": 3,
                  "cache_read_input_tokens": 90, "output_tokens": 5}}
    assert list(out) == ["id", "type", "role", "model", "content", "stop_reason",
                         "stop_sequence", "usage"]


def test_encode_response_keeps_msg_id_and_stop_sequence():
    out = encode_response(ir.Response("msg_01", "m", [ir.TextBlock("x")], "stop_sequence",
                                      "END"), "d")
    assert out["id"] == "msg_01" and out["stop_sequence"] == "END"


def test_encode_response_validates_with_the_sdk_model():
    from anthropic.types import Message
    out = encode_response(ir.Response("x", "m", [ir.TextBlock("hi"),
                                                 ir.ToolUseBlock("t", "n", {"a": 1})],
                                      "end_turn"), "claude")
    msg = Message.model_validate(out)
    assert msg.content[1].input == {"a": 1} and msg.usage.cache_read_input_tokens == 0


@pytest.mark.parametrize("err,kind", [
    (InvalidRequest("messages: required", param="messages"), "invalid_request_error"),
    (ModelNotFound("no route for model 'x'"), "not_found_error"),
    (RateLimited("slow down", retry_after=3), "rate_limit_error"),
    (UpstreamError("Overloaded", status=529, provider="p"), "overloaded_error"),
    (UpstreamError("boom", status=500, provider="p"), "api_error"),
])
def test_error_body(err, kind):
    assert orjson.loads(error_body(err)) == {"type": "error",
                                             "error": {"type": kind, "message": str(err)}}


def test_mid_conversation_system_message_and_deferred_tool_claude_code_2_1():
    """Claude Code 2.1.331 sends its environment as a `role: system` message (with a
    message-level output_config) and a `defer_loading` placeholder tool."""
    body = {"model": "m", "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"},
                         {"role": "system", "output_config": {"effort": "medium"},
                          "content": [{"type": "text", "text": "# Environment"}]}],
            "tools": [{"name": "Bash", "input_schema": {"type": "object"}},
                      {"name": "DeferredToolPlaceholder", "defer_loading": True,
                       "input_schema": {"type": "object"}}]}
    req = decode_request(body, {})
    assert [m.role for m in req.messages] == ["user", "system"]
    assert req.messages[1].content[0].text == "# Environment"
    assert [(t.name, t.deferred) for t in req.tools] == [("Bash", False),
                                                         ("DeferredToolPlaceholder", True)]
    assert req.native["tools"][1]["name"] == "DeferredToolPlaceholder"  # pass-through keeps it


def test_tool_reference_in_tool_result_and_deferred_flag():
    body = {"model": "m", "max_tokens": 10, "messages": [
        {"role": "user", "content": "find it"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "ToolSearch",
                                           "input": {"query": "select:mcp__a__b"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [
            {"type": "tool_reference", "tool_name": "mcp__a__b"}]}]}],
        "tools": [{"name": "mcp__a__b", "input_schema": {"type": "object"}, "defer_loading": True}]}
    req = decode_request(body, {})
    assert req.messages[2].content[0].content == [ir.ToolReferenceBlock("mcp__a__b")]
    assert req.tools[0].deferred is True
    body["messages"][2]["content"][0]["content"][0]["tool_name"] = 5
    with pytest.raises(InvalidRequest) as info:
        decode_request(body, {})
    assert info.value.param == "messages.2.content.0.content.0.tool_name"
    body["messages"][2]["content"][0]["content"][0]["tool_name"] = "x"
    body["tools"][0]["defer_loading"] = "yes"
    with pytest.raises(InvalidRequest) as info:
        decode_request(body, {})
    assert info.value.param == "tools.0.defer_loading"


def test_output_config_format_is_structured_output_and_checked():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}],
            "output_config": {"effort": "low", "format": {"type": "json_schema", "schema": schema}}}
    req = decode_request(body, {})
    assert req.response_format == {"type": "json_schema", "name": "response", "schema": schema}
    assert req.reasoning.effort == "low"
    for unusable in ({"type": "text"}, {"type": "json_schema", "schema": []}):
        assert decode_request({**body, "output_config": {"format": unusable}},
                              {}).response_format is None
    with pytest.raises(InvalidRequest, match=r"output_config\.format: must be an object"):
        decode_request({**body, "output_config": {"format": []}}, {})
