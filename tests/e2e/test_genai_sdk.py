"""The official google-genai SDK (automatic function calling off) through ferryllm's Gemini entry:
to OpenAI-compatible and Anthropic mocks (every complete recorded stream) and to the Gemini mock
(pass-through: the SDK gets what the mock sent)."""
from __future__ import annotations

import json

import pytest
from google import genai
from google.genai import errors, types

from tests.conftest import make_config
from tests.mock_gemini import GeminiMock, Turn, calls, text
from tests.mockprovider import MockProvider, Reply, sse_frames
from tests.streamsummary import FIXTURES, fixture_names, summarise

WEATHER = types.FunctionDeclaration(
    name="get_weather", description="Weather for a city",
    parameters=types.Schema(type=types.Type.OBJECT, required=["location"], properties={
        "location": types.Schema(type=types.Type.STRING)}))
# a name a strict backend rejects: shortened upstream, the client's own name back
LONG = types.FunctionDeclaration(
    name="mcp__github.com__create_or_update_file_contents_in_repository_branch",
    parameters_json_schema={"type": "object", "properties": {"path": {"type": "string"}}})
TOOLS_CONFIG = types.GenerateContentConfig(
    tools=[types.Tool(function_declarations=[WEATHER, LONG])],
    automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    system_instruction="Be brief.", max_output_tokens=200,
    thinking_config=types.ThinkingConfig(include_thoughts=True))


# google-genai's async client subclasses aiohttp.ClientSession (its transport when aiohttp is
# installed, as here), which aiohttp warns about
pytestmark = pytest.mark.filterwarnings(
    "ignore:Inheritance class AiohttpClientSession:DeprecationWarning")
_open: list = []


def client(base: str, version: str = "v1beta") -> genai.Client:
    options = types.HttpOptions(base_url=base, api_version=version)
    made = genai.Client(api_key="client-key", http_options=options)
    _open.append(made)
    return made


@pytest.fixture(autouse=True)
async def _close_clients():
    yield
    while _open:
        await _open.pop().aio.aclose()


async def gateway_to(gateway, provider, kind: str, mock) -> str:
    url = await provider(mock)
    return await gateway(make_config({"up": (kind, url)}, [{"match": "gemini-", "provider": "up",
                                                          "rewrite_model": "backend-model"}]))


def stream_reply(kind: str, name: str) -> Reply:
    return Reply(chunks=sse_frames((FIXTURES / kind / f"{name}.sse").read_text(encoding="utf-8")))


def complete(kind: str) -> list[str]:
    return [n for n in fixture_names(kind) if summarise(kind, n).complete]


def calls_of(chunks) -> list[tuple[str, str, dict]]:
    return [(p.function_call.id, p.function_call.name, p.function_call.args)
            for c in chunks for p in (c.candidates[0].content.parts or [])
            if c.candidates and c.candidates[0].content and p.function_call]


def _args(raw: str) -> dict:
    """What a Gemini client gets for streamed arguments: the object, or (cut short) the raw text."""
    try:
        return json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        return {"_raw": raw}


FINISH = {"end_turn": "STOP", "tool_use": "STOP", "stop_sequence": "STOP",
          "max_tokens": "MAX_TOKENS", "refusal": "SAFETY",
          "model_context_window_exceeded": "MAX_TOKENS"}


@pytest.mark.parametrize("version", ["v1beta", "v1"])
async def test_generate_content_from_openai_provider(gateway, provider, version):
    mock = MockProvider(Reply(body={
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "backend-model",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Checking.", "tool_calls": [{
                "id": "call_1", "type": "function", "function": {
                    "name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}}]}}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 9, "total_tokens": 59,
                  "prompt_tokens_details": {"cached_tokens": 20}}}))
    base = await gateway_to(gateway, provider, "openai", mock)
    out = await client(base, version).aio.models.generate_content(
        model="gemini-2.5-flash", contents="Weather in Paris?", config=TOOLS_CONFIG)
    assert out.text == "Checking."
    call = out.function_calls[0]
    assert (call.id, call.name, call.args) == ("call_1", "get_weather", {"location": "Paris"})
    assert out.candidates[0].finish_reason == types.FinishReason.STOP
    u = out.usage_metadata
    assert (u.prompt_token_count, u.cached_content_token_count, u.candidates_token_count,
            u.total_token_count) == (50, 20, 9, 59)
    assert out.model_version == "gemini-2.5-flash"
    sent = mock.received[0].json
    assert sent["model"] == "backend-model"
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent["tools"][0]["function"]["parameters"] == {
        "type": "object", "required": ["location"], "properties": {"location": {"type": "string"}}}


@pytest.mark.parametrize("kind,name", [("openai", n) for n in complete("openai")]
                         + [("anthropic", n) for n in complete("anthropic")])
