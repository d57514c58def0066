"""The Anthropic SDK (Claude Code's path) and the OpenAI SDK through ferryllm to the Gemini mock,
which rejects what the real API rejects: a two-turn tool conversation on a Gemini 3 model, whose
second turn must carry the first turn's thought signature on the call it came with."""
from __future__ import annotations

import json

import pytest

from tests.conftest import make_config
from tests.mock_gemini import SKIP_SIGNATURES, GeminiMock, Turn, calls, text

TOOL = {"name": "get_weather", "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"location": {"type": "string"}},
                         "required": ["location"]}}
MODEL = "gemini-3-pro-preview"


async def base_for(gateway, provider, mock: GeminiMock) -> str:
    url = await provider(mock)
    return await gateway(make_config({"gem": ("gemini", url)}))


def replayed_call(mock: GeminiMock, turn: int) -> dict:
    contents = mock.generations[turn].json["contents"]
    model = [c for c in contents if c["role"] == "model"][-1]
    return next(p for p in model["parts"] if "functionCall" in p)


@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_sdk_two_turn_tool_conversation_replays_the_signature(
        gateway, provider, sdk, stream):
    mock = GeminiMock().then(
        Turn(parts=[{"text": "Let me check."},
                    {"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}}],
             thought="The user wants the weather.", thoughts_tokens=5),
        text("Sunny, 22 degrees."))
    client = sdk.anthropic(await base_for(gateway, provider, mock))
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    kw = dict(model=MODEL, max_tokens=1024, tools=[TOOL], messages=messages,
              thinking={"type": "enabled", "budget_tokens": 2048})
    if stream:
        async with client.messages.stream(**kw) as s:
            first = await s.get_final_message()
    else:
        first = await client.messages.create(**kw)
    assert first.stop_reason == "tool_use"
    kinds = [b.type for b in first.content]
    assert kinds == ["thinking", "text", "thinking", "tool_use"]
    assert first.content[0].thinking == "The user wants the weather."
    assert first.content[2].signature.startswith("gemini:")  # a carrier for the call's signature
    call = first.content[3]
    assert (call.name, call.input) == ("get_weather", {"location": "Paris"})
    issued = replayed_signature = first.content[2].signature.removeprefix("gemini:")
    assert issued in mock.issued

    messages += [{"role": "assistant", "content": [b.model_dump(exclude_none=True)
                                                   for b in first.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                               "content": "sunny, 22"}]}]
    second = await client.messages.create(**{**kw, "messages": messages})
    assert "".join(b.text for b in second.content if b.type == "text") == "Sunny, 22 degrees."
    assert mock.rejected == []
    part = replayed_call(mock, 1)
    assert part["thoughtSignature"] == replayed_signature  # on the part it came from
    assert part["functionCall"] == {"id": call.id, "name": "get_weather",
                                    "args": {"location": "Paris"}}
    answer = mock.generations[1].json["contents"][-1]["parts"]
    assert answer == [{"functionResponse": {"id": call.id, "name": "get_weather",
                                            "response": {"output": "sunny, 22"}}}]
    config = mock.generations[0].json["generationConfig"]
    assert config["thinkingConfig"] == {"includeThoughts": True, "thinkingLevel": "low"}


async def test_a_dropped_signature_is_rejected_by_the_mock_and_replaced_by_the_gateway(
        gateway, provider, sdk):
    """Without the carrier block (a client that drops thinking), the call goes back with
    `skip_thought_signature_validator`, which the real API accepts."""
    mock = GeminiMock().then(calls(("get_weather", {"location": "Oslo"})), text("Rain."))
    client = sdk.anthropic(await base_for(gateway, provider, mock))
    messages = [{"role": "user", "content": "Weather in Oslo?"}]
    first = await client.messages.create(model=MODEL, max_tokens=512, tools=[TOOL],
                                         messages=messages)
    call = first.content[-1]
    messages += [{"role": "assistant", "content": [call.model_dump(exclude_none=True)]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                               "content": "rain"}]}]
    second = await client.messages.create(model=MODEL, max_tokens=512, tools=[TOOL],
                                          messages=messages)
    assert second.content[-1].text == "Rain."
    assert replayed_call(mock, 1)["thoughtSignature"] in SKIP_SIGNATURES
    assert mock.rejected == []


