"""Anthropic's server-side tool search on an OpenAI-compatible backend: the Anthropic SDK
declares `tool_search_tool_regex_20251119` (or bm25) and deferred tools; the provider sees a
search function, ferryllm runs the search when the provider calls it and continues the turn
with the found tool loaded; the SDK's accumulator shows `server_tool_use` and
`tool_search_tool_result` blocks, and they are accepted in the next turn's history."""
from __future__ import annotations

import orjson
import pytest

from tests.conftest import make_config
from tests.mockprovider import MockProvider, Reply

WEATHER = {"name": "get_weather", "description": "Current weather for a city",
           "input_schema": {"type": "object", "properties": {
               "city": {"type": "string", "description": "The city"}}, "required": ["city"]},
           "defer_loading": True}
DEFERRED = [WEATHER] + [
    {"name": f"crm_{what}", "description": f"Manage {what} records in the CRM",
     "input_schema": {"type": "object", "properties": {"id": {"type": "string"}}},
     "defer_loading": True} for what in ("contacts", "deals", "notes", "tasks")]
REGEX = {"type": "tool_search_tool_regex_20251119", "name": "tool_search_tool_regex"}
BM25 = {"type": "tool_search_tool_bm25_20251119", "name": "tool_search_tool_bm25"}
QUESTION = [{"role": "user", "content": "What is the weather in Oslo?"}]


def completion(message: dict, finish: str, prompt: int, completion_tokens: int) -> Reply:
    return Reply(body={
        "id": f"chatcmpl-{prompt}", "object": "chat.completion", "created": 1, "model": "backend",
        "choices": [{"index": 0, "message": {"role": "assistant", **message},
                     "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion_tokens,
                  "total_tokens": prompt + completion_tokens}})


def call(call_id: str, name: str, arguments: dict) -> dict:
    return {"content": None, "tool_calls": [{"id": call_id, "type": "function", "function": {
        "name": name, "arguments": orjson.dumps(arguments).decode()}}]}


def searching_provider(search_name: str, query: str) -> MockProvider:
    return MockProvider().then(
        completion(call("call_s1", search_name, {"query": query}), "tool_calls", 100, 10),
        completion(call("call_w1", "get_weather", {"city": "Oslo"}), "tool_calls", 180, 12),
        completion({"content": "It is 12 degrees in Oslo."}, "stop", 250, 9))


async def start(gateway, provider, sdk, mock):
    url = await provider(mock)
    return sdk.anthropic(await gateway(make_config({"oai": ("openai", url)})))


def function_names(body: dict) -> list[str]:
    return [t["function"]["name"] for t in body.get("tools") or ()]


@pytest.mark.parametrize(("tool", "query"), [(REGEX, "(?i)weather"), (BM25, "weather for a city")])
async def test_search_runs_in_ferryllm_and_the_sdk_sees_the_blocks(gateway, provider, sdk, tool, query):
    mock = searching_provider(tool["name"], query)
    client = await start(gateway, provider, sdk, mock)
    async with client.messages.stream(model="m", max_tokens=200, tools=[tool, *DEFERRED],
                                      messages=QUESTION) as stream:
        message = await stream.get_final_message()
    kinds = [b.type for b in message.content]
    assert kinds == ["server_tool_use", "tool_search_tool_result", "tool_use"]
    used, result, weather = message.content
    assert used.name == tool["name"] and used.input == {"query": query}
    assert result.tool_use_id == used.id
    assert [r.tool_name for r in result.content.tool_references][0] == "get_weather"
    assert (weather.name, weather.input) == ("get_weather", {"city": "Oslo"})
    assert message.stop_reason == "tool_use"
    assert message.usage.input_tokens == 100 + 180 and message.usage.output_tokens == 10 + 12

    first, second = (r.json for r in mock.received)
    assert function_names(first) == [tool["name"]]  # deferred tools stay out until found
    assert not first.get("stream") and not second.get("stream")
    assert "get_weather" in function_names(second)
    assert "crm_deals" not in function_names(second)
    search_result = next(m for m in second["messages"] if m["role"] == "tool")
    assert '"name":"get_weather"' in search_result["content"]

    # the next turn: the blocks come back in the history and are accepted
    history = [*QUESTION, {"role": "assistant", "content": [b.model_dump(exclude_none=True)
                                                            for b in message.content]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": weather.id,
                                             "content": "12 degrees"}]}]
    final = await client.messages.create(model="m", max_tokens=200, tools=[tool, *DEFERRED],
                                         messages=history)
    assert final.content[0].text == "It is 12 degrees in Oslo."
    third = mock.received[2].json
    assert "get_weather" in function_names(third)
    roles = [m["role"] for m in third["messages"]]
    assert roles == ["user", "assistant", "tool", "assistant", "tool"]
    assert third["messages"][1]["tool_calls"][0]["function"]["name"] == tool["name"]


async def test_json_answer_and_bounded_searches(gateway, provider, sdk):
    again = completion(call("call_s", "tool_search_tool_regex", {"query": "crm"}), "tool_calls",
                       10, 1)
    mock = MockProvider().then(again, again, again, again, again)
    client = await start(gateway, provider, sdk, mock)
    message = await client.messages.create(model="m", max_tokens=100, tools=[REGEX, *DEFERRED],
                                           messages=QUESTION)
    assert [b.type for b in message.content] == ["server_tool_use", "tool_search_tool_result"] * 3
    assert len(mock.received) == 4  # three searches answered, the fourth call dropped
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 40


async def test_invalid_pattern_is_a_tool_search_error(gateway, provider, sdk):
    mock = MockProvider().then(
        completion(call("call_s", "tool_search_tool_regex", {"query": "(unclosed"}),
                   "tool_calls", 10, 1),
        completion({"content": "No tool for that."}, "stop", 20, 3))
    client = await start(gateway, provider, sdk, mock)
    message = await client.messages.create(model="m", max_tokens=100, tools=[REGEX, *DEFERRED],
                                           messages=QUESTION)
    assert message.content[1].content.type == "tool_search_tool_result_error"
    assert message.content[1].content.error_code == "invalid_tool_input"
    assert message.content[2].text == "No tool for that."
