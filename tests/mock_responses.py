"""A faithful OpenAI Responses API provider for tests: an aiohttp app on 127.0.0.1.

Scripted by `Turn`s of output items (`text`, `function_call`, `custom_call`, `reasoning`) with
usage; answers JSON or SSE in OpenAI's streaming grammar: every event has `type` and a
`sequence_number` from 0; `response.created`, `response.in_progress`; each output item in
order, never interleaved: `response.output_item.added` → its parts and deltas →
`response.output_item.done` with the complete item; then `response.completed` (or
`response.incomplete` / `response.failed`) carrying the full response body.

Requests are checked as the real API checks them (see `tests/responses_rules.py`): a rejected
request gets OpenAI's 400 body and is still recorded, so a test can assert on what was sent.
The mock is stateless like `store: false`: it never finds a `previous_response_id`.
"""
from __future__ import annotations

import asyncio
import itertools
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import orjson
from aiohttp import web

from tests.responses_rules import RequestRejected, check_request

MODEL = "mock-responses-1"


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


# ---------------------------------------------------------------- the script


@dataclass
class Item:
    """One output item the mock streams: kind is message | function_call | custom_tool_call |
    reasoning. `pieces` are the deltas (text, arguments, input or summary text)."""
    kind: str
    pieces: list[str]
    name: str = ""
    call_id: str = ""
    namespace: str | None = None
    summary: list[list[str]] = field(default_factory=list)  # reasoning: deltas per part
    encrypted_content: str | None = None
    id: str = ""


def _split(text: str, parts: int = 3) -> list[str]:
    step = max(1, -(-len(text) // parts))
    return [text[i:i + step] for i in range(0, len(text), step)] or [""]


def text(value: str, pieces: list[str] | None = None) -> Item:
    return Item("message", pieces if pieces is not None else _split(value), id=_id("msg"))


def function_call(name: str, arguments: dict | str, call_id: str | None = None,
                  namespace: str | None = None) -> Item:
    args = arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode()
    return Item("function_call", _split(args), name=name, call_id=call_id or _id("call"),
                namespace=namespace, id=_id("fc"))


def custom_call(name: str, input: str, call_id: str | None = None) -> Item:
    return Item("custom_tool_call", _split(input), name=name, call_id=call_id or _id("call"),
                id=_id("ctc"))


def reasoning(*summary: str, encrypted_content: str | None = "gAAAA-mock-encrypted") -> Item:
    return Item("reasoning", [], summary=[_split(s, 2) for s in summary],
                encrypted_content=encrypted_content, id=_id("rs"))


@dataclass
class Turn:
    """One response: its items, usage, and how it ends (completed, max_output_tokens
    → incomplete, or `fail` = (code, message) → response.failed after the items)."""
    items: list[Item]
    input_tokens: int = 100
    cached_tokens: int = 0
    output_tokens: int = 20
    reasoning_tokens: int = 0
    incomplete: str | None = None  # e.g. "max_output_tokens"
    fail: tuple[str, str] | None = None
    status: int = 200  # a non-200 answers `error` before any byte of a stream
    error: dict | None = None

    def usage(self) -> dict:
        return {"input_tokens": self.input_tokens,
                "input_tokens_details": {"cached_tokens": self.cached_tokens},
                "output_tokens": self.output_tokens,
                "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
                "total_tokens": self.input_tokens + self.output_tokens}


def turn(*items: Item, **kw: Any) -> Turn:
    return Turn(list(items), **kw)


# ---------------------------------------------------------------- bodies and events


def done_item(item: Item) -> dict:
    """The complete output item, as `output_item.done` and `response.output` carry it."""
    whole = "".join(item.pieces)
    if item.kind == "message":
        return {"id": item.id, "type": "message", "status": "completed", "role": "assistant",
                "content": [{"type": "output_text", "annotations": [], "logprobs": [],
                             "text": whole}]}
    if item.kind == "function_call":
        out = {"id": item.id, "type": "function_call", "status": "completed",
               "arguments": whole, "call_id": item.call_id, "name": item.name}
        if item.namespace:
            out["namespace"] = item.namespace
        return out
    if item.kind == "custom_tool_call":
        return {"id": item.id, "type": "custom_tool_call", "status": "completed",
                "call_id": item.call_id, "input": whole, "name": item.name}
    out = {"id": item.id, "type": "reasoning",
           "summary": [{"type": "summary_text", "text": "".join(p)} for p in item.summary]}
    if item.encrypted_content is not None:
        out["encrypted_content"] = item.encrypted_content
    return out


def _added_item(item: Item) -> dict:
    full = done_item(item)
    if item.kind == "message":
        return {**full, "status": "in_progress", "content": []}
    if item.kind == "function_call":
        return {**full, "status": "in_progress", "arguments": ""}
    if item.kind == "custom_tool_call":
        return {**full, "status": "in_progress", "input": ""}
    return {**full, "summary": []}


def response_body(body: dict, resp_id: str, created: int, status: str, output: list[dict],
                  usage: dict | None, **extra: Any) -> dict:
    """The response object, echoing the request's settings as the API does."""
    out = {
        "id": resp_id, "object": "response", "created_at": created, "status": status,
        "background": False, "error": None, "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"), "model": body.get("model", MODEL),
        "output": output, "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "reasoning": {"effort": (body.get("reasoning") or {}).get("effort"),
                      "summary": (body.get("reasoning") or {}).get("summary")},
        "store": body.get("store", True), "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0), "truncation": "disabled", "usage": usage,
        "user": None, "metadata": body.get("metadata") or {},
    }
    out.update(extra)
    return out


