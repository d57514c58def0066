"""policy.apply: billing-header strip, stable prompt_cache_key, schema cleaning for OpenAI-compatible
providers, max_tokens cap, and the reasoning policy with the budget ↔ effort table."""
from __future__ import annotations

import copy
import time
from dataclasses import replace

import pytest

from ferryllm import policy
from ferryllm.config import Config, PromptCacheConfig, ProviderConfig, ServerConfig
from ferryllm.protocols.anthropic import entry as anthropic_entry
from ferryllm.ir import Message, Reasoning, Request, TextBlock, Tool
from ferryllm.ir import EFFORT_BUDGETS, budget_effort
from ferryllm.policy import apply, apply_reasoning_policy

OPENAI = ProviderConfig(name="oai", type="openai", base_url="http://127.0.0.1:1", api_key="k")
ANTHROPIC = ProviderConfig(name="ant", type="anthropic", base_url="http://127.0.0.1:2",
                           api_key="k")
BILLING = "x-anthropic-billing-header: cc_version=2.1.331.c27; cc_entrypoint=sdk-cli;"
BASH_SCHEMA = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
               "properties": {"command": {"type": "string", "description": "The command"}},
               "required": ["command"], "additionalProperties": False}


def claude_code_body(turn: int, version: str = "2.1.331.c27") -> dict:
    """What Claude Code 2.1.x sends (trimmed): billing line first, cache_control, 2020-12 tools."""
    messages = [{"role": "user", "content": [{"type": "text", "text": "run it"}]}]
    for i in range(turn):
        messages += [
            {"role": "assistant", "content": [{"type": "tool_use", "id": f"toolu_{i}",
                                                "name": "Bash", "input": {"command": "ls"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"toolu_{i}",
                                          "content": "a\nb", "cache_control": {"type": "ephemeral"}}]}]
    return {
        "model": "claude-opus-4-5", "max_tokens": 64000, "stream": True,
        "system": [
            {"type": "text", "text": f"x-anthropic-billing-header: cc_version={version}; "
                                     f"cc_entrypoint=sdk-cli;"},
            {"type": "text", "text": "You are a Claude agent.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Be careful.\nUse tools.", "cache_control": {"type": "ephemeral"}}],
        "tools": [{"name": "Bash", "description": "Executes a bash command.",
                   "input_schema": copy.deepcopy(BASH_SCHEMA)},
                  {"name": "Read", "description": "Reads a file.", "input_schema": {
                      "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
                      "properties": {"file_path": {"type": "string"}}, "required": ["file_path"],
                      "additionalProperties": False}}],
        "messages": messages,
        "metadata": {"user_id": '{"device_id":"abc","session_id":"s1"}'},
        "thinking": {"type": "adaptive"}, "output_config": {"effort": "medium"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    }


def decode(body: dict) -> Request:
    return anthropic_entry.decode_request(body, {"anthropic-version": "2023-06-01"})


def config(**server) -> Config:
    return Config(server=ServerConfig(**server), providers=(OPENAI, ANTHROPIC))


# ---------------------------------------------------------------- prompt cache


def test_billing_header_stripped_and_rest_kept():
    out = apply(decode(claude_code_body(0)), config(), OPENAI)
    assert [b.text for b in out.system] == ["You are a Claude agent.", "Be careful.\nUse tools."]


def test_billing_line_inside_a_block_stripped():
    req = Request(model="m", messages=[], system=[TextBlock(BILLING + "\nYou are helpful.")])
    assert [b.text for b in apply(req, config(), OPENAI).system] == ["You are helpful."]


def test_custom_prefixes_and_none():
    req = Request(model="m", messages=[], system=[TextBlock("date: today\nkeep")])
    cfg = replace(config(), prompt_cache=PromptCacheConfig(strip_system_prefixes=("date:",)))
    assert [b.text for b in apply(req, cfg, OPENAI).system] == ["keep"]
    cfg = replace(config(), prompt_cache=PromptCacheConfig(strip_system_prefixes=()))
    assert apply(req, cfg, OPENAI).system is req.system


def test_untouched_system_is_the_same_list():
    req = Request(model="m", messages=[], system=[TextBlock("a\nb"), TextBlock("c")])
    assert policy.strip_volatile_system(req.system, ("x-anthropic-billing-header:",)) is req.system


def test_consecutive_turns_share_key_system_and_tools():
    """Two turns of one session — even across a Claude Code upgrade that changes the billing
    line — produce the same system, the same cleaned tools and the same prompt_cache_key."""
    first = apply(decode(claude_code_body(0, "2.1.330.a1")), config(), OPENAI)
    second = apply(decode(claude_code_body(1, "2.1.331.c27")), config(), OPENAI)
    assert first.system == second.system
    assert first.tools == second.tools
    assert first.prompt_cache_key == second.prompt_cache_key
    assert len(first.prompt_cache_key) == policy.PROMPT_CACHE_KEY_LEN
    int(first.prompt_cache_key, 16)


def test_prompt_cache_key_is_a_pure_function_of_its_parts():
    key = policy.prompt_cache_key("oai", "gpt-4.1", b"t", b"s")
    assert key == policy.prompt_cache_key("oai", "gpt-4.1", b"t", b"s")
    # fixed value: stable across processes and releases (a changed key empties every cache)
    assert key == "94c8eaff158ed9bc76c51654a11d4a5c"
    others = {policy.prompt_cache_key(*p) for p in [("oai2", "gpt-4.1", b"t", b"s"),
                                                     ("oai", "gpt-4o", b"t", b"s"),
                                                     ("oai", "gpt-4.1", b"t2", b"s"),
                                                     ("oai", "gpt-4.1", b"t", b"s2"),
                                                     ("oa", "igpt-4.1", b"t", b"s")]}
    assert key not in others and len(others) == 5


@pytest.mark.parametrize("change", ["provider", "model", "tools", "system"])
def test_prompt_cache_key_changes_with_each_part(change):
    base = decode(claude_code_body(0))
    provider, req = OPENAI, base
    if change == "provider":
        provider = replace(OPENAI, name="other")
    elif change == "model":
        req = replace(base, model="gpt-4o")
    elif change == "tools":
        req = replace(base, tools=base.tools[:1])
    else:
        req = replace(base, system=base.system + [TextBlock("more")])
    assert apply(req, config(), provider).prompt_cache_key != \
        apply(base, config(), OPENAI).prompt_cache_key


def test_prompt_cache_key_only_for_openai_and_when_enabled():
    req = decode(claude_code_body(0))
    assert apply(req, config(), ANTHROPIC).prompt_cache_key is None
    off = replace(config(), prompt_cache=PromptCacheConfig(prompt_cache_key=False))
    assert apply(req, off, OPENAI).prompt_cache_key is None
    bare = Request(model="m", messages=[Message("user", [TextBlock("hi")])])
    assert apply(bare, config(), OPENAI).prompt_cache_key is None  # no shared prefix


def test_prompt_cache_key_is_stable_across_processes():
    import subprocess
    import sys
    code = ("from ferryllm.policy import prompt_cache_key;"
            "print(prompt_cache_key('oai', 'gpt-4.1', b'tools', b'system'))")
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=60, env={"PYTHONHASHSEED": seed, "PATH": ""}).stdout
            for seed in ("1", "2")}
    assert runs == {policy.prompt_cache_key("oai", "gpt-4.1", b"tools", b"system") + "\n"}


