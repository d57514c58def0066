"""Providers that behave like a model in an agent loop, for the coding-CLI end-to-end tests.

`ModelMock(kind, plan)` serves an OpenAI-compatible Chat Completions (`kind="openai"`,
`POST /v1/chat/completions`), an Anthropic Messages (`kind="anthropic"`, `POST /v1/messages`)
or an OpenAI Responses (`kind="openai_responses"`, `POST /v1/responses`, checked and streamed
by tests/mock_responses.py; freeform tools are called natively) provider. Each request is read into a protocol-neutral `View` (tool names and
schemas, the calls made so far, their results by call id) and `plan(view)` decides the answer:
`Say(text)` or `Call((name, args), …)` (several = parallel calls), either after a reasoning
block (`thinking=`: Anthropic `thinking` with a signature, OpenAI `reasoning_content`), or
`Fail(status, message)` before the first byte, or `Say(…, break_with=message)` for an error
event after the text has started. The answer is streamed in the provider's real SSE format. Requests the real APIs reject are rejected the same way here: a tool
result with no call of that id before it, a call left without its result, no streaming.
Every request body is kept in `bodies`.
"""
from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Callable

import orjson
from aiohttp import web

from tests import mock_responses as responses
from tests.responses_rules import RequestRejected, check_request


@dataclass
class Say:
    text: str
    thinking: str | None = None
    break_with: str | None = None  # an error event after the first half of the text
    input_tokens: int = 900  # the usage reported (a large one makes Codex compact)


@dataclass
class Call:
    calls: tuple[tuple[str, dict], ...]
    thinking: str | None = None
    input_tokens: int = 900

    def __init__(self, *calls: tuple[str, dict], thinking: str | None = None,
                 input_tokens: int = 900) -> None:
        self.calls, self.thinking, self.input_tokens = calls, thinking, input_tokens


@dataclass
class Fail:
    status: int
    message: str
    kind: str = "rate_limit_error"  # the error's `type`


@dataclass
class View:
    tools: dict[str, dict] = field(default_factory=dict)  # name -> parameter schema
    calls: list[tuple[str, str, dict]] = field(default_factory=list)  # (id, name, args)
    results: dict[str, str] = field(default_factory=dict)  # call id -> result text
    thinking: list[tuple[str, str]] = field(default_factory=list)  # (text, signature) given back
    freeform: set[str] = field(default_factory=set)  # tools called with raw text (Responses)
    user_text: str = ""  # every user message's text, joined (tool results excluded)


class Rejected(Exception):
    pass


def _text(content) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content or [] if isinstance(p, dict))


def openai_view(body: dict) -> View:
    view = View({(t.get("function") or {}).get("name"): (t.get("function") or {}).get(
        "parameters") or {} for t in body.get("tools") or []})
    pending: set[str] = set()
    for n, message in enumerate(body.get("messages") or []):
        if message.get("role") == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in pending:
                raise Rejected(f"Invalid parameter: messages with role 'tool' must be a response "
                               f"to a preceeding message with 'tool_calls' (messages[{n}]).")
            pending.discard(call_id)
            view.results[call_id] = _text(message.get("content"))
            continue
        if message.get("role") == "user":
            view.user_text += _text(message.get("content")) + "\n"
        if pending:
            raise Rejected("An assistant message with 'tool_calls' must be followed by tool "
                           "messages responding to each 'tool_call_id'. The following "
                           f"tool_call_ids did not have response messages: {sorted(pending)}")
        for call in message.get("tool_calls") or []:
            fn = call["function"]
            view.calls.append((call["id"], fn["name"], orjson.loads(fn["arguments"] or "{}")))
            pending.add(call["id"])
    if pending:
        raise Rejected(f"tool_call_ids did not have response messages: {sorted(pending)}")
    return view


def anthropic_view(body: dict) -> View:
    view = View({t.get("name"): t.get("input_schema") or {} for t in body.get("tools") or []})
    pending: set[str] = set()
    for n, message in enumerate(body.get("messages") or []):
        blocks = message.get("content")
        if message.get("role") == "user":
            view.user_text += _text(blocks) + "\n"
        blocks = blocks if isinstance(blocks, list) else []
        results = [b for b in blocks if b.get("type") == "tool_result"]
        if pending and {b.get("tool_use_id") for b in results} != pending:
            raise Rejected(f"messages.{n}: `tool_use` ids were found without `tool_result` "
                           f"blocks immediately after: {sorted(pending)}")
        for block in results:
            if block.get("tool_use_id") not in pending:
                raise Rejected(f"messages.{n}.content: unexpected `tool_use_id` found in "
                               "`tool_result` blocks")
            view.results[block["tool_use_id"]] = _text(block.get("content"))
        pending = set()
        for block in blocks:
            if block.get("type") == "thinking":
                if not block.get("signature"):
                    raise Rejected(f"messages.{n}.content: thinking.signature: Field required")
                view.thinking.append((block.get("thinking", ""), block["signature"]))
            if block.get("type") == "tool_use":
                view.calls.append((block["id"], block["name"], block.get("input") or {}))
                pending.add(block["id"])
    if pending:
        raise Rejected("`tool_use` ids were found without `tool_result` blocks: "
                       f"{sorted(pending)}")
    return view


