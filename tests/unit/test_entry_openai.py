"""entry/openai: Chat Completions request → IR, IR → chat.completion, error bodies."""
from __future__ import annotations

import logging

import orjson
import pytest
from openai.types.chat import ChatCompletion

from ferryllm import ir
from ferryllm.protocols.openai.entry import decode_request, encode_response, error_body
from ferryllm.errors import (AuthenticationError, GatewayError, InvalidRequest, ModelNotFound,
                             NotFound, Overloaded, RateLimited, RequestTooLarge, UpstreamError,
                             UpstreamProtocolError, from_upstream)

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def decode(**body) -> ir.Request:
    body.setdefault("model", "gpt-x")
    body.setdefault("messages", [{"role": "user", "content": "hi"}])
    return decode_request(body, {})


def param_of(**body) -> str | None:
    with pytest.raises(InvalidRequest) as info:
        decode(**body)
    assert info.value.status == 400
    return info.value.param


# ------------------------------------------------------------------ validation

@pytest.mark.parametrize("body, param", [
    ({"model": None}, "model"),
    ({"model": 5}, "model"),
    ({"model": ""}, "model"),
    ({"messages": None}, "messages"),
    ({"messages": []}, "messages"),
    ({"messages": "hi"}, "messages"),
    ({"messages": [{"role": "user", "content": "a"}, "x"]}, "messages[1]"),
    ({"messages": [{"role": "robot", "content": "a"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]},
     "messages[0].content[0].text"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
     "messages[0].content[0].image_url.url"),
    ({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png,abc"}}]}]},
     "messages[0].content[0].image_url.url"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
    ({"messages": [{"role": "assistant", "tool_calls": [{"id": "a", "function": {}}]}]},
     "messages[0].tool_calls[0].function.name"),
    ({"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f"}}]}]},
     "messages[0].tool_calls[0].id"),
    ({"max_tokens": "10"}, "max_tokens"),
    ({"max_tokens": True}, "max_tokens"),
    ({"max_completion_tokens": 0}, "max_completion_tokens"),
    ({"temperature": "hot"}, "temperature"),
    ({"top_p": False}, "top_p"),
    ({"stop": 5}, "stop"),
    ({"stop": ["a", 1]}, "stop[1]"),
    ({"stream": "yes"}, "stream"),
    ({"stream_options": {"include_usage": "y"}}, "stream_options.include_usage"),
    ({"user": 12}, "user"),
    ({"reasoning_effort": "extreme"}, "reasoning_effort"),
    ({"tools": {}}, "tools"),
    ({"tools": [{"type": "function", "function": {"description": "d"}}]}, "tools[0].function.name"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": []}}]},
     "tools[0].function.parameters"),
    ({"tool_choice": "sometimes"}, "tool_choice"),
    ({"tool_choice": {"type": "function", "function": {}}}, "tool_choice.function.name"),
    ({"parallel_tool_calls": "no"}, "parallel_tool_calls"),
    ({"n": 2}, "n"),
])
def test_validation_names_the_param(body, param) -> None:
    assert param_of(**body) == param


def test_n_greater_than_one_is_said_plainly() -> None:
    with pytest.raises(InvalidRequest, match="n > 1 is not supported"):
        decode(n=3)
    assert decode(n=1).model == "gpt-x"


# ------------------------------------------------------------------ messages

def test_every_system_and_developer_message_joins_system_in_order() -> None:
    req = decode(messages=[
        {"role": "system", "content": "one"},
        {"role": "user", "content": "hi"},
        {"role": "developer", "content": [{"type": "text", "text": "two"}]},
        {"role": "system", "content": "three"},
    ])
    assert req.system == [ir.TextBlock("one"), ir.TextBlock("two"), ir.TextBlock("three")]
    assert req.messages == [ir.Message("user", [ir.TextBlock("hi")])]


def test_user_parts_images_and_dropped_parts(caplog) -> None:
    caplog.set_level(logging.DEBUG, "ferryllm.translate")
    req = decode(messages=[{"role": "user", "content": [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp"}},
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
        {"type": "file", "file": {"file_id": "f"}},
        {"type": "mystery"},
    ]}])
    assert req.messages[0].content == [
        ir.TextBlock("look"), ir.ImageBlock(media_type="image/png", data=PNG),
        ir.ImageBlock(url="https://example.com/cat.webp")]
    logged = caplog.text
    assert "input_audio" in logged and "file" in logged and "AAAA" not in logged


def test_jpeg_data_url_keeps_its_media_type() -> None:
    req = decode(messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}}]}])
    assert req.messages[0].content == [ir.ImageBlock(media_type="image/jpeg", data="/9j/4AAQ")]


