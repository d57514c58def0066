"""Providers that behave like a model, for driving real coding CLIs through ferryllm.

A `plan(Facts) -> Say | list[Call]` decides what the model does from what the conversation holds
(the user's text, the tool results that just came back, the tools offered); `OpenAIModel` (Chat
Completions) and `AnthropicModel` (Messages) serve that decision as their provider streams it,
record every request body, and reject what the real API rejects for tool use (a result whose id
answers no call, a call left unanswered), so a gateway that loses or reorders a tool id fails.
"""
from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Callable

import orjson
from aiohttp import web


@dataclass
class Say:
    text: str


@dataclass
class Call:
    name: str
    args: dict


@dataclass
class Fail:
    """Answer with the provider's error body instead (`status` 4xx/5xx)."""
    status: int
    message: str


@dataclass
class Facts:
    user_text: str  # every user text of the conversation, joined
    results: list[str]  # the tool results of the latest turn, in call order ([] if none)
    tools: set[str] = field(default_factory=set)
    json_schema: dict | None = None  # structured output asked for: answer JSON of this schema


Plan = Callable[[Facts], "Say | list[Call] | Fail"]


class ModelMock:
    """Shared recording and dispatch; subclasses know one provider protocol."""
    path = ""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self.errors: list[str] = []  # every request the mock refused, and why

    @property
    def requests(self) -> list[dict]:
        return [orjson.loads(b) for b in self.bodies]

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        if request.method != "POST" or request.path != self.path:
            return self.refuse(404, f"no route {request.method} {request.path}")
        self.bodies.append(raw)
        self.headers.append(dict(request.headers))
        body = orjson.loads(raw)
        problem = self.check(body)
        if problem:
            return self.refuse(400, problem)
        decision = self.plan(self.facts(body))
        if isinstance(decision, Fail):
            return self.refuse(decision.status, decision.message)
        if not body.get("stream"):
            calls = [] if isinstance(decision, Say) else decision
            return web.json_response(self.whole(decision.text if isinstance(decision, Say)
                                                else None, calls))
        frames = self.say(decision.text) if isinstance(decision, Say) else self.call(decision)
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        for frame in frames:
            await resp.write(frame)
            await asyncio.sleep(0)
        await resp.write_eof()
        return resp

    def refuse(self, status: int, message: str) -> web.Response:
        self.errors.append(message)
        return web.json_response(self.error_body(message, status), status=status)

    @staticmethod
    def pieces(text: str) -> list[str]:
        words = text.split(" ")
        return [w + " " for w in words[:-1]] + [words[-1]]

    # per protocol
    def error_body(self, message: str, status: int) -> dict: ...
    def check(self, body: dict) -> str | None: ...
    def facts(self, body: dict) -> Facts: ...
    def say(self, text: str) -> list[bytes]: ...
    def call(self, calls: list[Call]) -> list[bytes]: ...
    def whole(self, text: str | None, calls: list[Call]) -> dict: ...


