"""adapters/openai: IR → Chat Completions body, provider JSON → IR, provider errors."""
from __future__ import annotations

import orjson
import pytest

from ferryllm import __version__, ir
from ferryllm.protocols.openai.adapter import IMAGE_MOVED, OpenAIAdapter, effort_for
from ferryllm.protocols.openai.adapter_stream import StreamDecoder
from ferryllm.config import ProviderConfig
from ferryllm.protocols.openai.entry import decode_request
from ferryllm.errors import UpstreamError, UpstreamProtocolError
from ferryllm.toolnames import ToolNames, shorten

LONG = "mcp__github.com__create_or_update_file_contents_in_repository_branch"
DOTTED = "server.tool:v1"


def provider(**kw) -> ProviderConfig:
    kw.setdefault("api_key", "sk-test")
    return ProviderConfig(name="prov", type="openai", base_url="https://api.example.com", **kw)


def encode(req: ir.Request, **kw) -> dict:
    return orjson.loads(OpenAIAdapter(provider(**kw)).encode_request(req))


def request(messages, **kw) -> ir.Request:
    kw.setdefault("model", "backend-model")
    return ir.Request(messages=messages, **kw)


def user(*blocks) -> ir.Message:
    return ir.Message("user", list(blocks))


def assistant(*blocks) -> ir.Message:
    return ir.Message("assistant", list(blocks))


T = ir.TextBlock


# ------------------------------------------------------------------ url and headers

def test_url_and_headers() -> None:
    adapter = OpenAIAdapter(provider(headers=(("x-org", "o1"),)))
    assert adapter.protocol == "openai"
    assert adapter.url == "https://api.example.com/v1/chat/completions"
    json_headers = adapter.headers(request([]))
    assert json_headers == {"content-type": "application/json", "accept": "application/json",
                            "authorization": "Bearer sk-test", "x-org": "o1",
                            "user-agent": f"ferryllm/{__version__}"}
    assert adapter.headers(request([], stream=True))["accept"] == "text/event-stream"
    assert adapter.headers(request([])) is json_headers  # built once
    assert "authorization" not in OpenAIAdapter(provider(api_key=None)).headers(request([]))


# ------------------------------------------------------------------ IR → body

def test_minimal_body_sends_only_chat_completions_fields() -> None:
    req = request([user(T("hi"))], top_k=5, max_tokens=100, temperature=0.5, top_p=0.9,
                  stop=["X"], user="u1", headers={"anthropic-beta": "x"})
    body = encode(req)
    assert body == {"model": "backend-model", "messages": [{"role": "user", "content": "hi"}],
                    "max_tokens": 100, "temperature": 0.5, "top_p": 0.9, "stop": ["X"],
                    "user": "u1"}


def test_system_blocks_become_one_system_message_first() -> None:
    body = encode(request([user(T("hi"))], system=[T("a"), T("b")]))
    assert body["messages"][0] == {"role": "system", "content": "a\n\nb"}


def test_images_and_multi_text_user_turns() -> None:
    body = encode(request([user(T("look"), ir.ImageBlock("image/png", "AAAA"),
                                ir.ImageBlock(url="https://x/y.jpg"))]))
    assert body["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "image_url", "image_url": {"url": "https://x/y.jpg"}}]}]
    body = encode(request([user(T("a"), T("b"))]))
    assert body["messages"] == [{"role": "user", "content": "a\n\nb"}]


def test_assistant_tool_calls_keep_text_and_results_follow_in_order() -> None:
    req = request([
        user(T("go")),
        assistant(ir.ThinkingBlock("secret plan", "sig"), T("Let me check."),
                  ir.ToolUseBlock("toolu_1", "get_weather", {"city": "Zürich"}),
                  ir.ToolUseBlock("toolu_2", "bash", {"_raw": "{not json"})),
        user(T("also this"),  # user text before the results in the same turn
             ir.ToolResultBlock("toolu_1", [T("sunny")]),
             ir.ToolResultBlock("toolu_2", [T("err")], is_error=True)),
    ])
    msgs = encode(req)["messages"]
    assert msgs == [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": "Let me check.", "tool_calls": [
            {"id": "toolu_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city":"Zürich"}'}},
            {"id": "toolu_2", "type": "function",
             "function": {"name": "bash", "arguments": "{not json"}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "err"},
        {"role": "user", "content": "also this"},
    ]


def test_assistant_with_only_tool_calls_has_null_content() -> None:
    msgs = encode(request([user(T("x")), assistant(ir.ToolUseBlock("c", "f", {}))]))["messages"]
    assert msgs[1] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}


