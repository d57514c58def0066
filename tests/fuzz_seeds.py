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

from orjson import dumps as orjson_dumps

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
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}},
            {"type": "tool_use", "id": "toolu_2", "name": "ToolSearch", "input": {"query": "x"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1",
             "content": [{"type": "text", "text": "rain"},
                         {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                      "data": "iVBORw0KGgo="}}]},
            {"type": "tool_result", "tool_use_id": "toolu_2",
             "content": [{"type": "tool_reference", "tool_name": "mcp__srv__lookup"}]},
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

_TOOL_SEARCH = {  # a server tool search with an earlier search in the history
    "model": "m", "max_tokens": 64,
    "tools": [{"type": "tool_search_tool_regex_20251119", "name": "tool_search_tool_regex"},
              {**_TOOL, "defer_loading": True}],
    "messages": [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": [
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "tool_search_tool_regex",
             "input": {"query": "weather"}},
            {"type": "tool_search_tool_result", "tool_use_id": "srvtoolu_1", "content": {
                "type": "tool_search_tool_search_result",
                "tool_references": [{"type": "tool_reference", "tool_name": "get_weather"}]}},
            {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "Oslo"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9",
                                      "content": "rain"}]}]}

SEEDS: dict[str, list[dict]] = {
    "/v1/messages": [_ANTHROPIC_CHAT, {**_ANTHROPIC_CHAT, "stream": True}, _TOOL_SEARCH,
                     {**_TOOL_SEARCH, "messages": _TOOL_SEARCH["messages"][:1], "stream": True},
                     {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}],
    "/v1/messages/count_tokens": [{k: v for k, v in _ANTHROPIC_CHAT.items()
                                   if k not in ("max_tokens", "stream")}],
    "/v1/chat/completions": [_OPENAI_CHAT, {**_OPENAI_CHAT, "stream": True},
                             {"model": "m", "messages": [{"role": "user", "content": "hi"}]}],
}

_GEMINI_CHAT = {
    "systemInstruction": {"role": "user", "parts": [{"text": "You are terse."}]},
    "contents": [
        {"role": "user", "parts": [{"text": "Weather in Oslo?"},
                                   {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}]},
        {"role": "model", "parts": [
            {"text": "look it up", "thought": True},
            {"functionCall": {"id": "c1", "name": "get_weather", "args": {"city": "Oslo"}},
             "thoughtSignature": "U0lHMQ=="}]},
        {"role": "user", "parts": [
            {"functionResponse": {"id": "c1", "name": "get_weather", "response": {"output": "rain"}}},
            {"text": "And tomorrow?"}]}],
    "tools": [{"functionDeclarations": [
        {"name": "get_weather", "description": "Weather",
         "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING", "nullable": True}},
                        "required": ["city"]}},
        {"name": "lookup", "parametersJsonSchema": _TOOL["input_schema"]}]},
        {"googleSearch": {}}],
    "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
    "generationConfig": {"maxOutputTokens": 64, "temperature": 0.5, "topP": 0.9, "topK": 40,
                         "stopSequences": ["END"], "candidateCount": 1,
                         "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 2048},
                         "responseMimeType": "application/json",
                         "responseSchema": {"type": "OBJECT", "properties": {"x": {"type": "NUMBER"}}}},
}
_GEMINI_SNAKE = {
    "system_instruction": {"parts": [{"text": "s"}]},
    "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
    "generation_config": {"max_output_tokens": 8,
                          "thinking_config": {"include_thoughts": True, "thinking_level": "low"}},
}
for _version in ("v1beta", "v1"):
    _chat = f"/{_version}/models/{{model:[^:]+}}:{{action:generateContent|streamGenerateContent}}"
    SEEDS[_chat] = [_GEMINI_CHAT, _GEMINI_SNAKE]
    SEEDS[f"/{_version}/models/{{model:[^:]+}}:countTokens"] = [
        {"contents": _GEMINI_CHAT["contents"]},
        {"generateContentRequest": {**_GEMINI_CHAT, "model": "models/m"}}]

