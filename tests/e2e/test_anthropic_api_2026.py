"""Anthropic API 2026-10-21 and SDK 2.x: the client's version passes through (with its key as
`Authorization: Bearer`), a body ferryllm builds carries the provider's `anthropic_version` and
only what that version accepts, and the new answer parts reach an OpenAI client."""
from __future__ import annotations

from dataclasses import replace

import anthropic
import orjson

from ferryllm.config import AuthConfig
from tests.conftest import make_config
from tests.mockprovider import MockProvider, Reply, sse_frames
from tests.streamsummary import FIXTURES

ANSWER = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
          "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn",
          "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 1}}


async def test_sdk_2_version_and_bearer_key_pass_through(gateway, provider, sdk):
    mock = MockProvider(Reply(body=ANSWER))
    url = await provider(mock)
    config = replace(make_config({"ant": ("anthropic", url)}),
                     auth=AuthConfig(enabled=True, keys=("client-secret",)))
    client = sdk.anthropic(await gateway(config), api_key="client-secret")
    out = await client.messages.create(model="claude-x", max_tokens=10,
                                       messages=[{"role": "user", "content": "hi"}])
    assert out.content[0].text == "ok"
    got = mock.received[0]
    assert anthropic.__version__.startswith("2.")
    assert got.headers["anthropic-version"] == "2026-10-21"  # the SDK's, forwarded
    assert got.headers["x-api-key"] == "sk-provider-ant"  # the gateway's key, never the client's
    assert "client-secret" not in str(got.headers)


async def test_sdk_2_body_with_removed_fields_is_cleaned_on_pass_through(gateway, provider, sdk):
    mock = MockProvider(Reply(body=ANSWER))
    client = sdk.anthropic(await gateway(make_config({"ant": ("anthropic", await provider(mock))})))
    await client.messages.create(
        model="claude-x", max_tokens=10, extra_body={"temperature": 0.2, "top_k": 5},
        messages=[{"role": "user", "content": [{"type": "text", "text": "q", "citations": [
                      {"type": "char_location", "cited_text": "x", "document_index": 0,
                       "start_char_index": 0, "end_char_index": 1}]}]},
                  {"role": "assistant", "content": [
                      {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                                      "data": "d"}},
                      {"type": "text", "text": "a"}]},
                  {"role": "user", "content": "more"}])
    sent = mock.received[0].json
    assert not {"temperature", "top_p", "top_k"} & set(sent)
    assert sent["messages"][0]["content"] == [{"type": "text", "text": "q"}]
    assert sent["messages"][1]["content"] == [{"type": "text", "text": "a"}]


async def test_ir_body_gets_the_providers_version_and_only_its_fields(gateway, provider, sdk):
    mock = MockProvider(Reply(body=ANSWER))
    config = make_config({"ant": ("anthropic", await provider(mock))})
    config = replace(config, providers=tuple(replace(p, anthropic_version="2026-10-21")
                                             for p in config.providers))
    client = sdk.openai(await gateway(config))
    await client.chat.completions.create(model="m", temperature=0.3, top_p=0.9, max_tokens=20,
                                         messages=[{"role": "user", "content": "hi"}])
    got = mock.received[0]
    assert got.headers["anthropic-version"] == "2026-10-21"
    assert not {"temperature", "top_p", "top_k"} & set(got.json)
    # the default version keeps them
    mock2 = MockProvider(Reply(body=ANSWER))
    client2 = sdk.openai(await gateway(make_config({"ant": ("anthropic", await provider(mock2))})))
    await client2.chat.completions.create(model="m", temperature=0.3, max_tokens=20,
                                          messages=[{"role": "user", "content": "hi"}])
    assert mock2.received[0].headers["anthropic-version"] == "2023-06-01"
    assert mock2.received[0].json["temperature"] == 0.3


async def test_new_answer_parts_reach_an_openai_stream(gateway, provider, sdk):
    frames = sse_frames((FIXTURES / "anthropic" / "api_2026_answer_parts.sse").read_text())
    mock = MockProvider(Reply(chunks=frames))
    client = sdk.openai(await gateway(make_config({"ant": ("anthropic", await provider(mock))})))
    stream = await client.chat.completions.create(
        model="m", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "hi"}])
    chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    refusal = "".join(getattr(c.choices[0].delta, "refusal", None) or ""
                      for c in chunks if c.choices)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert text == "I can't help with that."  # the compaction block between is skipped
    assert refusal == "refused (cyber)" and finish == ["content_filter"]
    usage = chunks[-1].usage
    assert usage.completion_tokens == 40
    assert usage.completion_tokens_details.reasoning_tokens == 25
    assert usage.prompt_tokens == 12 + 3000
    assert usage.prompt_tokens_details.cache_write_tokens == 3000


async def test_new_answer_parts_reach_an_openai_json_answer(gateway, provider, sdk):
    mock = MockProvider(Reply(body={
        **ANSWER, "stop_reason": "refusal",
        "stop_details": {"type": "refusal", "category": "bio", "explanation": "Not this."},
        "usage": {"input_tokens": 5, "output_tokens": 9, "cache_creation_input_tokens": 7,
                  "cache_creation": {"ephemeral_5m_input_tokens": 0,
                                     "ephemeral_1h_input_tokens": 7},
                  "output_tokens_details": {"thinking_tokens": 4}}}))
    client = sdk.openai(await gateway(make_config({"ant": ("anthropic", await provider(mock))})))
    out = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert out.choices[0].finish_reason == "content_filter"
    assert out.choices[0].message.refusal == "Not this."
    assert out.usage.completion_tokens_details.reasoning_tokens == 4
    mock2 = MockProvider(Reply(body={**ANSWER, "stop_reason": "model_context_window_exceeded"}))
    client2 = sdk.openai(await gateway(make_config({"ant": ("anthropic", await provider(mock2))})))
    out2 = await client2.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert out2.choices[0].finish_reason == "length"