def test_assistant_reasoning_text_and_tool_calls(caplog) -> None:
    caplog.set_level(logging.DEBUG, "ferryllm.translate")
    req = decode(messages=[
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": "Checking.", "reasoning_content": "need tool",
         "tool_calls": [
             {"id": "call_1", "type": "function",
              "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
             {"id": "call_2", "type": "function",
              "function": {"name": "broken", "arguments": "{secret-not-json"}},
             {"id": "call_3", "type": "function", "function": {"name": "noargs", "arguments": ""}},
         ]},
    ])
    assert req.messages[1] == ir.Message("assistant", [
        ir.ThinkingBlock("need tool", signature=None), ir.TextBlock("Checking."),
        ir.ToolUseBlock("call_1", "get_weather", {"city": "Paris"}),
        ir.ToolUseBlock("call_2", "broken", {"_raw": "{secret-not-json"}),
        ir.ToolUseBlock("call_3", "noargs", {}),
    ])
    assert "secret-not-json" not in caplog.text
    assert "kept raw" in caplog.text


def test_assistant_null_content_with_tool_calls() -> None:
    req = decode(messages=[{"role": "user", "content": "x"}, {"role": "assistant", "content": None,
                 "tool_calls": [{"id": "c", "type": "function",
                                 "function": {"name": "f", "arguments": "{}"}}]}])
    assert req.messages[1].content == [ir.ToolUseBlock("c", "f", {})]