# ---------------------------------------------------------------- tools


def test_tools_cleaned_for_openai_only_and_input_untouched():
    req = decode(claude_code_body(0))
    out = apply(req, config(), OPENAI)
    assert all("$schema" not in t.input_schema for t in out.tools)
    assert out.tools[0].input_schema["additionalProperties"] is False
    assert all("$schema" in t.input_schema for t in req.tools)
    assert req.native["tools"][0]["input_schema"] == BASH_SCHEMA
    assert apply(req, config(), ANTHROPIC).tools is req.tools


def test_clean_tools_are_not_replaced():
    tools = [Tool("Read", "r", {"type": "object", "properties": {}})]
    req = Request(model="m", messages=[], tools=tools)
    assert apply(req, config(), OPENAI).tools is tools


def test_memo_gives_independent_lists():
    req = decode(claude_code_body(0))
    a = apply(req, config(), OPENAI).tools
    a.append(Tool("X", None, {}))
    assert len(apply(req, config(), OPENAI).tools) == 2


def test_repeated_claude_code_turns_are_cheap():
    req = decode(claude_code_body(3))
    cfg = config()
    apply(req, cfg, OPENAI)
    started = time.perf_counter()
    for _ in range(1000):
        apply(req, cfg, OPENAI)
    assert time.perf_counter() - started < 1.0  # ~tens of microseconds each


# ---------------------------------------------------------------- max_tokens