def test_images_in_tool_results_move_to_a_user_message_after_the_tools() -> None:
    img = ir.ImageBlock("image/png", "IMG")
    req = request([
        user(T("go")),
        assistant(ir.ToolUseBlock("a", "screenshot", {}), ir.ToolUseBlock("b", "read", {})),
        user(ir.ToolResultBlock("a", [img]), ir.ToolResultBlock("b", [T("text"), img]),
             T("what do you see?")),
    ])
    msgs = encode(req)["messages"]
    assert msgs[2:] == [
        {"role": "tool", "tool_call_id": "a", "content": IMAGE_MOVED},
        {"role": "tool", "tool_call_id": "b", "content": "text"},
        {"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,IMG"}},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,IMG"}},
            {"type": "text", "text": "what do you see?"}]},
    ]


def test_thinking_history_dropped_unless_reasoning_history() -> None:
    req = request([user(T("q")),
                   assistant(ir.ThinkingBlock("step 1", None), ir.ToolUseBlock("c", "f", {})),
                   user(ir.ToolResultBlock("c", [T("r")])),
                   assistant(ir.ThinkingBlock("", None, redacted=True, data="opaque"))])
    plain = encode(req)["messages"]
    assert "reasoning_content" not in plain[1]
    assert len(plain) == 3  # the thinking-only assistant turn has nothing to send
    kept = encode(req, reasoning_history=True)["messages"]
    assert kept[1]["reasoning_content"] == "step 1"
    assert len(kept) == 3  # a redacted block is never sent as text


def test_tools_choice_and_parallel() -> None:
    tools = [ir.Tool("f", "does f", {"type": "object", "properties": {"a": {"type": "string"}}}),
             ir.Tool("g", None, {})]
    body = encode(request([user(T("x"))], tools=tools,
                          tool_choice=ir.ToolChoice("any", disable_parallel=True)))
    assert body["tools"] == [
        {"type": "function", "function": {"name": "f", "description": "does f", "parameters":
                                          {"type": "object", "properties": {"a": {"type": "string"}}}}},
        {"type": "function", "function": {"name": "g", "parameters": {"type": "object", "properties": {}}}}]
    assert body["tool_choice"] == "required" and body["parallel_tool_calls"] is False
    for choice, want in [(ir.ToolChoice("auto"), "auto"), (ir.ToolChoice("none"), "none"),
                         (ir.ToolChoice("tool", "f"), {"type": "function", "function": {"name": "f"}})]:
        body = encode(request([user(T("x"))], tools=tools, tool_choice=choice))
        assert body["tool_choice"] == want and "parallel_tool_calls" not in body


def test_long_and_invalid_tool_names_are_shortened_everywhere_and_mapped_back() -> None:
    short, dotted = shorten(LONG), shorten(DOTTED)
    assert len(short) <= 64 and short != LONG and shorten(LONG) == short
    assert dotted.startswith("server_tool_v1_") and len(dotted) == len("server_tool_v1_") + 8
    req = request([user(T("x")), assistant(ir.ToolUseBlock("c1", LONG, {"a": 1})),
                   user(ir.ToolResultBlock("c1", [T("ok")]))],
                  tools=[ir.Tool(LONG, None, {}), ir.Tool(DOTTED, None, {}), ir.Tool("ok_name", None, {})],
                  tool_choice=ir.ToolChoice("tool", DOTTED))
    body = encode(req)
    assert [t["function"]["name"] for t in body["tools"]] == [short, dotted, "ok_name"]
    assert body["tool_choice"]["function"]["name"] == dotted
    assert body["messages"][1]["tool_calls"][0]["function"]["name"] == short
    # back: JSON response
    adapter = OpenAIAdapter(provider())
    resp = adapter.decode_response(orjson.dumps({"id": "x", "model": "m", "choices": [{
        "index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": None,
        "tool_calls": [{"id": "c2", "type": "function", "function": {"name": dotted, "arguments": "{}"}},
                       {"id": "c3", "type": "function", "function": {"name": "unknown", "arguments": "{}"}}]}}]}),
        req)
    assert [b.name for b in resp.content] == [DOTTED, "unknown"]
    # back: stream
    dec = adapter.stream_decoder(req)
    assert isinstance(dec, StreamDecoder)
    evs = dec.feed(b'data: {"id":"x","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c",'
                   b'"function":{"name":"' + short.encode() + b'","arguments":"{}"}}]}}]}\n\n')
    assert [e.name for e in evs if isinstance(e, ir.ToolUseStart)] == [LONG]
    assert ToolNames.for_request(req).to_client(short) == LONG


