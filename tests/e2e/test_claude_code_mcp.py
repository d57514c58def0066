"""The real Claude Code CLI with an MCP server of 60 tools and DEFAULT settings (tool search on),
through ferryllm, to an OpenAI-compatible mock and to an Anthropic mock.

Claude Code defers MCP tools: its first request declares the built-in tools, a client-side
`ToolSearch` and a `DeferredToolPlaceholder` (`defer_loading: true`); the MCP tool names sit only
in a reminder. The mock model calls `ToolSearch`; Claude Code answers with `tool_reference`
blocks and declares the found tool with `defer_loading: true`. The mocks then call the MCP tool
only if its schema reached them, and answer with the tool's output, which must end up in the
CLI's stdout. The MCP server (`tests/mcp_server.py`, standard library only) logs every call.
"""
from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from tests.e2e.test_claude_code import (BACKEND_MODEL, ModelMock, check_upstream_hygiene,
                                        run_claude, start, text_stream, tool_stream)
from tests.mcp_server import BERTH_ANSWER, SERVER_NAME, TARGET_TOOL, TOOL_COUNT
from tests.conftest import make_config

pytestmark = pytest.mark.claude_code

MCP_TOOL = f"mcp__{SERVER_NAME}__{TARGET_TOOL}"
SEARCH = {"query": f"select:{MCP_TOOL}", "max_results": 5}
PROMPT = "FIND-THE-BERTH: use the ferry tools to find where the ferry Nordlys is berthed."
MCP_SERVER = Path(__file__).resolve().parent.parent / "mcp_server.py"


@pytest.fixture(scope="module")
def claude():
    from tests.claude_code import ClaudeCodeUnavailable, claude_command
    try:
        return claude_command()
    except ClaudeCodeUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


def mcp_args(tmp: Path) -> tuple[tuple[str, ...], dict[str, str]]:
    config = {"mcpServers": {SERVER_NAME: {"command": sys.executable, "args": [str(MCP_SERVER)]}}}
    return (("--mcp-config", json.dumps(config), "--allowedTools", f"mcp__{SERVER_NAME}"),
            {"FERRY_MCP_LOG": str(tmp / "mcp-calls.jsonl")})


def mcp_calls(tmp: Path) -> list[dict]:
    log = tmp / "mcp-calls.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


# ---------------------------------------------------------------- OpenAI-compatible mock


class SearchingModel(ModelMock):
    """Searches for the MCP tool, calls it once its schema is among the tools, answers with
    its output."""

    def plan(self, body: dict) -> list[bytes]:
        # a fresh completion id per answer, as real providers give: Claude Code merges the
        # answers that share one into one assistant message
        fresh = b'"id":"chatcmpl-' + uuid.uuid4().hex[:20].encode() + b'"'
        return [c.replace(b'"id":"chatcmpl-ferry"', fresh) for c in self._plan(body)]

    def _plan(self, body: dict) -> list[bytes]:
        messages = body.get("messages") or []
        tools = {(t.get("function") or {}).get("name") for t in body.get("tools") or []}
        last = messages[-1] if messages else {}
        if last.get("role") == "tool" or (last.get("role") == "user" and len(messages) > 1
                                          and messages[-2].get("role") == "tool"):
            results = [m for m in messages if m.get("role") == "tool"]
            latest = str(results[-1].get("content")) if results else ""
            if BERTH_ANSWER in latest:
                return text_stream(f"The Nordlys is moored at {BERTH_ANSWER} says the harbour.")
            if "<functions>" in latest and MCP_TOOL in tools:
                return tool_stream(MCP_TOOL, {"ferry": "Nordlys"})
            return text_stream("The tool search gave me nothing I can call.")
        if "FIND-THE-BERTH" in orjson.dumps(messages).decode() and "ToolSearch" in tools:
            return tool_stream("ToolSearch", SEARCH)
        return text_stream("Nothing to do.")


async def test_mcp_tool_found_by_tool_search_on_openai_backend(claude, gateway, provider, tmp_path):
    mock = SearchingModel()
    base = await start(gateway, provider, mock)
    args, env = mcp_args(tmp_path)
    code, out, err = await run_claude(claude, base, PROMPT, tmp_path, args, env)
    assert code == 0, f"claude exited {code}\nstdout: {out[-2000:]}\nstderr: {err[-2000:]}"
    assert BERTH_ANSWER in out, f"stdout: {out[-2000:]}\nstderr: {err[-2000:]}"
    assert mcp_calls(tmp_path) == [{"name": TARGET_TOOL, "arguments": {"ferry": "Nordlys"}}]
    check_upstream_hygiene(mock)  # no defer_loading, no Anthropic-only field

    main = [b for b in mock.requests if any(
        t["function"]["name"] == "ToolSearch" for t in b.get("tools") or ())]
    first = main[0]
    names = [t["function"]["name"] for t in first["tools"]]
    assert MCP_TOOL not in names and "DeferredToolPlaceholder" not in names
    assert len(names) < TOOL_COUNT  # the 60 MCP tools stay deferred until searched
    # after the search the tool's schema is among the provider's tools, and the search's
    # result carries its definition instead of nothing
    loaded = next(b for b in main if any(m.get("role") == "tool" for m in b["messages"]))
    schema = next(t["function"] for t in loaded["tools"] if t["function"]["name"] == MCP_TOOL)
    assert schema["parameters"]["required"] == ["ferry"]
    result = next(m for m in loaded["messages"] if m.get("role") == "tool")["content"]
    assert f'"name":"{MCP_TOOL}"' in result and result.startswith("<functions>")
    # the call and its output went back to the provider on the last turn
    final = main[-1]
    calls = [c["function"]["name"] for m in final["messages"] if m.get("tool_calls")
             for c in m["tool_calls"]]
    assert calls == ["ToolSearch", MCP_TOOL]
    assert BERTH_ANSWER in str([m for m in final["messages"] if m.get("role") == "tool"][-1])
    # consecutive turns after the load share their prefix (prompt cache)
    raw = [r for r, b in zip(mock.bodies, mock.requests) if b in main]
    end = raw[-2].index(b'],"tools":')
    assert raw[-1][:end] == raw[-2][:end]