def test_max_tokens_capped_per_provider():
    req = decode(claude_code_body(0))
    capped = replace(OPENAI, max_tokens_cap=8192)
    assert apply(req, config(), capped).max_tokens == 8192
    assert apply(req, config(), OPENAI).max_tokens == 64000
    small = replace(req, max_tokens=100)
    assert apply(small, config(), capped).max_tokens == 100


def test_nothing_to_do_returns_the_same_request():
    req = Request(model="m", messages=[Message("user", [TextBlock("hi")])], max_tokens=10)
    assert apply(req, config(), ANTHROPIC) is req


# ---------------------------------------------------------------- reasoning


def test_claude_code_adaptive_with_effort_kept():
    req = decode(claude_code_body(0))
    assert req.reasoning == Reasoning(adaptive=True, effort="medium")
    assert apply(req, config(default_reasoning_effort="high"), OPENAI).reasoning.effort == "medium"


def r(**kw) -> Reasoning:
    return Reasoning(**kw)


@pytest.mark.parametrize("policy_name,server,given,expected", [
    ("preserve", {"default_reasoning_effort": "high"}, None, None),
    ("preserve", {"default_reasoning_effort": "high"}, r(adaptive=True), r(adaptive=True)),
    ("fill_missing", {"default_reasoning_effort": "low"}, None, r(effort="low")),
    ("fill_missing", {"default_reasoning_effort": "low"}, r(adaptive=True),
     r(adaptive=True, effort="low")),
    ("fill_missing", {"default_reasoning_effort": "low"}, r(effort="high"), r(effort="high")),
    ("fill_missing", {"default_reasoning_effort": "low"}, r(budget_tokens=5000),
     r(budget_tokens=5000)),
    ("fill_missing", {"default_reasoning_effort": "low"}, r(enabled=False), r(enabled=False)),
    ("fill_missing", {}, None, None),
    ("cap", {"max_reasoning_effort": "medium"}, r(effort="high"), r(effort="medium")),
    ("cap", {"max_reasoning_effort": "medium"}, r(effort="xhigh"), r(effort="medium")),
    ("cap", {"max_reasoning_effort": "medium"}, r(effort="max"), r(effort="medium")),
    ("cap", {"max_reasoning_effort": "medium"}, r(effort="low"), r(effort="low")),
    ("cap", {"max_reasoning_effort": "medium"}, r(budget_tokens=32000),
     r(budget_tokens=EFFORT_BUDGETS["medium"], effort="medium")),
    ("cap", {"max_reasoning_effort": "medium"}, r(budget_tokens=32000, effort="low"),
     r(budget_tokens=EFFORT_BUDGETS["medium"], effort="low")),
    ("cap", {"max_reasoning_effort": "medium"}, r(budget_tokens=4000), r(budget_tokens=4000)),
    ("cap", {"max_reasoning_effort": "high", "default_reasoning_effort": "max"}, None,
     r(effort="high")),
    ("cap", {"max_reasoning_effort": "low"}, r(enabled=False), r(enabled=False)),
    ("force", {"default_reasoning_effort": "low"}, r(effort="max", budget_tokens=30000),
     r(effort="low")),
    ("force", {"default_reasoning_effort": "low"}, r(enabled=False), r(effort="low")),
    ("force", {}, r(effort="max"), r(effort="max")),
])
def test_reasoning_policy(policy_name, server, given, expected):
    cfg = config(reasoning_policy=policy_name, **server)
    assert apply_reasoning_policy(given, cfg) == expected


def test_reasoning_policy_never_mutates_the_request():
    given = Reasoning(effort="max", budget_tokens=40000)
    apply_reasoning_policy(given, config(reasoning_policy="cap", max_reasoning_effort="low"))
    assert given == Reasoning(effort="max", budget_tokens=40000)


@pytest.mark.parametrize("budget,effort", [
    (0, "minimal"), (1024, "minimal"), (1025, "low"), (2048, "low"), (4000, "medium"),
    (8192, "medium"), (16384, "high"), (20000, "xhigh"), (32000, "max"), (100000, "max")])
def test_budget_effort_table(budget, effort):
    assert budget_effort(budget) == effort


def test_effort_budget_round_trip():
    for effort, budget in EFFORT_BUDGETS.items():
        assert budget_effort(budget) == effort


def test_cleaned_tools_keep_freeform():
    tools = [Tool("apply_patch", "p", {"$schema": "x", "type": "object", "properties": {
        "input": {"type": "string"}}}, freeform={"type": "text"})]
    out = apply(Request(model="m", messages=[], tools=tools), config(), OPENAI).tools
    assert "$schema" not in out[0].input_schema and out[0].freeform == {"type": "text"}