def test_max_tokens_cap_and_max_completion_tokens() -> None:
    req = request([user(T("x"))], max_tokens=64000)
    assert encode(req, max_tokens_cap=8192)["max_tokens"] == 8192
    assert encode(req)["max_tokens"] == 64000
    body = encode(req, max_tokens_cap=8192, max_completion_tokens=True)
    assert body["max_completion_tokens"] == 8192 and "max_tokens" not in body
    assert "max_tokens" not in encode(request([user(T("x"))]), max_tokens_cap=10)


@pytest.mark.parametrize("reasoning, effort", [
    (None, None),
    (ir.Reasoning(enabled=False, effort="high"), None),
    (ir.Reasoning(effort="low"), "low"),
    (ir.Reasoning(effort="minimal"), "minimal"),
    (ir.Reasoning(effort="max"), "high"),
    (ir.Reasoning(effort="xhigh"), "high"),
    (ir.Reasoning(effort="high", budget_tokens=1024), "high"),
    (ir.Reasoning(budget_tokens=1024), "minimal"),
    (ir.Reasoning(budget_tokens=2048), "low"),
    (ir.Reasoning(budget_tokens=8191), "medium"),
    (ir.Reasoning(budget_tokens=8192), "medium"),
    (ir.Reasoning(budget_tokens=8193), "high"),
    (ir.Reasoning(budget_tokens=32000), "high"),
    (ir.Reasoning(adaptive=True), None),
])
def test_reasoning_effort(reasoning, effort) -> None:
    assert effort_for(reasoning) == effort
    body = encode(request([user(T("x"))], reasoning=reasoning))
    assert body.get("reasoning_effort") == effort
    assert "thinking" not in body


def test_stream_asks_for_usage_and_long_user_is_hashed() -> None:
    body = encode(request([user(T("x"))], stream=True, user='{"device_id":"' + "a" * 80 + '"}'))
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["user"].startswith("user_") and len(body["user"]) <= 64
    assert body["user"] == encode(request([user(T("y"))], user='{"device_id":"' + "a" * 80 + '"}'))["user"]


# ------------------------------------------------------------------ native pass-through

def native(body: dict) -> ir.Request:
    req = decode_request(body, {})
    req.model = "backend-model"  # what the router does
    return req


def test_pass_through_keeps_unknown_fields_and_rewrites_model() -> None:
    body = {"model": "client-model", "messages": [{"role": "user", "content": "hi"}],
            "response_format": {"type": "json_object"}, "seed": 7, "logit_bias": {"1": 2},
            "max_tokens": 50000}
    req = native(body)
    out = encode(req, max_tokens_cap=4096)
    assert out == {**body, "model": "backend-model", "max_tokens": 4096}
    assert body["model"] == "client-model" and body["max_tokens"] == 50000  # client dict untouched


def test_pass_through_max_completion_tokens_and_stream_usage() -> None:
    req = native({"model": "c", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 9000,
                  "stream": True, "stream_options": {"include_usage": False, "x": 1}})
    out = encode(req, max_tokens_cap=4096, max_completion_tokens=True)
    assert out["max_completion_tokens"] == 4096 and "max_tokens" not in out
    assert out["stream_options"] == {"include_usage": True, "x": 1}
    req = native({"model": "c", "messages": [{"role": "user", "content": "hi"}],
                  "max_completion_tokens": 9000, "stream": True})
    out = encode(req, max_tokens_cap=4096)
    assert out["max_completion_tokens"] == 4096 and out["stream_options"] == {"include_usage": True}