def item_events(item: Item, index: int) -> list[dict]:
    """The events of one output item, from `output_item.added` to `output_item.done`."""
    ref = {"item_id": item.id, "output_index": index}
    events: list[dict] = [{"type": "response.output_item.added", "output_index": index,
                           "item": _added_item(item)}]
    whole = "".join(item.pieces)
    if item.kind == "message":
        part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
        events.append({"type": "response.content_part.added", **ref, "content_index": 0,
                       "part": part})
        events += [{"type": "response.output_text.delta", **ref, "content_index": 0,
                    "delta": p, "logprobs": []} for p in item.pieces if p]
        events.append({"type": "response.output_text.done", **ref, "content_index": 0,
                       "text": whole, "logprobs": []})
        events.append({"type": "response.content_part.done", **ref, "content_index": 0,
                       "part": {**part, "text": whole}})
    elif item.kind == "function_call":
        events += [{"type": "response.function_call_arguments.delta", **ref, "delta": p}
                   for p in item.pieces if p]
        events.append({"type": "response.function_call_arguments.done", **ref,
                       "arguments": whole})
    elif item.kind == "custom_tool_call":
        events += [{"type": "response.custom_tool_call_input.delta", **ref, "delta": p}
                   for p in item.pieces if p]
        events.append({"type": "response.custom_tool_call_input.done", **ref, "input": whole})
    else:
        for n, pieces in enumerate(item.summary):
            at = {**ref, "summary_index": n}
            events.append({"type": "response.reasoning_summary_part.added", **at,
                           "part": {"type": "summary_text", "text": ""}})
            events += [{"type": "response.reasoning_summary_text.delta", **at, "delta": p}
                       for p in pieces if p]
            events.append({"type": "response.reasoning_summary_text.done", **at,
                           "text": "".join(pieces)})
            events.append({"type": "response.reasoning_summary_part.done", **at,
                           "part": {"type": "summary_text", "text": "".join(pieces)}})
    events.append({"type": "response.output_item.done", "output_index": index,
                   "item": done_item(item)})
    return events


def turn_events(body: dict, script: Turn, resp_id: str, created: int) -> list[dict]:
    """Every event of a streamed turn, with `sequence_number` from 0."""
    start = response_body(body, resp_id, created, "in_progress", [], None)
    events: list[dict] = [{"type": "response.created", "response": start},
                          {"type": "response.in_progress", "response": start}]
    for index, item in enumerate(script.items):
        events += item_events(item, index)
    events.append(final_event(body, script, resp_id, created))
    for number, event in enumerate(events):
        event["sequence_number"] = number
    return events


def final_event(body: dict, script: Turn, resp_id: str, created: int) -> dict:
    output = [done_item(i) for i in script.items]
    if script.fail:
        code, message = script.fail
        return {"type": "response.failed", "response": response_body(
            body, resp_id, created, "failed", output, None,
            error={"code": code, "message": message})}
    if script.incomplete:
        return {"type": "response.incomplete", "response": response_body(
            body, resp_id, created, "incomplete", output, script.usage(),
            incomplete_details={"reason": script.incomplete})}
    return {"type": "response.completed", "response": response_body(
        body, resp_id, created, "completed", output, script.usage())}


def sse(events: list[dict]) -> list[bytes]:
    return [b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n"
            for e in events]


# ---------------------------------------------------------------- the server


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 0  # what the mock answered

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


class ResponsesMock:
    """`ResponsesMock(turn(...), turn(...))` answers each POST /v1/responses with the next
    turn; `ResponsesMock(plan=fn)` asks `fn(body) -> Turn` instead (a model that reacts to
    what it was sent). `seen` holds every request, accepted or not."""

    def __init__(self, *script: Turn, plan: Callable[[dict], Turn] | None = None,
                 gap: float = 0.0) -> None:
        self.script = list(script)
        self.plan = plan
        self.gap = gap
        self.seen: list[Seen] = []
        self._clock = itertools.count(1_760_000_000)

    @property
    def accepted(self) -> list[dict]:
        return [s.json for s in self.seen if s.status == 200]

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/responses", self.handle)
        app.router.add_route("*", "/{tail:.*}", self.not_found)
        return app

    async def not_found(self, request: web.Request) -> web.Response:
        await request.read()
        return _error(404, f"Invalid URL ({request.method} {request.path})",
                      "invalid_request_error", None, None)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        seen = Seen(request.path, {str(k): v for k, v in request.headers.items()},
                    await request.read())
        self.seen.append(seen)
        try:
            body = check_request(seen.body, request.headers)
        except RequestRejected as exc:
            seen.status = exc.status
            return _error(exc.status, exc.message, exc.type, exc.param, exc.code)
        script = self.plan(body) if self.plan else (self.script.pop(0) if self.script else None)
        if script is None:
            seen.status = 500
            return _error(500, "mock has no turn scripted", "server_error", None, None)
        seen.status = script.status
        if script.status != 200:
            return web.json_response(script.error or {"error": {
                "message": "scripted error", "type": "server_error", "param": None,
                "code": None}}, status=script.status)
        resp_id, created = _id("resp"), next(self._clock)
        if not body.get("stream"):
            return web.Response(body=orjson.dumps(final_event(body, script, resp_id, created)
                                                  ["response"]),
                                content_type="application/json")
        resp = web.StreamResponse(headers={"content-type": "text/event-stream; charset=utf-8",
                                           "x-request-id": _id("req")})
        await resp.prepare(request)
        for frame in sse(turn_events(body, script, resp_id, created)):
            await resp.write(frame)
            if self.gap:
                await asyncio.sleep(self.gap)
        await resp.write_eof()
        return resp


def _error(status: int, message: str, kind: str, param: str | None,
           code: str | None) -> web.Response:
    return web.json_response({"error": {"message": message, "type": kind, "param": param,
                                        "code": code}}, status=status)