async def test_stream_fixture_through_genai(gateway, provider, kind, name):
    want = summarise(kind, name)
    base = await gateway_to(gateway, provider, kind, MockProvider(stream_reply(kind, name)))
    chunks = [c async for c in await client(base).aio.models.generate_content_stream(
        model="gemini-2.5-pro", contents="Weather in Paris?", config=TOOLS_CONFIG)]
    texts = "".join(p.text for c in chunks if c.candidates and c.candidates[0].content
                    for p in c.candidates[0].content.parts or [] if p.text and not p.thought)
    thoughts = "".join(p.text for c in chunks if c.candidates and c.candidates[0].content
                       for p in c.candidates[0].content.parts or [] if p.text and p.thought)
    assert texts == want.text
    assert thoughts == want.thinking
    got = calls_of(chunks)
    assert [(i, n) for i, n, _ in got] == [(i, n) for i, n, _ in want.tools]
    for (_, _, args), (_, _, raw) in zip(got, want.tools):
        assert args == _args(raw)
    last = chunks[-1]
    assert last.candidates[0].finish_reason.value == FINISH[want.stop_reason]
    usage = want.usage
    prompt = (usage["input_tokens"] + usage["cache_read_input_tokens"]
              + usage["cache_creation_input_tokens"])
    assert last.usage_metadata.prompt_token_count == prompt
    assert last.usage_metadata.candidates_token_count == usage["output_tokens"]
    assert last.usage_metadata.total_token_count == prompt + usage["output_tokens"]


async def test_count_tokens_is_local_for_an_openai_provider(gateway, provider):
    mock = MockProvider()
    base = await gateway_to(gateway, provider, "openai", mock)
    out = await client(base).aio.models.count_tokens(
        model="gemini-2.5-flash", contents="How many tokens is this sentence?")
    assert 5 <= out.total_tokens <= 20
    assert mock.received == []  # never a generation


async def test_count_tokens_asks_a_gemini_provider(gateway, provider):
    mock = GeminiMock()
    base = await gateway_to(gateway, provider, "gemini", mock)
    out = await client(base, "v1").aio.models.count_tokens(
        model="gemini-2.5-flash", contents="How many tokens is this sentence?")
    assert out.total_tokens > 0
    assert [r.method_name for r in mock.received] == ["countTokens"]
    assert mock.received[0].path == "/v1beta/models/backend-model:countTokens"
    assert mock.generations == []


async def test_errors_are_googles_and_the_sdk_raises_them(gateway, provider):
    mock = MockProvider(Reply(status=429, body={"error": {"message": "slow down",
                                                          "type": "rate_limit_error"}},
                              headers={"retry-after": "3"}))
    base = await gateway_to(gateway, provider, "openai", mock)
    with pytest.raises(errors.ClientError) as info:
        await client(base).aio.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert info.value.code == 429 and info.value.status == "RESOURCE_EXHAUSTED"
    with pytest.raises(errors.ClientError) as info:
        await client(base).aio.models.generate_content(model="other-model", contents="hi")
    assert info.value.code == 404 and info.value.status == "NOT_FOUND"
    with pytest.raises(errors.ClientError) as info:
        await client(base).aio.models.generate_content(
            model="gemini-2.5-flash", contents="hi",
            config=types.GenerateContentConfig(candidate_count=2))
    assert info.value.code == 400 and "candidateCount" in info.value.message


async def test_error_mid_stream_is_one_inband_frame(gateway, provider):
    frames = sse_frames((FIXTURES / "openai" / "error_inband.sse").read_text(encoding="utf-8"))
    base = await gateway_to(gateway, provider, "openai", MockProvider(Reply(chunks=frames)))
    got = []
    with pytest.raises(errors.APIError) as info:
        async for chunk in await client(base).aio.models.generate_content_stream(
                model="gemini-2.5-flash", contents="hi"):
            got.append(chunk)
    assert info.value.code >= 400


# ---------------------------------------------------------------- Gemini provider (pass-through)


def parts_of(turn: Turn) -> list[dict]:
    return turn.parts


async def test_stream_from_gemini_mock_is_what_the_mock_sent(gateway, provider):
    mock = GeminiMock().then(Turn(parts=[{"text": "Paris is sunny and 22 degrees today."}],
                                  thought="Let me think about Paris.", thoughts_tokens=12))
    base = await gateway_to(gateway, provider, "gemini", mock)
    config = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(
        include_thoughts=True, thinking_budget=1024))
    chunks = [c async for c in await client(base).aio.models.generate_content_stream(
        model="gemini-2.5-flash", contents="Weather in Paris?", config=config)]
    sent = mock.received[0]
    assert sent.path == "/v1beta/models/backend-model:streamGenerateContent"
    assert sent.query == {"alt": "sse"} and sent.headers["x-goog-api-key"] == "sk-provider-up"
    # the client's body goes on as it came: google-genai writes thinking_config's fields in
    # snake_case
    assert sent.json["generationConfig"]["thinkingConfig"] == {
        "include_thoughts": True, "thinking_budget": 1024}
    dumped = [c.model_dump(mode="json", exclude_none=True) for c in chunks]
    raw = [d for d in (c.get("sdk_http_response") for c in dumped)]
    assert all(r is not None for r in raw)
    text = "".join(p.text for c in chunks for p in c.candidates[0].content.parts or []
                   if p.text and not p.thought)
    thought = "".join(p.text for c in chunks for p in c.candidates[0].content.parts or []
                      if p.thought)
    assert text == "Paris is sunny and 22 degrees today."
    assert thought == "Let me think about Paris."
    last = chunks[-1]
    assert last.usage_metadata.thoughts_token_count == 12
    assert last.candidates[0].finish_reason == types.FinishReason.STOP
    signed = [p for c in chunks for p in c.candidates[0].content.parts or [] if p.thought_signature]
    assert len(signed) == 1  # the mock's signature came through untouched (bytes, base64-decoded)
    assert any(p.thought_signature == __import__("base64").b64decode(s)
               for p in signed for s in mock.issued)