def responses_view(body: dict) -> View:
    """A Responses body (already checked: every call has its output) → View; a freeform
    (`custom`) call's raw text reads as `{"input": text}` like the function it is elsewhere."""
    view = View()
    for tool in body.get("tools") or []:
        view.tools[tool.get("name")] = tool.get("parameters") or {}
        if tool.get("type") == "custom":
            view.freeform.add(tool["name"])
    for item in body["input"] if isinstance(body.get("input"), list) else []:
        kind = item.get("type")
        if kind == "function_call":
            view.calls.append((item["call_id"], item["name"], orjson.loads(item["arguments"])))
        elif kind == "custom_tool_call":
            view.calls.append((item["call_id"], item["name"], {"input": item["input"]}))
        elif kind in ("function_call_output", "custom_tool_call_output"):
            view.results[item["call_id"]] = _text(item["output"])
        elif kind == "message" and item.get("role") == "user":
            view.user_text += _text(item.get("content")) + "\n"
        elif kind == "reasoning":
            view.thinking.append(("".join(s["text"] for s in item["summary"]),
                                  item.get("encrypted_content") or ""))
    return view


# ---------------------------------------------------------------- streams


def _chat_chunk(model: str, delta: dict, finish: str | None = None, usage=None) -> bytes:
    chunk = {"id": "chatcmpl-ferry", "object": "chat.completion.chunk", "created": 1700000000,
             "model": model, "choices": [] if usage else
             [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage:
        chunk["usage"] = usage
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def openai_stream(body: dict, answer: Say | Call) -> list[bytes]:
    model = body.get("model", "mock")
    out = [_chat_chunk(model, {"role": "assistant", "content": "" if isinstance(answer, Say)
                               else None})]
    if answer.thinking:
        out += [_chat_chunk(model, {"reasoning_content": p}) for p in _halves(answer.thinking)]
    if isinstance(answer, Say):
        words = answer.text.split(" ")
        pieces = [_chat_chunk(model, {"content": w + (" " if i < len(words) - 1 else "")})
                  for i, w in enumerate(words)]
        if answer.break_with:  # OpenAI-compatible servers send an error object mid-stream
            return out + pieces[:len(pieces) // 2 or 1] + [b"data: " + orjson.dumps({"error": {
                "message": answer.break_with, "type": "server_error", "code": None}}) + b"\n\n"]
        out += pieces
        finish = "stop"
    else:
        for index, (name, args) in enumerate(answer.calls):
            raw = orjson.dumps(args).decode()
            cut = len(raw) // 2
            out.append(_chat_chunk(model, {"tool_calls": [{
                "index": index, "id": "call_" + uuid.uuid4().hex[:24], "type": "function",
                "function": {"name": name, "arguments": raw[:cut]}}]}))
            out.append(_chat_chunk(model, {"tool_calls": [{
                "index": index, "function": {"arguments": raw[cut:]}}]}))
        finish = "tool_calls"
    out.append(_chat_chunk(model, {}, finish))
    out.append(_chat_chunk(model, {}, usage={"prompt_tokens": answer.input_tokens,
                                             "completion_tokens": 25,
                                             "total_tokens": answer.input_tokens + 25,
                                             "prompt_tokens_details": {"cached_tokens": 0}}))
    return out + [b"data: [DONE]\n\n"]


def _event(kind: str, data: dict) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **data}) + b"\n\n"