def test_consecutive_tool_messages_become_one_user_turn_with_following_user_text() -> None:
    req = decode(messages=[
        {"role": "user", "content": "go"},
        {"role": "assistant", "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            {"id": "b", "type": "function", "function": {"name": "g", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "a", "content": "result a"},
        {"role": "tool", "tool_call_id": "b", "content": [{"type": "text", "text": "result b"}]},
        {"role": "user", "content": "and now?"},
        {"role": "assistant", "content": "done"},
        {"role": "user", "content": "thanks"},
    ])
    assert [m.role for m in req.messages] == ["user", "assistant", "user", "assistant", "user"]
    assert req.messages[2].content == [
        ir.ToolResultBlock("a", [ir.TextBlock("result a")]),
        ir.ToolResultBlock("b", [ir.TextBlock("result b")]),
        ir.TextBlock("and now?"),
    ]
    assert req.messages[4].content == [ir.TextBlock("thanks")]


def test_tool_message_with_empty_content() -> None:
    req = decode(messages=[{"role": "tool", "tool_call_id": "a", "content": ""}])
    assert req.messages == [ir.Message("user", [ir.ToolResultBlock("a", [])])]


# ------------------------------------------------------------------ options

def test_sampling_and_limits() -> None:
    req = decode(max_tokens=100, max_completion_tokens=200, stop="END", temperature=0.2,
                 top_p=1, user="u-1", stream=True, stream_options={"include_usage": True})
    assert (req.max_tokens, req.stop, req.temperature, req.top_p, req.user) == (
        200, ["END"], 0.2, 1, "u-1")
    assert req.stream and req.include_usage
    assert decode(max_tokens=100).max_tokens == 100
    assert decode(stop=["a", "b"]).stop == ["a", "b"]
    req = decode(stream=True)
    assert req.stream and not req.include_usage


@pytest.mark.parametrize("effort, want", [
    ("minimal", ir.Reasoning(effort="minimal")), ("low", ir.Reasoning(effort="low")),
    ("medium", ir.Reasoning(effort="medium")), ("high", ir.Reasoning(effort="high")),
    ("xhigh", ir.Reasoning(effort="xhigh")), ("none", ir.Reasoning(enabled=False)), (None, None),
])
def test_reasoning_effort(effort, want) -> None:
    assert decode(reasoning_effort=effort).reasoning == want


def test_tools_and_choices() -> None:
    req = decode(tools=[
        {"type": "function", "function": {"name": "f", "description": "does f",
                                          "parameters": {"type": "object", "properties": {"a": {}}}}},
        {"type": "function", "function": {"name": "g"}},
        {"type": "custom", "custom": {"name": "grammar"}},
    ], tool_choice="required", parallel_tool_calls=False)
    assert req.tools == [
        ir.Tool("f", "does f", {"type": "object", "properties": {"a": {}}}),
        ir.Tool("g", None, {"type": "object", "properties": {}})]
    assert req.tool_choice == ir.ToolChoice("any", disable_parallel=True)
    assert req.parallel_tool_calls is False
    assert decode(tool_choice="auto").tool_choice == ir.ToolChoice("auto")
    assert decode(tool_choice="none").tool_choice == ir.ToolChoice("none")
    assert decode(tool_choice={"type": "function", "function": {"name": "f"}}).tool_choice == \
        ir.ToolChoice("tool", "f")
    assert decode(parallel_tool_calls=False).tool_choice == ir.ToolChoice("auto", disable_parallel=True)
    assert decode(parallel_tool_calls=True).parallel_tool_calls is True
    assert decode().tool_choice is None


def test_legacy_functions() -> None:
    req = decode(
        functions=[{"name": "f", "parameters": {"type": "object"}}], function_call={"name": "f"},
        messages=[{"role": "user", "content": "x"},
                  {"role": "assistant", "content": None,
                   "function_call": {"name": "f", "arguments": "{\"a\":1}"}},
                  {"role": "function", "name": "f", "content": "42"}])
    assert req.tools == [ir.Tool("f", None, {"type": "object"})]
    assert req.tool_choice == ir.ToolChoice("tool", "f")
    (call,) = req.messages[1].content
    assert call.name == "f" and call.input == {"a": 1}
    assert req.messages[2].content == [ir.ToolResultBlock(call.id, [ir.TextBlock("42")])]


def test_native_body_kept_for_pass_through() -> None:
    body = {"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}],
            "response_format": {"type": "json_object"}, "seed": 7}
    req = decode_request(body, {})
    assert req.native_protocol == "openai" and req.native is body


# ------------------------------------------------------------------ responses

def test_encode_response_text_reasoning_tools_and_usage() -> None:
    resp = ir.Response(
        id="msg_01", model="claude-x",
        content=[ir.ThinkingBlock("plan", "sig"), ir.TextBlock("Hi "), ir.TextBlock("there"),
                 ir.ToolUseBlock("toolu_1", "f", {"a": [1, "é"]}),
                 ir.ToolUseBlock("toolu_2", "g", {"_raw": "{bad"})],
        stop_reason=ir.TOOL_USE,
        usage=ir.Usage(input_tokens=10, output_tokens=5, cache_read_input_tokens=100,
                       cache_creation_input_tokens=20))
    body = encode_response(resp, "display", created=1700000000)
    assert body["id"] == "chatcmpl-msg_01" and body["object"] == "chat.completion"
    assert body["created"] == 1700000000 and body["model"] == "display"
    msg = body["choices"][0]["message"]
    assert msg["content"] == "Hi there" and msg["reasoning_content"] == "plan"
    assert msg["tool_calls"] == [
        {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": '{"a":[1,"é"]}'}},
        {"id": "toolu_2", "type": "function", "function": {"name": "g", "arguments": "{bad"}}]
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert body["usage"] == {"prompt_tokens": 130, "completion_tokens": 5, "total_tokens": 135,
                             "prompt_tokens_details": {"cached_tokens": 100,
                                                       "cache_write_tokens": 20}}
    ChatCompletion.model_validate(orjson.loads(orjson.dumps(body)))


def test_encode_response_only_tool_calls_has_null_content() -> None:
    resp = ir.Response("chatcmpl-1", "m", [ir.ToolUseBlock("c", "f", {})], ir.TOOL_USE)
    body = encode_response(resp, "d")
    assert body["id"] == "chatcmpl-1"
    assert body["choices"][0]["message"]["content"] is None
    assert "reasoning_content" not in body["choices"][0]["message"]
    empty = encode_response(ir.Response("x", "m", [], ir.MAX_TOKENS), "d")
    assert empty["choices"][0]["message"]["content"] == ""
    assert empty["choices"][0]["finish_reason"] == "length"


@pytest.mark.parametrize("stop, finish", [
    (ir.END_TURN, "stop"), (ir.MAX_TOKENS, "length"), (ir.TOOL_USE, "tool_calls"),
    (ir.STOP_SEQUENCE, "stop"), (ir.REFUSAL, "content_filter"), (ir.PAUSE_TURN, "stop"),
])
def test_finish_reason_map(stop, finish) -> None:
    body = encode_response(ir.Response("x", "m", [ir.TextBlock("a")], stop), "d")
    assert body["choices"][0]["finish_reason"] == finish


# ------------------------------------------------------------------ errors

@pytest.mark.parametrize("err, etype, code", [
    (InvalidRequest("bad", param="messages[0]"), "invalid_request_error", "invalid_request"),
    (AuthenticationError("no key"), "authentication_error", "invalid_api_key"),
    (ModelNotFound("no route for model 'x'"), "invalid_request_error", "model_not_found"),
    (NotFound("nothing here"), "not_found_error", "not_found"),
    (RequestTooLarge("too big"), "invalid_request_error", "request_too_large"),
    (RateLimited("slow"), "rate_limit_error", "rate_limit_exceeded"),
    (Overloaded("busy"), "server_error", "overloaded"),
    (UpstreamProtocolError("cut"), "server_error", "upstream_protocol_error"),
    (from_upstream(429, "provider slow", provider="p"), "rate_limit_error", "upstream_error"),
    (from_upstream(400, "bad field", provider="p"), "invalid_request_error", "upstream_error"),
    (from_upstream(401, "", provider="p"), "server_error", "upstream_error"),
    (GatewayError("oops"), "server_error", None),
])
def test_error_body(err, etype, code) -> None:
    body = orjson.loads(error_body(err))
    assert body == {"error": {"message": str(err), "type": etype, "param": err.param, "code": code}}


def test_error_body_param() -> None:
    assert orjson.loads(error_body(InvalidRequest("x", param="n")))["error"]["param"] == "n"
    assert orjson.loads(error_body(ModelNotFound("x")))["error"]["param"] == "model"
    assert isinstance(from_upstream(500, "x", provider="p"), UpstreamError)
