"""Seeds for the entry fuzzers (`tests/e2e/test_fuzz_entries.py`), one table per side.

`SEEDS`: route path (as registered, `EntryRoute.path`) → valid request bodies that the fuzzer
mutates (a value replaced by generated JSON, a key removed or added, a list emptied …). Every
chat and count_tokens route in the registry is fuzzed; a route without a seed still gets
generated JSON. A route whose path has `{placeholders}` is sent to the concrete URL in
`URLS` (default: each placeholder replaced by `fuzz-model`). The seed's `model` is replaced by
one routed to each provider type in turn, so add the model-free body. Add a protocol with one
line here:

    SEEDS["/v1/responses"] = [{"model": "m", "input": "hello"}]

`PROVIDER_REPLIES`: provider endpoint path → (JSON answer, SSE answer) the mock provider gives,
so requests that survive validation reach a well-behaved provider of every type.
"""
from __future__ import annotations

_TOOL = {"name": "get_weather", "description": "Weather for a city",
         "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}}
_ANTHROPIC_CHAT = {
    "model": "m", "max_tokens": 64, "stream": False,
    "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": "What is the weather in Oslo?"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "look it up", "signature": "sig"},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1",
             "content": [{"type": "text", "text": "rain"},
                         {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                      "data": "iVBORw0KGgo="}}]},
            {"type": "text", "text": "And tomorrow?"}]}],
    "tools": [_TOOL, {"name": "mcp__srv__lookup", "description": "deferred", "defer_loading": True,
                      "input_schema": {"type": "object", "properties": {}}},
              {"type": "web_search_20250305", "name": "web_search"}],
    "tool_choice": {"type": "auto"},
    "thinking": {"type": "enabled", "budget_tokens": 2048},
    "output_config": {"effort": "high"},
    "metadata": {"user_id": "u-1"}, "stop_sequences": ["END"], "temperature": 0.5,
}
_OPENAI_CHAT = {
    "model": "m", "max_tokens": 64, "stream": False, "stream_options": {"include_usage": True},
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": [{"type": "text", "text": "Weather in Oslo?"},
                                     {"type": "image_url",
                                      "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "rain"}],
    "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                                "parameters": _TOOL["input_schema"]}}],
    "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    "reasoning_effort": "low", "stop": ["END"], "temperature": 0.2, "user": "u-1",
    "parallel_tool_calls": False,
}

SEEDS: dict[str, list[dict]] = {
    "/v1/messages": [_ANTHROPIC_CHAT, {**_ANTHROPIC_CHAT, "stream": True},
                     {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}],
    "/v1/messages/count_tokens": [{k: v for k, v in _ANTHROPIC_CHAT.items()
                                   if k not in ("max_tokens", "stream")}],
    "/v1/chat/completions": [_OPENAI_CHAT, {**_OPENAI_CHAT, "stream": True},
                             {"model": "m", "messages": [{"role": "user", "content": "hi"}]}],
}

URLS: dict[str, str] = {}


# ---------------------------------------------------------------- the mock provider's answers

_OPENAI_JSON = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "b",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "ok"}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}
_OPENAI_SSE = (b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"b",'
               b'"choices":[{"index":0,"delta":{"role":"assistant","content":"ok"},'
               b'"finish_reason":null}]}\n\n'
               b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"b",'
               b'"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],'
               b'"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}\n\n'
               b"data: [DONE]\n\n")
_ANTHROPIC_JSON = {"id": "msg_1", "type": "message", "role": "assistant", "model": "b",
                   "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn",
                   "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 1}}
_ANTHROPIC_SSE = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":'
    b'"message","role":"assistant","model":"b","content":[],"stop_reason":null,'
    b'"stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":0}}}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
    b'"content_block":{"type":"text","text":""}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"ok"}}\n\n'
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn",'
    b'"stop_sequence":null},"usage":{"output_tokens":1}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n')

PROVIDER_REPLIES: dict[str, tuple[dict, bytes]] = {
    "/v1/chat/completions": (_OPENAI_JSON, _OPENAI_SSE),
    "/v1/messages": (_ANTHROPIC_JSON, _ANTHROPIC_SSE),
    "/v1/messages/count_tokens": ({"input_tokens": 3}, b""),
}