def anthropic_stream(body: dict, answer: Say | Call) -> list[bytes]:
    model = body.get("model", "mock")
    out = [_event("message_start", {"message": {
        "id": "msg_" + uuid.uuid4().hex[:24], "type": "message", "role": "assistant",
        "model": model, "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": answer.input_tokens, "output_tokens": 1,
                  "cache_read_input_tokens": 0,
                  "cache_creation_input_tokens": 0}}})]
    first = 0
    if answer.thinking:
        out.append(_event("content_block_start", {"index": 0, "content_block": {
            "type": "thinking", "thinking": "", "signature": ""}}))
        out += [_event("content_block_delta", {"index": 0, "delta": {
            "type": "thinking_delta", "thinking": p}}) for p in _halves(answer.thinking)]
        out.append(_event("content_block_delta", {"index": 0, "delta": {
            "type": "signature_delta", "signature": signature_of(answer.thinking)}}))
        out.append(_event("content_block_stop", {"index": 0}))
        first = 1
    if isinstance(answer, Say):
        out.append(_event("content_block_start", {"index": first, "content_block": {
            "type": "text", "text": ""}}))
        pieces = [_event("content_block_delta", {"index": first, "delta": {
            "type": "text_delta", "text": piece}}) for piece in _halves(answer.text)]
        if answer.break_with:
            return out + pieces[:1] + [_event("error", {"error": {
                "type": "overloaded_error", "message": answer.break_with}})]
        out += pieces
        out.append(_event("content_block_stop", {"index": first}))
        stop = "end_turn"
    else:
        for index, (name, args) in enumerate(answer.calls, first):
            out.append(_event("content_block_start", {"index": index, "content_block": {
                "type": "tool_use", "id": "toolu_" + uuid.uuid4().hex[:24], "name": name,
                "input": {}}}))
            out += [_event("content_block_delta", {"index": index, "delta": {
                "type": "input_json_delta", "partial_json": piece}})
                    for piece in _halves(orjson.dumps(args).decode())]
            out.append(_event("content_block_stop", {"index": index}))
        stop = "tool_use"
    out.append(_event("message_delta", {"delta": {"stop_reason": stop, "stop_sequence": None},
                                        "usage": {"output_tokens": 25}}))
    return out + [_event("message_stop", {})]


def signature_of(thinking: str) -> str:
    """The signature this mock gives a thinking text (so a test can recognise it returning)."""
    return "sig-" + uuid.uuid5(uuid.NAMESPACE_URL, thinking).hex


def _halves(text: str) -> list[str]:
    cut = len(text) // 2
    return [p for p in (text[:cut], text[cut:]) if p]


def responses_stream(body: dict, answer: Say | Call) -> list[bytes]:
    items = [responses.reasoning(answer.thinking, encrypted_content=signature_of(
        answer.thinking))] if answer.thinking else []
    fail = None
    if isinstance(answer, Say):
        words = answer.text.split(" ")
        if answer.break_with:
            words, fail = words[:len(words) // 2 or 1], ("server_error", answer.break_with)
        items.append(responses.text(answer.text, [w + " " for w in words[:-1]] + words[-1:]))
    else:
        freeform = {t.get("name") for t in body.get("tools") or [] if t.get("type") == "custom"}
        items += [responses.custom_call(name, args["input"]) if name in freeform
                  else responses.function_call(name, args) for name, args in answer.calls]
    script = responses.Turn(items, input_tokens=answer.input_tokens, output_tokens=25, fail=fail)
    return responses.sse(responses.turn_events(body, script, "resp_" + uuid.uuid4().hex,
                                               1_760_000_000))


KINDS = {"openai": ("/v1/chat/completions", openai_view, openai_stream),
         "anthropic": ("/v1/messages", anthropic_view, anthropic_stream),
         "openai_responses": ("/v1/responses", responses_view, responses_stream)}


class ModelMock:
    def __init__(self, kind: str, plan: Callable[[View], Say | Call]) -> None:
        self.kind, self.plan = kind, plan
        self.path, self.view, self.stream = KINDS[kind]
        self.bodies: list[dict] = []
        self.headers: list[dict[str, str]] = []  # of each request, names lower-cased
        self.rejected: list[str] = []

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    def _error(self, status: int, message: str, kind: str = "invalid_request_error",
               scripted: bool = False) -> web.Response:
        if not scripted:
            self.rejected.append(message)
        if self.kind == "anthropic":
            body = {"type": "error", "error": {"type": kind, "message": message}}
        else:
            body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
        return web.json_response(body, status=status)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        self.headers.append({k.lower(): v for k, v in request.headers.items()})
        if request.method != "POST" or request.path != self.path:
            return self._error(404, f"no route {request.method} {request.path}")
        if self.kind == "openai_responses":
            try:
                check_request(raw, request.headers)
            except RequestRejected as exc:
                self.bodies.append(orjson.loads(raw))
                return self._error(exc.status, f"{exc.param}: {exc.message}")
        body = orjson.loads(raw)
        self.bodies.append(body)
        if body.get("stream") is not True:
            return self._error(400, "this mock only streams")
        try:
            answer = self.plan(self.view(body))
        except Rejected as exc:
            return self._error(400, str(exc))
        if isinstance(answer, Fail):
            return self._error(answer.status, answer.message, answer.kind, scripted=True)
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        for chunk in self.stream(body, answer):
            await resp.write(chunk)
            await asyncio.sleep(0)
        await resp.write_eof()
        return resp