def test_pass_through_reasoning_follows_the_policy() -> None:
    req = native({"model": "c", "messages": [{"role": "user", "content": "hi"}],
                  "reasoning_effort": "low"})
    assert encode(req)["reasoning_effort"] == "low"
    req.reasoning = ir.Reasoning(effort="high")  # e.g. reasoning_policy = "force"
    assert encode(req)["reasoning_effort"] == "high"
    req = native({"model": "c", "messages": [{"role": "user", "content": "hi"}],
                  "reasoning_effort": "none"})
    assert encode(req)["reasoning_effort"] == "none"


# ------------------------------------------------------------------ provider JSON → IR

def completion(message: dict, finish="stop", usage=None, **extra) -> bytes:
    body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "message": {"role": "assistant", **message},
                         "finish_reason": finish, **extra}]}
    if usage is not None:
        body["usage"] = usage
    return orjson.dumps(body)


def decode_resp(body: bytes, req: ir.Request | None = None) -> ir.Response:
    return OpenAIAdapter(provider()).decode_response(body, req or request([]))


def test_decode_text_and_usage_without_double_count() -> None:
    resp = decode_resp(completion({"content": "Hello"}, usage={
        "prompt_tokens": 1000, "completion_tokens": 20, "total_tokens": 1020,
        "prompt_tokens_details": {"cached_tokens": 800}}))
    assert resp.id == "chatcmpl-1" and resp.model == "gpt-4o"
    assert resp.content == [T("Hello")] and resp.stop_reason == ir.END_TURN
    assert resp.usage == ir.Usage(input_tokens=200, output_tokens=20, cache_read_input_tokens=800)
    assert resp.usage.prompt_tokens == 1000


def test_decode_reasoning_fields_and_think_tags() -> None:
    resp = decode_resp(completion({"content": "4", "reasoning_content": "2+2"}))
    assert resp.content == [ir.ThinkingBlock("2+2", None), T("4")]
    resp = decode_resp(completion({"content": "4", "reasoning": "2+2"}))
    assert resp.content == [ir.ThinkingBlock("2+2", None), T("4")]
    resp = decode_resp(completion({"content": "<think>\nhmm\n</think>\n\nAnswer"}))
    assert resp.content == [ir.ThinkingBlock("hmm\n", None), T("Answer")]
    resp = decode_resp(completion({"content": "say <think>"}))
    assert resp.content == [T("say <think>")]


def test_decode_tool_calls_and_finish_reasons() -> None:
    msg = {"content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\": 1}"}},
        {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "oops"}},
        {"id": "c3", "type": "function", "function": {"name": "h", "arguments": ""}}]}
    resp = decode_resp(completion(msg, "tool_calls"))
    assert resp.content == [ir.ToolUseBlock("c1", "f", {"a": 1}), ir.ToolUseBlock("c2", "g", {"_raw": "oops"}),
                            ir.ToolUseBlock("c3", "h", {})]
    assert resp.stop_reason == ir.TOOL_USE
    assert decode_resp(completion(msg, "stop")).stop_reason == ir.TOOL_USE
    assert decode_resp(completion(msg, "length")).stop_reason == ir.MAX_TOKENS
    assert decode_resp(completion({"content": "x"}, "length")).stop_reason == ir.MAX_TOKENS
    assert decode_resp(completion({"content": "x"}, "content_filter")).stop_reason == ir.REFUSAL
    assert decode_resp(completion({"content": None, "function_call": {"name": "f", "arguments": "{}"}},
                                  "function_call")).stop_reason == ir.TOOL_USE
    resp = decode_resp(completion({"content": "1 2"}, "stop", stop_reason="END"),
                       request([], stop=["END"]))
    assert (resp.stop_reason, resp.stop_sequence) == (ir.STOP_SEQUENCE, "END")


def test_decode_malformed_and_error_bodies() -> None:
    with pytest.raises(UpstreamProtocolError):
        decode_resp(b"<html>")
    with pytest.raises(UpstreamProtocolError):
        decode_resp(b"[]")
    with pytest.raises(UpstreamProtocolError):
        decode_resp(b'{"id":"x","choices":[]}')
    with pytest.raises(UpstreamProtocolError):
        decode_resp(b'{"id":"x","choices":[{"message":{"content":5}}]}')
    with pytest.raises(UpstreamError) as info:
        decode_resp(b'{"error":{"message":"model overloaded","type":"server_error"}}')
    assert info.value.status == 500 and "overloaded" in info.value.message
    with pytest.raises(UpstreamError) as info:
        decode_resp(b'{"error":{"message":"weird"}}')
    assert info.value.status == 502


