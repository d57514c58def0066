"""The `--demo` provider: a small OpenAI-compatible Chat Completions server on loopback.

It answers with a short text that names the model and echoes the size of the prompt (never the
prompt itself), streams it as real providers do (role chunk, content chunks, finish chunk, usage
chunk, `[DONE]`), and calls a tool (`Bash` if offered, else the first) when the user asks it
to "use a tool", so a tool round trip can be tried without a key or a network."""
from __future__ import annotations

import re
import time
import uuid

import orjson
from aiohttp import web

from .config import Config, ProviderConfig, RouteConfig, ServerConfig

DEMO_MODEL = "ferryllm-demo"


def demo_config(listen: str, upstream_port: int) -> Config:
    return Config(
        server=ServerConfig(listen=listen),
        providers=(ProviderConfig(name="demo", type="openai",
                                  base_url=f"http://127.0.0.1:{upstream_port}", api_key="demo"),),
        routes=(RouteConfig(match="*", provider="demo", rewrite_model=DEMO_MODEL),),
        source="<demo>",
    )


TOOL_PHRASE = "use a tool"
_REMINDER = re.compile(r"<system-reminder>.*?</system-reminder>\s*", re.S)


def _texts(content) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return []


def _tool_args(tool: dict, name: str) -> str:
    if name == "Bash":  # Claude Code's shell tool: something harmless to run
        return orjson.dumps({"command": "echo hello from the ferryllm demo",
                             "description": "Print a greeting"}).decode()
    params = (tool.get("function") or {}).get("parameters") or {}
    props = params.get("properties") or {}
    args = {key: "demo" for key in params.get("required", []) if
            (props.get(key) or {}).get("type", "string") == "string"}
    return orjson.dumps(args).decode()


def _plan(body: dict) -> tuple[str, dict | None]:
    """A text answer, or (when the user asked to "use a tool" in this turn and no tool has
    answered in it yet) a call of the `Bash` tool if offered, else of the first tool. The turn is
    everything after the last assistant message, so a later turn is answered afresh. Reminder
    blocks that clients such as Claude Code add to user turns are not read as the user's words."""
    messages = body.get("messages") or []
    turn = []
    for m in reversed(messages):
        if not isinstance(m, dict) or m.get("role") == "assistant":
            break
        turn.append(m)
    turn.reverse()
    results = [m for m in turn if m.get("role") == "tool"]
    if results:
        size = sum(len(t) for t in _texts(results[-1].get("content")))
        return f"The tool returned {size} characters. Done.", None
    said = [_REMINDER.sub("", t) for m in turn if m.get("role") == "user"
            for t in _texts(m.get("content"))]
    tools = body.get("tools") or []
    if tools and any(TOOL_PHRASE in t.lower() for t in said):
        chosen = next((t for t in tools if (t.get("function") or {}).get("name") == "Bash"), tools[0])
        name = (chosen.get("function") or {}).get("name", "tool")
        return "Let me call a tool.", {"id": "call_" + uuid.uuid4().hex[:24], "name": name,
                                       "arguments": _tool_args(chosen, name)}
    last = said[-1] if said else ""
    return (f"Hello from the ferryllm demo provider ({body.get('model')}). "
            f"Your last message had {len(last)} characters."), None


def _usage(body: dict, completion: int) -> dict:
    prompt = max(1, len(orjson.dumps(body.get("messages") or [])) // 4)
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion, "prompt_tokens_details": {"cached_tokens": 0}}


async def chat_completions(request: web.Request) -> web.StreamResponse:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return web.json_response({"error": {"message": "invalid JSON", "type": "invalid_request_error"}},
                                 status=400)
    text, call = _plan(body)
    words = text.split(" ")
    completion = len(words) + (8 if call else 0)
    cid, created, model = "chatcmpl-" + uuid.uuid4().hex[:24], int(time.time()), body.get("model")
    finish = "tool_calls" if call else "stop"
    if not body.get("stream"):
        message: dict = {"role": "assistant", "content": text}
        if call:
            message["tool_calls"] = [{"id": call["id"], "type": "function",
                                      "function": {"name": call["name"], "arguments": call["arguments"]}}]
        return web.Response(body=orjson.dumps({
            "id": cid, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": _usage(body, completion)}), content_type="application/json")

    resp = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache"})
    await resp.prepare(request)

    def chunk(delta: dict, finish_reason: str | None = None) -> bytes:
        return b"data: " + orjson.dumps({
            "id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}) + b"\n\n"

    await resp.write(chunk({"role": "assistant", "content": ""}))
    for i, word in enumerate(words):
        await resp.write(chunk({"content": word if i == 0 else " " + word}))
    if call:
        await resp.write(chunk({"tool_calls": [{"index": 0, "id": call["id"], "type": "function",
                                                "function": {"name": call["name"], "arguments": ""}}]}))
        args = call["arguments"]
        for i in range(0, len(args), 8):
            await resp.write(chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[i:i + 8]}}]}))
    await resp.write(chunk({}, finish))
    usage = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
             "choices": [], "usage": _usage(body, completion)}
    await resp.write(b"data: " + orjson.dumps(usage) + b"\n\ndata: [DONE]\n\n")
    await resp.write_eof()
    return resp


def build_mock_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_get("/v1/models", lambda r: web.json_response(
        {"object": "list", "data": [{"id": DEMO_MODEL, "object": "model", "owned_by": "ferryllm"}]}))
    return app