# `{model}` is filled with the body's model (escaped) by the fuzzer
_RESPONSES = {
    "model": "m", "stream": False, "store": False, "instructions": "You are terse.",
    "include": ["reasoning.encrypted_content"], "prompt_cache_key": "session-1",
    "reasoning": {"effort": "low", "summary": "auto"}, "max_output_tokens": 64,
    "parallel_tool_calls": True, "tool_choice": "auto", "text": {"verbosity": "low"},
    "input": [
        {"type": "message", "role": "developer", "content": [
            {"type": "input_text", "text": "Be brief."}]},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "Weather in Oslo?"},
            {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="}]},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "hm"}],
         "encrypted_content": "gAAAA-enc"},
        {"type": "message", "id": "msg_1", "role": "assistant", "phase": "commentary",
         "content": [{"type": "output_text", "text": "Checking."}]},
        {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather",
         "arguments": "{\"city\":\"Oslo\"}"},
        {"type": "custom_tool_call", "id": "ctc_1", "call_id": "call_2", "name": "apply_patch",
         "input": "*** Begin Patch\n*** End Patch"},
        {"type": "function_call_output", "call_id": "call_1", "output": [
            {"type": "input_text", "text": "rain"}]},
        {"type": "custom_tool_call_output", "call_id": "call_2", "output": "Done"},
        {"type": "web_search_call", "id": "ws_1", "status": "completed"},
        {"type": "additional_tools", "role": "developer", "tools": [
            {"type": "namespace", "name": "mcp__srv", "description": "a server", "tools": [
                {"type": "function", "name": "lookup", "parameters": {"type": "object"}}]}]}],
    "tools": [{"type": "function", "name": "get_weather", "description": "Weather",
               "parameters": _TOOL["input_schema"], "strict": False},
              {"type": "custom", "name": "apply_patch", "description": "Edit files",
               "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}},
              {"type": "web_search"}],
}
SEEDS["/v1/responses"] = [_RESPONSES, {**_RESPONSES, "stream": True},
                          {"model": "m", "input": "hi"}]
SEEDS["/responses"] = [{"model": "m", "input": "hi", "stream": True}]

URLS: dict[str, str] = {
    "/v1beta/models/{model:[^:]+}:{action:generateContent|streamGenerateContent}":
        "/v1beta/models/{model}:generateContent",
    "/v1/models/{model:[^:]+}:{action:generateContent|streamGenerateContent}":
        "/v1/models/{model}:streamGenerateContent?alt=sse",
    "/v1beta/models/{model:[^:]+}:countTokens": "/v1beta/models/{model}:countTokens",
    "/v1/models/{model:[^:]+}:countTokens": "/v1/models/{model}:countTokens",
}


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

_GEMINI_JSON = {"candidates": [{"content": {"role": "model", "parts": [{"text": "ok"}]},
                                 "finishReason": "STOP", "index": 0}],
                 "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1,
                                   "totalTokenCount": 4},
                 "modelVersion": "b", "responseId": "r1"}
_GEMINI_SSE = (b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"ok"}]},'
               b'"index":0}],"modelVersion":"b","responseId":"r1"}\r\n\r\n'
               b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":""}]},'
               b'"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":3,'
               b'"candidatesTokenCount":1,"totalTokenCount":4},"modelVersion":"b",'
               b'"responseId":"r1"}\r\n\r\n')

_RESPONSES_JSON = {"id": "resp_1", "object": "response", "created_at": 1, "status": "completed",
                   "model": "b", "output": [{"id": "msg_1", "type": "message", "role": "assistant",
                                             "status": "completed", "content": [
                                                 {"type": "output_text", "text": "ok",
                                                  "annotations": []}]}],
                   "usage": {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4}}
_RESPONSES_SSE = (
    b'event: response.created\ndata: {"type":"response.created","sequence_number":0,'
    b'"response":{"id":"resp_1","model":"b","status":"in_progress","output":[]}}\n\n'
    b'event: response.output_item.added\ndata: {"type":"response.output_item.added",'
    b'"sequence_number":1,"output_index":0,"item":{"id":"msg_1","type":"message",'
    b'"role":"assistant","status":"in_progress","content":[]}}\n\n'
    b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
    b'"sequence_number":2,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"ok"}\n\n'
    b'event: response.output_item.done\ndata: {"type":"response.output_item.done",'
    b'"sequence_number":3,"output_index":0,"item":{"id":"msg_1","type":"message",'
    b'"role":"assistant","status":"completed","content":[{"type":"output_text","text":"ok"}]}}'
    b'\n\n'
    b'event: response.completed\ndata: {"type":"response.completed","sequence_number":4,'
    b'"response":' + orjson_dumps(_RESPONSES_JSON) + b'}\n\n')

PROVIDER_REPLIES: dict[str, tuple[dict, bytes]] = {
    "/v1beta/models/*:generateContent": (_GEMINI_JSON, b""),
    "/v1beta/models/*:streamGenerateContent": (_GEMINI_JSON, _GEMINI_SSE),
    "/v1beta/models/*:countTokens": ({"totalTokens": 3}, b""),
    "/v1/chat/completions": (_OPENAI_JSON, _OPENAI_SSE),
    "/v1/messages": (_ANTHROPIC_JSON, _ANTHROPIC_SSE),
    "/v1/messages/count_tokens": ({"input_tokens": 3}, b""),
    "/v1/responses": (_RESPONSES_JSON, _RESPONSES_SSE),
}