class OpenAIModel(ModelMock):
    path = "/v1/chat/completions"

    def __init__(self, plan: Plan, model: str = "mock-coder-1") -> None:
        super().__init__(plan)
        self.model = model

    def error_body(self, message: str, status: int) -> dict:
        kind = {429: "rate_limit_exceeded", 401: "invalid_api_key"}.get(
            status, "invalid_request_error")
        return {"error": {"message": message, "type": kind, "code": None, "param": None}}

    def check(self, body: dict) -> str | None:
        open_ids: list[str] = []
        for msg in body.get("messages") or []:
            if msg.get("role") == "tool":
                if msg.get("tool_call_id") not in open_ids:
                    return (f"Invalid parameter: messages with role 'tool' must be a response to "
                            f"a preceeding message with 'tool_calls' ({msg.get('tool_call_id')})")
                open_ids.remove(msg["tool_call_id"])
                continue
            if open_ids:
                return ("An assistant message with 'tool_calls' must be followed by tool "
                        f"messages responding to each 'tool_call_id'. Missing: {open_ids}")
            open_ids = [c["id"] for c in msg.get("tool_calls") or []]
        return None

    def facts(self, body: dict) -> Facts:
        messages = body.get("messages") or []
        results = []
        for msg in reversed(messages):
            if msg.get("role") != "tool":
                break
            content = msg.get("content")
            results.insert(0, content if isinstance(content, str)
                           else orjson.dumps(content).decode())
        user = [m.get("content") for m in messages if m.get("role") == "user"]
        tools = {(t.get("function") or {}).get("name") for t in body.get("tools") or []}
        fmt = body.get("response_format") or {}
        schema = (fmt.get("json_schema") or {}).get("schema") if fmt.get("type") == "json_schema" \
            else None
        return Facts(orjson.dumps(user).decode(), results, tools, schema)

    def whole(self, text: str | None, calls: list[Call]) -> dict:
        message: dict = {"role": "assistant", "content": text}
        if calls:
            message["tool_calls"] = [{"id": "call_" + uuid.uuid4().hex[:24], "type": "function",
                                      "function": {"name": c.name,
                                                   "arguments": orjson.dumps(c.args).decode()}}
                                     for c in calls]
        return {"id": "chatcmpl-ferry", "object": "chat.completion", "created": 1700000000,
                "model": self.model, "choices": [{
                    "index": 0, "message": message,
                    "finish_reason": "tool_calls" if calls else "stop"}],
                "usage": {"prompt_tokens": 1200, "completion_tokens": 30, "total_tokens": 1230}}

    def _chunk(self, delta: dict, finish: str | None = None) -> bytes:
        return b"data: " + orjson.dumps({
            "id": "chatcmpl-ferry", "object": "chat.completion.chunk", "created": 1700000000,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}) + b"\n\n"

    def _end(self, finish: str, completion: int) -> list[bytes]:
        usage = b"data: " + orjson.dumps({
            "id": "chatcmpl-ferry", "object": "chat.completion.chunk", "created": 1700000000,
            "model": self.model, "choices": [],
            "usage": {"prompt_tokens": 1200, "completion_tokens": completion,
                      "total_tokens": 1200 + completion,
                      "prompt_tokens_details": {"cached_tokens": 0}}}) + b"\n\n"
        return [self._chunk({}, finish), usage, b"data: [DONE]\n\n"]

    def say(self, text: str) -> list[bytes]:
        pieces = self.pieces(text)
        return ([self._chunk({"role": "assistant", "content": ""})]
                + [self._chunk({"content": p}) for p in pieces] + self._end("stop", len(pieces)))

    def call(self, calls: list[Call]) -> list[bytes]:
        out = [self._chunk({"role": "assistant", "content": None})]
        for i, c in enumerate(calls):
            args = orjson.dumps(c.args).decode()
            cut = len(args) // 2
            out += [
                self._chunk({"tool_calls": [{"index": i, "id": "call_" + uuid.uuid4().hex[:24],
                                             "type": "function",
                                             "function": {"name": c.name, "arguments": ""}}]}),
                self._chunk({"tool_calls": [{"index": i, "function": {"arguments": args[:cut]}}]}),
                self._chunk({"tool_calls": [{"index": i, "function": {"arguments": args[cut:]}}]})]
        return out + self._end("tool_calls", 30)


