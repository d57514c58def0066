"""Translate one request between two protocols without running a server (sans-IO).

    python examples/library/translate.py

An Anthropic Messages request (what Claude Code sends) becomes an OpenAI Chat Completions body;
the provider's JSON answer and its SSE stream come back as Anthropic's. No network: the
provider's answers below are literal bytes, as an OpenAI-compatible server sends them.
"""
import orjson

from ferryllm.translate import Translator

client_body = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 1024,
    "system": "You are terse.",
    "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
    "tools": [{"name": "get_weather", "description": "Current weather for a city",
               "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                                "required": ["city"]}}],
}

t = Translator(client="anthropic", provider="openai", model="gpt-4.1")
upstream = orjson.loads(t.request(client_body))
print("POST", t.endpoint())
print(orjson.dumps(upstream, option=orjson.OPT_INDENT_2).decode())
assert upstream["model"] == "gpt-4.1" and upstream["messages"][0]["role"] == "system"
assert upstream["tools"][0]["function"]["name"] == "get_weather"

provider_json = orjson.dumps({
    "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "gpt-4.1",
    "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": None, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}}],
    "usage": {"prompt_tokens": 50, "completion_tokens": 9, "total_tokens": 59}})
answer = orjson.loads(t.response(provider_json))
print(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode())
assert answer["stop_reason"] == "tool_use" and answer["content"][0]["input"] == {"city": "Paris"}

# the same answer as a stream, fed in two arbitrary pieces
t = Translator(client="anthropic", provider="openai", model="gpt-4.1", stream=True)
t.request(client_body)
provider_sse = b"".join(b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in [
    {"id": "c1", "model": "gpt-4.1", "choices": [{"index": 0, "delta": {"role": "assistant",
                                                                         "content": "Sunny, "}}]},
    {"id": "c1", "model": "gpt-4.1", "choices": [{"index": 0, "delta": {"content": "21 °C."}}]},
    {"id": "c1", "model": "gpt-4.1", "choices": [{"index": 0, "delta": {},
                                                  "finish_reason": "stop"}]},
    {"id": "c1", "model": "gpt-4.1", "choices": [],
     "usage": {"prompt_tokens": 50, "completion_tokens": 6, "total_tokens": 56}},
]) + b"data: [DONE]\n\n"
stream = t.stream()
cut = len(provider_sse) // 2
client_sse = stream.feed(provider_sse[:cut]) + stream.feed(provider_sse[cut:]) + stream.close()
print(client_sse.decode())
assert b"event: message_stop" in client_sse and "21 °C.".encode() in client_sse
print("ok")