@pytest.mark.parametrize("stream", [False, True])
async def test_openai_sdk_two_turn_tool_conversation(gateway, provider, sdk, stream):
    mock = GeminiMock().then(calls(("get_weather", {"location": "Paris"}),
                                   ("get_weather", {"location": "Oslo"})),
                             text("Sunny in Paris, rain in Oslo."))
    client = sdk.openai(await base_for(gateway, provider, mock))
    tools = [{"type": "function", "function": {"name": TOOL["name"],
                                               "description": TOOL["description"],
                                               "parameters": TOOL["input_schema"]}}]
    messages = [{"role": "user", "content": "Weather in Paris and Oslo?"}]
    if stream:
        calls_by_index: dict[int, dict] = {}
        finish = None
        async for chunk in await client.chat.completions.create(
                model=MODEL, messages=messages, tools=tools, stream=True):
            for choice in chunk.choices:
                finish = choice.finish_reason or finish
                for tc in choice.delta.tool_calls or []:
                    slot = calls_by_index.setdefault(tc.index, {"id": "", "name": "", "args": ""})
                    slot["id"] += tc.id or ""
                    slot["name"] += (tc.function.name or "") if tc.function else ""
                    slot["args"] += (tc.function.arguments or "") if tc.function else ""
        got = [calls_by_index[i] for i in sorted(calls_by_index)]
    else:
        out = await client.chat.completions.create(model=MODEL, messages=messages, tools=tools)
        finish = out.choices[0].finish_reason
        got = [{"id": c.id, "name": c.function.name, "args": c.function.arguments}
               for c in out.choices[0].message.tool_calls]
    assert finish == "tool_calls"
    assert [json.loads(c["args"]) for c in got] == [{"location": "Paris"}, {"location": "Oslo"}]
    messages.append({"role": "assistant", "content": None, "tool_calls": [
        {"id": c["id"], "type": "function",
         "function": {"name": c["name"], "arguments": c["args"]}} for c in got]})
    messages += [{"role": "tool", "tool_call_id": c["id"], "content": f"weather {i}"}
                 for i, c in enumerate(got)]
    second = await client.chat.completions.create(model=MODEL, messages=messages, tools=tools)
    assert second.choices[0].message.content == "Sunny in Paris, rain in Oslo."
    assert mock.rejected == []
    contents = mock.generations[1].json["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert [p["functionResponse"]["id"] for p in contents[2]["parts"]] == [c["id"] for c in got]


async def test_openai_sdk_usage_and_finish_from_the_gemini_mock(gateway, provider, sdk):
    mock = GeminiMock().then(Turn(parts=[{"text": "Short."}], finish="MAX_TOKENS",
                                  prompt_tokens=40, output_tokens=3, cached_tokens=10,
                                  thoughts_tokens=7))
    client = sdk.openai(await base_for(gateway, provider, mock))
    out = await client.chat.completions.create(model="gemini-2.5-flash",
                                               messages=[{"role": "user", "content": "hi"}])
    assert out.choices[0].finish_reason == "length"
    assert out.usage.prompt_tokens == 40
    assert out.usage.prompt_tokens_details.cached_tokens == 10
    assert out.usage.completion_tokens == 10  # candidates + thoughts


async def test_responses_client_codex_path_replays_the_signature(gateway, provider, sdk):
    """Codex's path (the Responses API, `include: reasoning.encrypted_content`, stateless): the
    call's signature rides in a reasoning item's encrypted content and comes back on the call."""
    mock = GeminiMock().then(calls(("get_weather", {"location": "Paris"})), text("Sunny."))
    client = sdk.openai(await base_for(gateway, provider, mock))
    tools = [{"type": "function", "name": TOOL["name"], "description": TOOL["description"],
              "parameters": TOOL["input_schema"], "strict": False}]
    items: list = [{"role": "user", "content": "Weather in Paris?"}]
    kw = dict(model=MODEL, tools=tools, store=False, include=["reasoning.encrypted_content"],
              reasoning={"effort": "low"})
    first = await client.responses.create(input=items, **kw)
    call = next(i for i in first.output if i.type == "function_call")
    assert (call.name, json.loads(call.arguments)) == ("get_weather", {"location": "Paris"})
    items += [i.model_dump(exclude_none=True) for i in first.output]
    items.append({"type": "function_call_output", "call_id": call.call_id, "output": "sunny"})
    second = await client.responses.create(input=items, **kw)
    assert second.output_text == "Sunny."
    assert mock.rejected == []
    part = replayed_call(mock, 1)
    assert part["thoughtSignature"] in {s for s in mock.issued}  # the real one, not the skip