# ------------------------------------------------------------------ provider errors

@pytest.mark.parametrize("status, body, headers, message, retry_after", [
    (429, b'{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}',
     {"retry-after": "7"}, "Rate limit reached", 7.0),
    (429, b'{"error":{"message":"slow"}}', {"retry-after-ms": "1500"}, "slow", 1.5),
    (400, b'{"object":"error","message":"max_tokens too large","type":"BadRequestError"}', {},
     "max_tokens too large", None),
    (422, b'{"detail":"field required"}', {}, "field required", None),
    (503, b'{"error":"upstream busy"}', {}, "upstream busy", None),
    (500, b"Internal Server Error" + b"x" * 1000, {}, "Internal Server Error" + "x" * 479, None),
])
def test_decode_error_keeps_status_message_and_retry_after(status, body, headers, message,
                                                          retry_after) -> None:
    err = OpenAIAdapter(provider()).decode_error(status, body, headers)
    assert isinstance(err, UpstreamError)
    assert err.status == status and err.message == message and err.retry_after == retry_after


def test_decode_error_credentials_are_a_gateway_problem() -> None:
    err = OpenAIAdapter(provider()).decode_error(401, b'{"error":{"message":"Incorrect API key sk-test"}}', {})
    assert err.status == 502 and "credentials" in err.message and "sk-test" not in err.message


def test_prompt_cache_key_from_the_policy() -> None:
    assert "prompt_cache_key" not in encode(request([user(T("x"))]))
    assert encode(request([user(T("x"))], prompt_cache_key="k1"))["prompt_cache_key"] == "k1"
    req = native({"model": "c", "messages": [{"role": "user", "content": "hi"}]})
    req.prompt_cache_key = "k1"
    assert encode(req)["prompt_cache_key"] == "k1"
    req = native({"model": "c", "messages": [{"role": "user", "content": "hi"}],
                  "prompt_cache_key": "mine"})
    req.prompt_cache_key = "k1"
    assert encode(req)["prompt_cache_key"] == "mine"


def test_mid_conversation_system_instruction_goes_as_user_text():
    from ferryllm import ir as _ir
    req = _ir.Request(model="m", messages=[
        _ir.Message("user", [_ir.TextBlock("hi")]),
        _ir.Message("system", [_ir.TextBlock("# Environment")])])
    body = orjson.loads(OpenAIAdapter(_provider_for_system_test()).encode_request(req))
    assert body["messages"] == [{"role": "user", "content": "hi"},
                                {"role": "user", "content": "# Environment"}]


def _provider_for_system_test():
    from ferryllm.config import ProviderConfig
    return ProviderConfig(name="p", type="openai", base_url="http://127.0.0.1:1", api_key="k")


def test_send_reasoning_effort_false_never_sends_it():
    from dataclasses import replace as _replace
    provider = _replace(_provider_for_system_test(), send_reasoning_effort=False)
    adapter = OpenAIAdapter(provider)
    req = ir.Request(model="m", messages=[ir.Message("user", [ir.TextBlock("x")])],
                     reasoning=ir.Reasoning(effort="high"))
    assert "reasoning_effort" not in orjson.loads(adapter.encode_request(req))
    native = decode_request({"model": "m", "reasoning_effort": "low",
                             "messages": [{"role": "user", "content": "x"}]}, {})
    assert "reasoning_effort" not in orjson.loads(adapter.encode_request(native))


def test_structured_output_as_response_format() -> None:
    fmt = {"type": "json_schema", "name": "answer", "strict": True,
           "schema": {"type": "object", "properties": {"a": {"type": "string"}}}}
    out = encode(request([user(ir.TextBlock("x"))], response_format=fmt))
    assert out["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "answer", "schema": fmt["schema"], "strict": True}}
    out = encode(request([user(ir.TextBlock("x"))], response_format={"type": "json_object"}))
    assert out["response_format"] == {"type": "json_object"}