# ---------------------------------------------------------------- Anthropic mock


def _event(name: str, data: dict) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def anthropic_stream(block: dict, delta: dict | None, stop: str) -> bytes:
    """One content block as Anthropic streams it, with a fresh message id (Claude Code merges
    answers that share one)."""
    return b"".join([
        _event("message_start", {"type": "message_start", "message": {
            "id": "msg_" + uuid.uuid4().hex[:20], "type": "message", "role": "assistant",
            "model": BACKEND_MODEL, "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 900, "output_tokens": 1}}}),
        _event("content_block_start", {"type": "content_block_start", "index": 0,
                                       "content_block": block}),
        *([_event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                          "delta": delta})] if delta else []),
        _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _event("message_delta", {"type": "message_delta", "delta": {
            "stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": 12}}),
        _event("message_stop", {"type": "message_stop"})])


def anthropic_tool(name: str, arguments: dict) -> bytes:
    return anthropic_stream(
        {"type": "tool_use", "id": "toolu_" + uuid.uuid4().hex[:20], "name": name, "input": {}},
        {"type": "input_json_delta", "partial_json": orjson.dumps(arguments).decode()}, "tool_use")


def anthropic_text(text: str) -> bytes:
    return anthropic_stream({"type": "text", "text": ""}, {"type": "text_delta", "text": text},
                            "end_turn")


class AnthropicSearchingModel:
    """The same model behind the Anthropic Messages API, which loads deferred tools itself."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    def plan(self, body: dict) -> bytes:
        messages = body.get("messages") or []
        tools = {t.get("name"): t for t in body.get("tools") or []}
        last = messages[-1] if messages else {}
        results = [b for b in last.get("content") or [] if isinstance(last.get("content"), list)
                   and b.get("type") == "tool_result"] if last.get("role") == "user" else []
        if results:
            latest = results[-1]
            if BERTH_ANSWER in orjson.dumps(latest).decode():
                return anthropic_text(f"The Nordlys is moored at {BERTH_ANSWER} says the harbour.")
            refs = [p.get("tool_name") for p in latest.get("content") or []
                    if isinstance(p, dict) and p.get("type") == "tool_reference"]
            if MCP_TOOL in refs and tools.get(MCP_TOOL, {}).get("defer_loading") is True:
                return anthropic_tool(MCP_TOOL, {"ferry": "Nordlys"})
            return anthropic_text("The tool search gave me nothing I can call.")
        if "FIND-THE-BERTH" in orjson.dumps(messages).decode() and "ToolSearch" in tools:
            return anthropic_tool("ToolSearch", SEARCH)
        return anthropic_text("Nothing to do.")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/count_tokens"):
            return web.json_response({"input_tokens": 1000})
        body = await request.json()
        self.bodies.append(body)
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(self.plan(body))
        await resp.write_eof()
        return resp


async def test_mcp_tool_search_on_anthropic_backend_keeps_deferral(claude, gateway, provider,
                                                                   tmp_path):
    mock = AnthropicSearchingModel()
    url = await provider(mock)
    base = await gateway(make_config({"ant": ("anthropic", url)}))
    args, env = mcp_args(tmp_path)
    code, out, err = await run_claude(claude, base, PROMPT, tmp_path, args, env)
    assert code == 0, f"claude exited {code}\nstdout: {out[-2000:]}\nstderr: {err[-2000:]}"
    assert BERTH_ANSWER in out, f"stdout: {out[-2000:]}\nstderr: {err[-2000:]}"
    assert mcp_calls(tmp_path) == [{"name": TARGET_TOOL, "arguments": {"ferry": "Nordlys"}}]
    main = [b for b in mock.bodies if any(t.get("name") == "ToolSearch" for t in b.get("tools") or ())]
    # deferral untouched: the placeholder and the found tool keep defer_loading, and the
    # search's tool_reference reached the provider as Claude Code sent it
    assert all(any(t.get("name") == "DeferredToolPlaceholder" and t.get("defer_loading")
                   for t in b["tools"]) for b in main)
    final = main[-1]
    assert next(t for t in final["tools"] if t["name"] == MCP_TOOL)["defer_loading"] is True
    assert {"type": "tool_reference", "tool_name": MCP_TOOL} in [
        p for m in final["messages"] if isinstance(m["content"], list) for b in m["content"]
        if b.get("type") == "tool_result" and isinstance(b.get("content"), list)
        for p in b["content"]]
