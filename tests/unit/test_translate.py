"""The library's sans-IO translation (`ferryllm.translate`) between EVERY pair of registered
protocols: a request, a JSON answer and a stream (in every chunking) keep their text, tool calls
(ids, names, arguments) and stop reason. Each protocol's own pieces make the inputs: an adapter
encodes an IR request into that protocol's request body (what its clients send too), an entry
encodes IR answers into that protocol's answers (what its providers send too)."""
from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

import orjson
import pytest

from ferryllm import ir, protocols
from ferryllm.config import ProviderConfig
from ferryllm.protocols import CHAT
from ferryllm.translate import HttpView, Translator
from tests.chunking import chunkings

MODEL = "model-x"
CLIENTS = [p.name for p in protocols.entries()]
PROVIDERS = list(protocols.provider_types())
PAIRS = [(c, p) for c in CLIENTS if protocols.get(c).adapter for p in PROVIDERS]
WEATHER = ir.Tool("get_weather", "Current weather", {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})


def adapter(name: str):
    return protocols.get(name).adapter(ProviderConfig(name="p", type=name,
                                                      base_url="http://provider.invalid"))


def ir_request(stream: bool) -> ir.Request:
    return ir.Request(model=MODEL, max_tokens=256, stream=stream, tools=[WEATHER],
                      system=[ir.TextBlock("Be terse.")],
                      messages=[ir.Message("user", [ir.TextBlock("Weather in Paris? é 😀")])])


def client_body(client: str, stream: bool) -> dict:
    """What a client of `client` sends: that protocol's request body."""
    return orjson.loads(adapter(client).encode_request(ir_request(stream)))


# the client's request line: a protocol that names the model in the URL reads it here
CLIENT_HTTP = HttpView(match_info={"model": MODEL})


def path_params(route_path: str, url: str) -> dict[str, str]:
    """The `{name}` / `{name:regex}` parameters of an aiohttp route path, read from `url`."""
    pattern = re.sub(r"\{(\w+)(?::([^{}]*))?\}",
                     lambda m: f"(?P<{m[1]}>{m[2] or '[^/]+'})", route_path)
    found = re.fullmatch(pattern, urlsplit(url).path)
    return {k: unquote(v) for k, v in found.groupdict().items()} if found else {}


def decode_with_entry(name: str, body: bytes, url: str) -> ir.Request:
    """An upstream request as the provider protocol's own entry reads it (body and URL)."""
    route = next(r for r in protocols.get(name).entry.routes if r.kind == CHAT)
    params = path_params(route.path, url) or {"model": MODEL}
    return route.decode(orjson.loads(body), HttpView(match_info=params))


ANSWER = [ir.TextBlock("Let me look — ☀"),
          ir.ToolUseBlock("call_abc123", "get_weather", {"city": "Paris"})]
EVENTS = [ir.MessageStart("resp_1", MODEL, ir.Usage(input_tokens=12)),
          ir.TextStart(0), ir.TextDelta(0, "Let me look "), ir.TextDelta(0, "— ☀"),
          ir.BlockStop(0),
          ir.ToolUseStart(1, "call_abc123", "get_weather"), ir.ToolArgsDelta(1, '{"city":'),
          ir.ToolArgsDelta(1, '"Paris"}'), ir.BlockStop(1),
          ir.MessageDelta(ir.TOOL_USE, None, ir.Usage(input_tokens=12, output_tokens=7)),
          ir.MessageStop()]


def summary(events) -> tuple:
    text, tools, args, stop = "", [], {}, None
    for ev in events:
        match ev:
            case ir.TextDelta(text=t):
                text += t
            case ir.ToolUseStart(index=i, id=id_, name=name):
                tools.append((i, id_, name))
                args[i] = ""
            case ir.ToolArgsDelta(index=i, partial_json=p):
                args[i] += p
            case ir.MessageDelta(stop_reason=s):
                stop = s
    return text, [(id_, name, orjson.loads(args[i])) for i, id_, name in tools], stop


@pytest.mark.parametrize(("client", "provider"), PAIRS)
def test_request_keeps_messages_tools_and_model(client, provider):
    t = Translator(client=client, provider=provider, model="backend-y", http=CLIENT_HTTP)
    raw = t.request(client_body(client, stream=False))
    upstream = decode_with_entry(provider, raw, t.endpoint())
    assert upstream.model == "backend-y" and t.display_model == MODEL
    assert [b.text for m in upstream.messages for b in m.content] == ["Weather in Paris? é 😀"]
    assert [t.text for t in upstream.system] == ["Be terse."]
    assert [(tool.name, tool.input_schema["properties"]) for tool in upstream.tools] == [
        ("get_weather", {"city": {"type": "string"}})]


@pytest.mark.parametrize(("client", "provider"), PAIRS)
def test_json_answer_keeps_text_tool_calls_and_stop_reason(client, provider):
    t = Translator(client=client, provider=provider, http=CLIENT_HTTP)
    t.request(client_body(client, stream=False))
    resp = ir.Response("resp_1", MODEL, ANSWER, ir.TOOL_USE, usage=ir.Usage(12, 7))
    provider_json = protocols.get(provider).entry.encode_response(resp, MODEL, ir_request(False))
    answer = t.response(provider_json)
    back = adapter(client).decode_response(answer, ir_request(False))
    assert [b for b in back.content if isinstance(b, (ir.TextBlock, ir.ToolUseBlock))] == ANSWER
    assert back.stop_reason == ir.TOOL_USE


@pytest.mark.parametrize(("client", "provider"), PAIRS)
def test_stream_in_every_chunking_gives_one_answer(client, provider):
    req = ir_request(True)
    provider_bytes = protocols.get(provider).entry.stream_encoder(req, MODEL).encode(EVENTS)
    expected = ("Let me look — ☀", [("call_abc123", "get_weather", {"city": "Paris"})],
                ir.TOOL_USE)
    for chunks in chunkings(provider_bytes):
        t = Translator(client=client, provider=provider, stream=True, http=CLIENT_HTTP)
        t.request(client_body(client, stream=True))
        stream = t.stream()
        client_bytes = b"".join(stream.feed(c) for c in chunks) + stream.close()
        decoder = adapter(client).stream_decoder(req)
        events = [*decoder.feed(client_bytes), *decoder.close()]
        assert summary(events) == expected


def test_provider_error_mid_stream_becomes_the_clients_in_band_error():
    t = Translator(client="anthropic", provider="openai", stream=True)
    t.request(client_body("anthropic", stream=True))
    stream = t.stream()
    out = stream.feed(b'data: {"error":{"message":"overloaded","type":"server_error"}}\n\n')
    assert b"event: error" in out and b"overloaded" in out
    assert stream.feed(b"data: [DONE]\n\n") == b"" and stream.close() == b""


def test_unknown_protocols_and_order_of_calls_are_said_plainly():
    with pytest.raises(KeyError):
        Translator(client="nope", provider="openai")
    t = Translator(client="anthropic", provider="openai")
    with pytest.raises(RuntimeError, match="request"):
        t.stream()


def test_provider_error_answer_becomes_the_clients_error_body():
    t = Translator(client="anthropic", provider="openai")
    t.request(client_body("anthropic", stream=False))
    body = orjson.loads(t.error(429, b'{"error":{"message":"slow down","type":"rate_limit"}}',
                                {"retry-after": "3"}))
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    assert "slow down" in body["error"]["message"]
