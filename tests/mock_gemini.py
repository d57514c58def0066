"""A Gemini API mock (generativelanguage.googleapis.com, `v1beta` and `v1`) on 127.0.0.1.

It answers the way the real API does, so that the real Gemini CLI and the google-genai SDK accept
it when pointed straight at it, and it rejects what the real API rejects, so a request ferryllm
builds is proven against more than a JSON parser:

- `POST /{v}/models/{model}:streamGenerateContent?alt=sse`: one `data: <one-line JSON>` frame per
  chunk, `\\r\\n\\r\\n` separators, no `[DONE]`; every chunk carries `usageMetadata`, `modelVersion`
  and `responseId`; the last one the `finishReason` and the full counts. Without `alt=sse` the
  chunks come as one JSON array, as the real API streams them.
- `POST …:generateContent` (one JSON response), `POST …:countTokens` (never a generation),
  `GET /{v}/models` and `GET /{v}/models/{model}`.
- The key comes as `x-goog-api-key` or `?key=`; none → 403 `PERMISSION_DENIED`, a wrong one → 400
  `API_KEY_INVALID`. Errors use Google's body `{"error": {"code", "message", "status"}}`.
- Requests are checked (`tests/mock_gemini_rules.py`): unknown field names (both spellings of a
  known one are fine), empty contents or parts, bad roles, function call / response count
  mismatches, missing or foreign thought signatures on replayed calls (3.x models), tools.

Answers come from a script (`mock.then(turn, …)`), else from `mock.plan(body)`, else a default
text. A `Turn` lists the parts the model says; the mock puts a fresh thought signature on the
first function call of a turn (on the last text part of a text-only turn when thinking is on),
as Gemini 2.5 and 3 do, and remembers the signatures it issued.
"""
from __future__ import annotations

import asyncio
import base64
import itertools
import os
from dataclasses import dataclass, field
from typing import Any, Callable

import orjson
from aiohttp import web

from tests.mock_gemini_rules import GeminiReject, check_request, snake_get

SSE_SEP = b"\r\n\r\n"
DEFAULT_MODELS = ("gemini-2.5-pro", "gemini-2.5-flash", "gemini-3-pro-preview",
                  "gemini-3.1-pro-preview", "gemini-3-flash-preview")
SKIP_SIGNATURES = frozenset({"skip_thought_signature_validator",
                             "context_engineering_is_the_way_to_go"})


@dataclass
class Turn:
    """What the model answers: parts as the API spells them, and how the turn ends."""
    parts: list[dict] = field(default_factory=list)
    finish: str = "STOP"
    thought: str | None = None  # a thought summary sent first (`thought: true`)
    prompt_tokens: int | None = None  # default: the request's size / 4
    output_tokens: int | None = None  # default: the parts' size / 4
    thoughts_tokens: int = 0
    cached_tokens: int = 0
    status: int = 200  # != 200: answer Google's error body instead
    error_status: str = "INTERNAL"
    error_message: str = "Internal error encountered."
    error_after: int | None = None  # stream: one in-band error frame after this many chunks
    gap: float = 0.0  # pause between chunks


def text(value: str, **kw) -> Turn:
    return Turn(parts=[{"text": value}], **kw)


def calls(*pairs: tuple[str, dict] | dict, **kw) -> Turn:
    """`calls(("run_shell_command", {"command": "ls"}), …)`: one functionCall part each; a dict
    is taken as the functionCall object itself (to give an `id`)."""
    parts = [{"functionCall": p if isinstance(p, dict) else {"name": p[0], "args": p[1]}}
             for p in pairs]
    return Turn(parts=parts, **kw)


def error_body(code: int, status: str, message: str, details: list | None = None) -> dict:
    err: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        err["details"] = details
    return {"error": err}


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None

    @property
    def model(self) -> str:
        return self.path.rsplit("/", 1)[-1].split(":", 1)[0]

    @property
    def method_name(self) -> str:
        return self.path.rsplit(":", 1)[-1] if ":" in self.path else ""