async def test_function_calling_round_trip_with_a_gemini_3_provider(gateway, provider):
    mock = GeminiMock().then(calls(("get_weather", {"location": "Paris"}),
                                   ("get_weather", {"location": "Oslo"})),
                             text("Sunny in Paris, rain in Oslo."))
    base = await gateway_to(gateway, provider, "gemini", mock)
    c = client(base)
    history = [types.Content(role="user", parts=[types.Part(text="Weather in Paris and Oslo?")])]
    first = await c.aio.models.generate_content(model="gemini-3-pro-preview", contents=history,
                                                config=TOOLS_CONFIG)
    assert [fc.args for fc in first.function_calls] == [{"location": "Paris"},
                                                       {"location": "Oslo"}]
    history.append(first.candidates[0].content)  # signature kept on the first call's part
    history.append(types.Content(role="user", parts=[
        types.Part.from_function_response(name=fc.name, response={"output": "sunny"})
        for fc in first.function_calls]))
    second = await c.aio.models.generate_content(model="gemini-3-pro-preview", contents=history,
                                                 config=TOOLS_CONFIG)
    assert second.text == "Sunny in Paris, rain in Oslo."
    assert mock.rejected == []
    replayed = mock.received[1].json["contents"][1]["parts"]
    assert replayed[0].get("thoughtSignature") or replayed[0].get("thought_signature")


async def test_keepalive_during_a_silent_provider_does_not_break_the_sdk(gateway, provider):
    frames = sse_frames((FIXTURES / "openai" / "openai_text.sse").read_text(encoding="utf-8"))
    mock = MockProvider(Reply(chunks=frames, delay=0.5))
    url = await provider(mock)
    base = await gateway(make_config({"up": ("openai", url)}, keepalive_interval_secs=0.1))
    import aiohttp
    async with aiohttp.ClientSession() as s:
        async with s.post(base + "/v1beta/models/gemini-x:streamGenerateContent?alt=sse",
                          json={"contents": [{"parts": [{"text": "hi"}]}]}) as r:
            raw = await r.read()
    assert raw.startswith(b"\r\n") and b"data: " in raw  # pings: empty lines, no comments
    mock.then(Reply(chunks=frames, delay=0.5))
    chunks = [c async for c in await client(base).aio.models.generate_content_stream(
        model="gemini-x", contents="hi")]
    assert "".join(c.text or "" for c in chunks) == summarise("openai", "openai_text").text


# ---------------------------------------------------------------- Anthropic's signed thinking


def without_thoughts(content: types.Content) -> types.Content:
    """What the Gemini CLI keeps of a model turn: every part but the thought parts."""
    return types.Content(role="model", parts=[p for p in content.parts if not p.thought])


async def test_anthropic_thinking_comes_back_signed_through_a_gemini_client(gateway, provider):
    """A Gemini client drops thought parts but keeps the signature on the next part: the
    envelope brings Anthropic its signed thinking back in the tool loop, before its tool_use."""
    signature = "EqQBCgIYAhIM1gbcDa9GJwZA2b3h+/Gg=="
    mock = MockProvider().then(Reply(body={
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [{"type": "thinking", "thinking": "Paris first.", "signature": signature},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                     "input": {"location": "Paris"}}],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5}}), Reply(body={
        "id": "msg_2", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [{"type": "text", "text": "Sunny."}], "stop_reason": "end_turn",
        "stop_sequence": None, "usage": {"input_tokens": 20, "output_tokens": 2}}))
    base = await gateway_to(gateway, provider, "anthropic", mock)
    c = client(base)
    history = [types.Content(role="user", parts=[types.Part(text="Weather in Paris?")])]
    first = await c.aio.models.generate_content(model="gemini-2.5-pro", contents=history,
                                                config=TOOLS_CONFIG)
    parts = first.candidates[0].content.parts
    assert parts[0].thought and parts[0].text == "Paris first."
    assert parts[1].function_call.id == "toolu_1" and parts[1].thought_signature
    history.append(without_thoughts(first.candidates[0].content))
    history.append(types.Content(role="user", parts=[types.Part(function_response=types.FunctionResponse(
        id="toolu_1", name="get_weather", response={"output": "sunny"}))]))
    second = await c.aio.models.generate_content(model="gemini-2.5-pro", contents=history,
                                                 config=TOOLS_CONFIG)
    assert second.text == "Sunny."
    replay = mock.received[1].json["messages"]
    assert replay[1] == {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "Paris first.", "signature": signature},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
         "input": {"location": "Paris"}}]}
    assert replay[2]["content"][0]["tool_use_id"] == "toolu_1"