class AnthropicModel(ModelMock):
    path = "/v1/messages"

    def __init__(self, plan: Plan, model: str = "claude-mock-1") -> None:
        super().__init__(plan)
        self.model = model

    def error_body(self, message: str, status: int) -> dict:
        kind = {429: "rate_limit_error", 529: "overloaded_error", 500: "api_error"}.get(
            status, "invalid_request_error")
        return {"type": "error", "error": {"type": kind, "message": message}}

    def check(self, body: dict) -> str | None:
        if not isinstance(body.get("max_tokens"), int):
            return "max_tokens: Field required"
        thinking = body.get("thinking") or {}
        if thinking.get("type") == "enabled":
            budget = thinking.get("budget_tokens")
            if not isinstance(budget, int) or not 1024 <= budget < body["max_tokens"]:
                return "thinking.budget_tokens: must be >= 1024 and less than max_tokens"
            if body.get("temperature", 1) != 1 or "top_k" in body:
                return ("`temperature` may only be set to 1 and `top_k` not at all when "
                        "thinking is enabled")
            if not 0.95 <= body.get("top_p", 1) <= 1:
                return "`top_p` must be between 0.95 and 1 when thinking is enabled"
        asked: list[str] = []
        for i, msg in enumerate(body.get("messages") or []):
            blocks = msg["content"] if isinstance(msg.get("content"), list) else []
            answered = [b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"]
            if sorted(answered) != sorted(asked):
                return (f"messages.{i}: `tool_use` ids were found without `tool_result` blocks "
                        f"immediately after: {sorted(set(asked) - set(answered))}; unexpected "
                        f"`tool_use_id` found in `tool_result` blocks: "
                        f"{sorted(set(answered) - set(asked))}")
            asked = [b["id"] for b in blocks if b.get("type") == "tool_use"]
        return None

    def facts(self, body: dict) -> Facts:
        messages = body.get("messages") or []
        last = messages[-1] if messages else {}
        blocks = last.get("content") if isinstance(last.get("content"), list) else []
        results = []
        for b in blocks:
            if b.get("type") == "tool_result":
                content = b.get("content")
                if isinstance(content, list):
                    content = "".join(c.get("text", "") for c in content)
                results.append(content or "")
        user = []
        for m in messages:
            if m.get("role") == "user":
                content = m.get("content")
                user += [content] if isinstance(content, str) else [
                    b.get("text", "") for b in content if b.get("type") == "text"]
        return Facts(orjson.dumps(user).decode(), results,
                     {t.get("name") for t in body.get("tools") or []})

    def whole(self, text: str | None, calls: list[Call]) -> dict:
        content = [{"type": "text", "text": text}] if text is not None else []
        content += [{"type": "tool_use", "id": "toolu_" + uuid.uuid4().hex[:24], "name": c.name,
                     "input": c.args} for c in calls]
        return {"id": "msg_" + uuid.uuid4().hex[:24], "type": "message", "role": "assistant",
                "model": self.model, "content": content,
                "stop_reason": "tool_use" if calls else "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": 1200, "output_tokens": 30}}

    @staticmethod
    def _event(name: str, data: dict) -> bytes:
        return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    def _start(self) -> bytes:
        return self._event("message_start", {"type": "message_start", "message": {
            "id": "msg_" + uuid.uuid4().hex[:24], "type": "message", "role": "assistant",
            "model": self.model, "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 1200, "output_tokens": 1,
                      "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}}})

    def _end(self, stop: str, output: int) -> list[bytes]:
        return [self._event("message_delta", {
                    "type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": output}}),
                self._event("message_stop", {"type": "message_stop"})]

    def say(self, text: str) -> list[bytes]:
        pieces = self.pieces(text)
        return ([self._start(), self._event("content_block_start", {
                    "type": "content_block_start", "index": 0,
                    "content_block": {"type": "text", "text": ""}})]
                + [self._event("content_block_delta", {
                    "type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": p}}) for p in pieces]
                + [self._event("content_block_stop", {"type": "content_block_stop", "index": 0})]
                + self._end("end_turn", len(pieces)))

    def call(self, calls: list[Call]) -> list[bytes]:
        out = [self._start()]
        for i, c in enumerate(calls):
            args = orjson.dumps(c.args).decode()
            cut = len(args) // 2
            out += [self._event("content_block_start", {
                        "type": "content_block_start", "index": i, "content_block": {
                            "type": "tool_use", "id": "toolu_" + uuid.uuid4().hex[:24],
                            "name": c.name, "input": {}}})]
            out += [self._event("content_block_delta", {
                        "type": "content_block_delta", "index": i,
                        "delta": {"type": "input_json_delta", "partial_json": part}})
                    for part in (args[:cut], args[cut:])]
            out += [self._event("content_block_stop", {"type": "content_block_stop", "index": i})]
        return out + self._end("tool_use", 30)