class GeminiMock:
    def __init__(self, *, api_key: str | None = None, default: Turn | None = None,
                 plan: Callable[[dict, str], Turn | None] | None = None,
                 models: tuple[str, ...] = DEFAULT_MODELS) -> None:
        self.api_key = api_key  # None: any non-empty key is accepted
        self.default = default or text("Hello from the Gemini mock.")
        self.plan = plan  # (body, model) -> Turn, consulted when the script is empty
        self.models = models
        self.script: list[Turn] = []
        self.received: list[Received] = []
        self.rejected: list[tuple[Received, str]] = []  # (request, message) of every 4xx
        self.issued: set[str] = set()  # thought signatures this mock handed out
        self._ids = itertools.count(1)

    def then(self, *turns: Turn) -> "GeminiMock":
        self.script.extend(turns)
        return self

    @property
    def generations(self) -> list[Received]:
        return [r for r in self.received if r.method_name in ("generateContent",
                                                              "streamGenerateContent")]

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    # ------------------------------------------------------------------ dispatch

    async def handle(self, request: web.Request) -> web.StreamResponse:
        got = Received(request.method, request.path, dict(request.query),
                       dict(request.headers), await request.read())
        self.received.append(got)
        try:
            self._authenticate(request)
            return await self._route(request, got)
        except GeminiReject as exc:
            self.rejected.append((got, exc.message))
            return web.json_response(error_body(exc.code, exc.status, exc.message, exc.details),
                                     status=exc.code)

    def _authenticate(self, request: web.Request) -> None:
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if not key:
            raise GeminiReject(403, "Method doesn't allow unregistered callers (callers without "
                               "established identity). Please use API Key or other form of API "
                               "consumer identity to call this API.", "PERMISSION_DENIED")
        if self.api_key is not None and key != self.api_key:
            raise GeminiReject(400, "API key not valid. Please pass a valid API key.", details=[{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                "domain": "googleapis.com"}])

    async def _route(self, request: web.Request, got: Received) -> web.StreamResponse:
        parts = request.path.strip("/").split("/")
        if len(parts) < 2 or parts[0] not in ("v1beta", "v1") or parts[1] != "models":
            raise GeminiReject(404, f"Method not found: {request.path}", "NOT_FOUND")
        if request.method == "GET" and len(parts) == 2:
            return web.json_response({"models": [self._model_info(m) for m in self.models]})
        if len(parts) != 3:
            raise GeminiReject(404, f"Method not found: {request.path}", "NOT_FOUND")
        model, _, method = parts[2].partition(":")
        if request.method == "GET" and not method:
            if model not in self.models:
                raise GeminiReject(404, f"models/{model} is not found for API version "
                                   f"{parts[0]}", "NOT_FOUND")
            return web.json_response(self._model_info(model))
        if request.method != "POST" or method not in ("generateContent", "streamGenerateContent",
                                                      "countTokens"):
            raise GeminiReject(404, f"Method not found: {request.path}", "NOT_FOUND")
        try:
            body = orjson.loads(got.body)
        except orjson.JSONDecodeError:
            raise GeminiReject(400, "Invalid JSON payload received.") from None
        if not isinstance(body, dict):
            raise GeminiReject(400, "Invalid JSON payload received. Expected an object.")
        if method == "countTokens":
            return web.json_response(self._count(body, model))
        check_request(body, model, self.issued | SKIP_SIGNATURES)
        turn = self._next_turn(body, model)
        if turn.status != 200:
            raise GeminiReject(turn.status, turn.error_message, turn.error_status)
        chunks = self._chunks(turn, body, model)
        if method == "generateContent":
            return web.json_response(self._merge(chunks))
        return await self._stream(request, chunks, turn)

    def _next_turn(self, body: dict, model: str) -> Turn:
        if self.script:
            return self.script.pop(0)
        if self.plan is not None:
            planned = self.plan(body, model)
            if planned is not None:
                return planned
        return self.default

    # ------------------------------------------------------------------ answers

    def _model_info(self, model: str) -> dict:
        return {"name": f"models/{model}", "version": "001", "displayName": model,
                "description": "A Gemini model served by the ferryllm test mock.",
                "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
                "supportedGenerationMethods": ["generateContent", "countTokens"],
                "temperature": 1.0, "topP": 0.95, "topK": 64, "maxTemperature": 2.0,
                "thinking": True}

    def _count(self, body: dict, model: str) -> dict:
        inner = snake_get(body, "generateContentRequest") or body
        size = len(orjson.dumps(snake_get(inner, "contents") or []))
        if snake_get(inner, "systemInstruction"):
            size += len(orjson.dumps(snake_get(inner, "systemInstruction")))
        tokens = max(1, size // 4)
        return {"totalTokens": tokens,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": tokens}]}

    def signature(self) -> str:
        sig = base64.b64encode(b"ferry-mock-signature:" + os.urandom(12)).decode()
        self.issued.add(sig)
        return sig

    def _chunks(self, turn: Turn, body: dict, model: str) -> list[dict]:
        """The turn as the API streams it: thought, text in pieces, calls whole in one chunk."""
        config = snake_get(body, "generationConfig") or {}
        thinking = snake_get(config, "thinkingConfig") or {}
        pieces: list[list[dict]] = []
        if turn.thought is not None and snake_get(thinking, "includeThoughts"):
            pieces.append([{"text": turn.thought, "thought": True}])
        texts = [p for p in turn.parts if "text" in p]
        call_parts = [dict(p) for p in turn.parts if "functionCall" in p]
        for part in texts:
            words = part["text"].split(" ")
            cut = max(1, len(words) // 2)
            halves = [" ".join(words[:cut]), " ".join(words[cut:])]
            halves = [halves[0] + (" " if halves[1] else ""), halves[1]]
            pieces += [[{**part, "text": h}] for h in halves if h]
        if call_parts:
            call_parts[0]["thoughtSignature"] = self.signature()
            pieces.append(call_parts)
        elif pieces and (turn.thought is not None or model.startswith("gemini-3")):
            pieces[-1][-1] = {**pieces[-1][-1], "thoughtSignature": self.signature()}
        prompt = turn.prompt_tokens if turn.prompt_tokens is not None else max(
            1, len(orjson.dumps(snake_get(body, "contents") or [])) // 4)
        output = turn.output_tokens if turn.output_tokens is not None else max(
            1, len(orjson.dumps(turn.parts)) // 4)
        response_id = f"mock-{next(self._ids)}"
        out = []
        for i, parts in enumerate(pieces or [[]]):
            last = i == max(len(pieces), 1) - 1
            candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
            if not parts:
                candidate["content"] = {"role": "model"}
            usage: dict[str, Any] = {"promptTokenCount": prompt, "totalTokenCount": prompt,
                                     "promptTokensDetails": [{"modality": "TEXT",
                                                              "tokenCount": prompt}]}
            if last:
                candidate["finishReason"] = turn.finish
                usage = {"promptTokenCount": prompt, "candidatesTokenCount": output,
                         "totalTokenCount": prompt + output + turn.thoughts_tokens,
                         "promptTokensDetails": usage["promptTokensDetails"]}
                if turn.thoughts_tokens:
                    usage["thoughtsTokenCount"] = turn.thoughts_tokens
                if turn.cached_tokens:
                    usage["cachedContentTokenCount"] = turn.cached_tokens
            out.append({"candidates": [candidate], "usageMetadata": usage,
                        "modelVersion": model, "responseId": response_id})
        return out

    @staticmethod
    def _merge(chunks: list[dict]) -> dict:
        """The non-streaming answer: every chunk's parts in one candidate, the last usage."""
        parts = [p for c in chunks for p in c["candidates"][0]["content"].get("parts", [])]
        last = chunks[-1]
        candidate = {**last["candidates"][0], "content": {"parts": parts, "role": "model"}}
        return {**last, "candidates": [candidate]}

    async def _stream(self, request: web.Request, chunks: list[dict],
                      turn: Turn) -> web.StreamResponse:
        if request.query.get("alt") != "sse":  # the JSON-array stream of the real API
            return web.Response(body=orjson.dumps(chunks), content_type="application/json")
        resp = web.StreamResponse(headers={"content-type": "text/event-stream",
                                           "x-content-type-options": "nosniff"})
        await resp.prepare(request)
        for i, chunk in enumerate(chunks):
            if turn.error_after is not None and i == turn.error_after:
                await resp.write(b"data: " + orjson.dumps(error_body(
                    turn.status if turn.status != 200 else 500, turn.error_status,
                    turn.error_message)) + SSE_SEP)
                break
            await resp.write(b"data: " + orjson.dumps(chunk) + SSE_SEP)
            if turn.gap:
                await asyncio.sleep(turn.gap)
        await resp.write_eof()
        return resp
