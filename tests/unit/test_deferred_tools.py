"""policy.resolve_deferred: deferred tools (Claude Code's MCP tools behind ToolSearch) for
providers that do not load them; pass-through to Anthropic leaves them alone."""
from __future__ import annotations

import copy

import orjson

from ferryllm import policy
from ferryllm.config import Config, ProviderConfig
from ferryllm.ir import (Message, Request, TextBlock, Tool, ToolReferenceBlock, ToolResultBlock,
                         ToolUseBlock)
from ferryllm.protocols.anthropic import entry as anthropic_entry
from ferryllm.protocols.anthropic.adapter import AnthropicAdapter
from ferryllm.protocols.openai.adapter import OpenAIAdapter
from ferryllm.toolnames import shorten

OPENAI = ProviderConfig(name="oai", type="openai", base_url="http://127.0.0.1:1", api_key="k")
ANTHROPIC = ProviderConfig(name="ant", type="anthropic", base_url="http://127.0.0.1:2",
                           api_key="k")
CFG = Config(providers=(OPENAI, ANTHROPIC))
LONG = "mcp__a_server_with_a_rather_long_name__and_a_tool_whose_name_is_long_too"
SCHEMA = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
          "properties": {"ferry": {"type": "string"}}, "required": ["ferry"]}


def body(turn: int) -> dict:
    """Claude Code with tool search: the placeholder, then the found tool declared deferred."""
    tools = [{"name": "Bash", "input_schema": {"type": "object"}},
             {"name": "ToolSearch", "input_schema": {"type": "object"}},
             {"name": "DeferredToolPlaceholder", "defer_loading": True,
              "input_schema": {"type": "object", "properties": {}}},
             {"name": "mcp__ferry__other", "defer_loading": True, "description": "unused",
              "input_schema": {"type": "object"}}]
    messages = [{"role": "user", "content": "where is the Nordlys?"}]
    if turn >= 1:
        tools += [{"name": "mcp__ferry__berth", "description": "Find a berth",
                   "input_schema": SCHEMA, "defer_loading": True},
                  {"name": LONG, "description": "long", "input_schema": {"type": "object"},
                   "defer_loading": True}]
        messages += [
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "ToolSearch",
                                               "input": {"query": "select:mcp__ferry__berth"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": [
                    {"type": "tool_reference", "tool_name": "mcp__ferry__berth"},
                    {"type": "tool_reference", "tool_name": LONG}]},
                {"type": "text", "text": "Tool loaded."}]}]
    if turn >= 2:
        messages += [
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t2",
                                               "name": "mcp__ferry__berth",
                                               "input": {"ferry": "Nordlys"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t2",
                                          "content": "berth 17"}]}]
    return {"model": "m", "max_tokens": 100, "stream": True, "messages": messages, "tools": tools}


def openai_body(turn: int) -> tuple[bytes, dict]:
    req = policy.apply(anthropic_entry.decode_request(body(turn), {}), CFG, OPENAI)
    raw = OpenAIAdapter(OPENAI).encode_request(req)
    return raw, orjson.loads(raw)


def test_placeholder_and_unreferenced_deferred_tools_not_sent():
    raw, sent = openai_body(0)
    assert [t["function"]["name"] for t in sent["tools"]] == ["Bash", "ToolSearch"]
    assert b"defer_loading" not in raw and b"Placeholder" not in raw


def test_referenced_deferred_tool_sent_and_reference_becomes_its_definition():
    raw, sent = openai_body(1)
    names = [t["function"]["name"] for t in sent["tools"]]
    assert names == ["Bash", "ToolSearch", "mcp__ferry__berth", shorten(LONG)]
    berth = sent["tools"][2]["function"]
    assert berth["parameters"] == {"type": "object", "properties": {"ferry": {"type": "string"}},
                                   "required": ["ferry"]}  # cleaned like every tool
    tool_msg = next(m for m in sent["messages"] if m["role"] == "tool")
    text = tool_msg["content"]
    assert text.startswith("<functions>\n<function>") and text.endswith("</function>\n</functions>")
    first = orjson.loads(text.split("<function>")[1].split("</function>")[0])
    assert first == {"description": "Find a berth", "name": "mcp__ferry__berth",
                     "parameters": berth["parameters"]}
    second = orjson.loads(text.split("<function>")[2].split("</function>")[0])
    assert second["name"] == shorten(LONG) != LONG  # the name the provider knows it by
    assert sent["messages"][-1] == {"role": "user", "content": "Tool loaded."}
    assert b"tool_reference" not in raw


def test_turns_are_byte_stable_and_cache_key_survives_a_tool_load():
    raw1, sent1 = openai_body(1)
    raw2, sent2 = openai_body(2)
    end = raw1.index(b'],"tools":')
    assert raw2[:end] == raw1[:end]
    assert sent1["tools"] == sent2["tools"]
    assert openai_body(1)[0] == raw1  # the same turn gives the same bytes
    assert openai_body(0)[1]["prompt_cache_key"] == sent1["prompt_cache_key"]


def test_client_request_untouched():
    req = anthropic_entry.decode_request(body(2), {})
    before = copy.deepcopy(req)
    policy.apply(req, CFG, OPENAI)
    assert req == before


def test_anthropic_pass_through_keeps_deferral():
    client = body(1)
    req = policy.apply(anthropic_entry.decode_request(client, {}), CFG, ANTHROPIC)
    sent = orjson.loads(AnthropicAdapter(ANTHROPIC).encode_request(req))
    assert sent["tools"] == client["tools"]
    assert sent["messages"] == client["messages"]


def test_anthropic_from_ir_gets_resolved_tools():
    """An IR body (not pass-through) to an Anthropic provider: resolved like any provider."""
    req = anthropic_entry.decode_request(body(1), {})
    req.native = req.native_protocol = None
    sent = orjson.loads(AnthropicAdapter(ANTHROPIC).encode_request(policy.apply(req, CFG, ANTHROPIC)))
    assert [t["name"] for t in sent["tools"]] == ["Bash", "ToolSearch", "mcp__ferry__berth", LONG]
    assert "defer_loading" not in orjson.dumps(sent).decode()
    result = sent["messages"][2]["content"][0]
    assert result["content"][0]["text"].startswith("<functions>")


def test_nothing_deferred_is_the_same_request():
    req = Request(model="m", messages=[Message("user", [TextBlock("hi")])],
                  tools=[Tool("Bash", None, {"type": "object"})])
    assert policy.resolve_deferred(req) is req


def test_reference_to_an_undeclared_tool_is_said_so():
    req = Request(model="m", messages=[
        Message("assistant", [ToolUseBlock("t", "ToolSearch", {})]),
        Message("user", [ToolResultBlock("t", [ToolReferenceBlock("gone")])])])
    out = policy.resolve_deferred(req)
    text = out.messages[1].content[0].content[0].text
    assert '"name":"gone"' in text and "not declared" in text


def test_local_count_tokens_counts_what_a_provider_sees():
    from ferryllm.tokens import count_tokens
    req = anthropic_entry.decode_request(body(0), {})
    assert count_tokens(policy.resolve_deferred(req)) < count_tokens(req)
