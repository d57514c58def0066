"""Gemini provider adapter (`type = "gemini"`): IR ⇄ `generateContent` JSON (sans-IO).

URL: `{base_url}/v1beta/models/{backend_model}:streamGenerateContent?alt=sse` (or
`:generateContent`, `:countTokens`), the model percent-escaped as one path segment so no model
name can change the path or the query; the key goes in `x-goog-api-key`.

Two ways to build the body:
- pass-through, when the client spoke Gemini too: its body as it came (the model is in the URL),
  `maxOutputTokens` capped by the provider's `max_tokens_cap`;
- encoded from the IR otherwise, see `_Contents`: same-role contents merged (a mid-conversation
  system message is user text); each model turn's calls answered by one user content whose
  `functionResponse` parts come first; thinking signed by a Gemini provider goes back as a thought
  part with its signature, a carrier's signature onto the part after it (or the turn's last part),
  thinking from other providers is dropped; the first call of a model turn that has no signature
  gets `skip_thought_signature_validator`; tools as `parametersJsonSchema` (names a backend would
  reject shortened, `ferryllm.toolnames`).

Reasoning → `thinkingConfig`: Gemini 3 and later take `thinkingLevel` (an effort, or the effort a
budget stands for), earlier models `thinkingBudget` (the budget, or the effort's budget from
`ir.EFFORT_BUDGETS`; adaptive → -1, disabled → 0); `includeThoughts` whenever reasoning is on, so
thought summaries reach the client as thinking.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Mapping
from urllib.parse import quote

import orjson

from ... import USER_AGENT, ir
from ...config import ProviderConfig
from ...errors import GatewayError, UpstreamProtocolError, from_upstream, retry_after_header
from ...jsonfields import split_data_url
from ...toolnames import ToolNames, shorten
from .adapter_stream import Parts, StreamDecoder, call_id_prefix, candidate_error
from .fields import (PROTOCOL, RETRY_REASONS, SKIP_SIGNATURE, STATUS_CODES, STOP_REASONS, get,
                     thought_signature, usage_from)

log = logging.getLogger("ferryllm.translate")

MAX_STOP_SEQUENCES = 5
_MAJOR = re.compile(r"gemini-(\d+)")
_LEVELS_PRO = {"minimal": "low", "low": "low", "medium": "high", "high": "high",
               "xhigh": "high", "max": "high"}
_LEVELS_FLASH = {"minimal": "minimal", "low": "low", "medium": "medium", "high": "high",
                 "xhigh": "high", "max": "high"}
_MODES = {"auto": "AUTO", "any": "ANY", "tool": "ANY", "none": "NONE"}


def uses_levels(model: str) -> bool:
    """Gemini 3 and later think by level; 2.x (and unknown models) by budget."""
    m = _MAJOR.search(model)
    return m is not None and int(m.group(1)) >= 3


def thinking_config(reasoning: ir.Reasoning | None, model: str) -> dict | None:
    if reasoning is None:
        return None
    levels = uses_levels(model)
    if not reasoning.enabled:
        if levels:
            return {"thinkingLevel": "minimal" if "flash" in model else "low"}
        return {"thinkingBudget": 0}
    effort = reasoning.effort
    budget = reasoning.budget_tokens
    if levels:
        if effort is None and budget is not None:
            effort = ir.budget_effort(budget)
        config: dict[str, Any] = {"includeThoughts": True}
        if effort is not None:
            table = _LEVELS_FLASH if "flash" in model else _LEVELS_PRO
            config["thinkingLevel"] = table.get(effort, "high")
        return config
    if budget is None:
        budget = ir.EFFORT_BUDGETS.get(effort, -1) if effort else -1
    return {"thinkingBudget": budget, "includeThoughts": True}


def _image(block: ir.ImageBlock) -> dict | None:
    if block.data is not None:
        return {"inlineData": {"mimeType": block.media_type or "image/png", "data": block.data}}
    parts = split_data_url(block.url or "")
    if parts is not None:
        return {"inlineData": {"mimeType": parts[0] or "image/png", "data": parts[1]}}
    log.debug("dropped an image given by URL (Gemini takes inline data)")
    return None


def _result(block: ir.ToolResultBlock, name: str) -> tuple[dict, list[dict]]:
    """A tool result → its functionResponse part and the image parts that follow it."""
    texts = [b.text for b in block.content if b.type == "text"]
    images = [p for p in (_image(b) for b in block.content if b.type == "image") if p]
    text = "\n".join(texts)
    response = {"error": text} if block.is_error else {"output": text}
    return ({"functionResponse": {"id": block.tool_use_id, "name": name,
                                  "response": response}}, images)


class _Contents:
    """IR messages → Gemini `contents`."""

    def __init__(self) -> None:
        self.call_names: dict[str, str] = {}  # call id → the name sent (for its response)
        self.out: list[dict] = []

    def build(self, messages: list[ir.Message]) -> list[dict]:
        for msg in messages:
            if msg.role == "assistant":
                parts = self._model(msg.content)
                role = "model"
            else:
                parts = self._user(msg.content)
                role = "user"
            if not parts:
                continue
            if self.out and self.out[-1]["role"] == role:
                self.out[-1]["parts"].extend(parts)
            else:
                self.out.append({"role": role, "parts": parts})
        for content in self.out:
            parts = content["parts"]
            if content["role"] == "user" and len(parts) > 1:
                content["parts"] = ([p for p in parts if "functionResponse" in p]
                                    + [p for p in parts if "functionResponse" not in p])
            elif content["role"] == "model":
                _sign_first_call(parts)
        return self.out

    def _user(self, blocks: list[ir.Block]) -> list[dict]:
        parts: list[dict] = []
        for block in blocks:
            kind = block.type
            if kind == "text":
                if block.text:
                    parts.append({"text": block.text})
            elif kind == "tool_result":
                # the call's name; a result whose call is not in the history still needs one
                name = self.call_names.get(block.tool_use_id, "unknown_function")
                part, images = _result(block, name)
                parts.append(part)
                parts.extend(images)
            elif kind == "image":
                part = _image(block)
                if part:
                    parts.append(part)
        return parts

    def _model(self, blocks: list[ir.Block]) -> list[dict]:
        parts: list[dict] = []
        pending: str | None = None  # a carrier's signature, for the next part
        for block in blocks:
            kind = block.type
            if kind == "thinking":
                raw = thought_signature(block)
                if raw is None:
                    continue  # unsigned, or another kind's: Gemini cannot use it
                if block.thinking:
                    parts.append({"text": block.thinking, "thought": True,
                                  "thoughtSignature": raw})
                else:
                    pending = raw
                continue
            if kind == "text":
                if not block.text:
                    continue
                part: dict[str, Any] = {"text": block.text}
            elif kind == "tool_use":
                name = shorten(block.name)
                self.call_names[block.id] = name
                part = {"functionCall": {"id": block.id, "name": name, "args": block.input}}
            else:
                continue
            if pending:
                part["thoughtSignature"], pending = pending, None
            parts.append(part)
        if pending:
            if parts and "thoughtSignature" not in parts[-1]:
                parts[-1]["thoughtSignature"] = pending
            elif not parts:
                parts.append({"text": "", "thoughtSignature": pending})
        return parts


def _sign_first_call(parts: list[dict]) -> None:
    """The real API rejects a model turn whose first function call has no signature."""
    for part in parts:
        if "functionCall" in part:
            part.setdefault("thoughtSignature", SKIP_SIGNATURE)
            return


def _function(tool: ir.Tool) -> dict:
    decl: dict[str, Any] = {"name": shorten(tool.name)}
    if tool.description:
        decl["description"] = tool.description
    if tool.freeform is not None:
        decl["parametersJsonSchema"] = {"type": "object", "properties": {
            "input": {"type": "string", "description": "the raw input"}}, "required": ["input"]}
    else:
        decl["parametersJsonSchema"] = tool.input_schema or {"type": "object", "properties": {}}
    return decl


class GeminiAdapter:
    protocol = PROTOCOL

    def __init__(self, provider: ProviderConfig) -> None:
        self.provider = provider
        self.base = provider.base_url.removesuffix("/v1beta") + "/v1beta/models/"
        headers = {"content-type": "application/json", "user-agent": USER_AGENT}
        if provider.api_key:
            headers["x-goog-api-key"] = provider.api_key
        headers.update(provider.headers)
        self._headers = headers

    def _url(self, model: str, action: str) -> str:
        return self.base + quote(model.removeprefix("models/"), safe="") + action

    def endpoint(self, req: ir.Request) -> str:
        if req.stream:
            return self._url(req.model, ":streamGenerateContent?alt=sse")
        return self._url(req.model, ":generateContent")

    def headers(self, req: ir.Request) -> dict[str, str]:
        return self._headers

    # ------------------------------------------------------------ requests

    def encode_request(self, req: ir.Request) -> bytes:
        if req.native_protocol == self.protocol and req.native is not None:
            return orjson.dumps(self._passthrough(req.native, req))
        return orjson.dumps(self._encode_ir(req))

    def _passthrough(self, native: dict, req: ir.Request) -> dict:
        cap = self.provider.max_tokens_cap
        if not cap:
            return native
        body = dict(native)
        key = "generation_config" if "generation_config" in body else "generationConfig"
        config = dict(body.get(key) or {})
        name = "max_output_tokens" if "max_output_tokens" in config else "maxOutputTokens"
        value = config.get(name)
        config[name] = min(value, cap) if isinstance(value, int) and value > 0 else cap
        body[key] = config
        return body

    def _encode_ir(self, req: ir.Request) -> dict:
        body: dict[str, Any] = {"contents": _Contents().build(req.messages)}
        system = [{"text": b.text} for b in req.system if b.text]
        if system:
            body["systemInstruction"] = {"parts": system}
        if req.tools:
            body["tools"] = [{"functionDeclarations": [_function(t) for t in req.tools]}]
            choice = req.tool_choice
            if choice is not None:
                config: dict[str, Any] = {"mode": _MODES[choice.type]}
                if choice.type == "tool" and choice.name:
                    config["allowedFunctionNames"] = [shorten(choice.name)]
                body["toolConfig"] = {"functionCallingConfig": config}
        generation: dict[str, Any] = {}
        max_tokens = req.max_tokens
        cap = self.provider.max_tokens_cap
        if cap:
            max_tokens = min(max_tokens or cap, cap)
        if max_tokens is not None:
            generation["maxOutputTokens"] = max_tokens
        if req.temperature is not None:
            generation["temperature"] = req.temperature
        if req.top_p is not None:
            generation["topP"] = req.top_p
        if req.top_k is not None:
            generation["topK"] = req.top_k
        if req.stop:
            if len(req.stop) > MAX_STOP_SEQUENCES:
                log.debug("kept the first %d stop sequences", MAX_STOP_SEQUENCES)
            generation["stopSequences"] = req.stop[:MAX_STOP_SEQUENCES]
        fmt = req.response_format
        if fmt:
            generation["responseMimeType"] = "application/json"
            if fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
                generation["responseJsonSchema"] = fmt["schema"]
        thinking = thinking_config(req.reasoning, req.model)
        if thinking is not None:
            generation["thinkingConfig"] = thinking
        if generation:
            body["generationConfig"] = generation
        return body

    # ------------------------------------------------------------ responses

    def decode_response(self, raw: bytes, req: ir.Request) -> ir.Response:
        try:
            data = orjson.loads(raw)
            rid = get(data, "responseId") or ""
            usage = usage_from(get(data, "usageMetadata") or {})
            candidates = data.get("candidates")
            if not candidates:
                feedback = get(data, "promptFeedback") or {}
                if get(feedback, "blockReason"):
                    return ir.Response(rid, req.model, [], ir.REFUSAL, usage=usage)
                raise KeyError("candidates")
            candidate = candidates[0]
            reason = get(candidate, "finishReason")
            if reason in RETRY_REASONS:
                raise candidate_error(reason, self.provider.name)
            names = ToolNames.for_request(req) if req.tools else None
            parts = Parts(names, call_id_prefix(rid))
            events: list = []
            parts.feed((candidate.get("content") or {}).get("parts") or [], events)
            parts.finish(events)
            stop = STOP_REASONS.get(reason, ir.END_TURN)
            if stop == ir.END_TURN and parts.calls:
                stop = ir.TOOL_USE
            return ir.Response(rid, get(data, "modelVersion") or req.model, fold(events), stop,
                               usage=usage)
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise UpstreamProtocolError(
                f"provider '{self.provider.name}' returned a malformed response") from exc

    def decode_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError:
        message = ""
        try:
            data = orjson.loads(body)
            if isinstance(data, list) and data:  # a JSON-array stream's error
                data = data[0]
            error = data["error"]
            message = error.get("message") or ""
            if not isinstance(message, str):
                message = ""
            if not 400 <= status < 600:
                status = STATUS_CODES.get(error.get("status"), 500)
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, IndexError):
            message = body[:500].decode("utf-8", "replace").strip() if body else ""
        return from_upstream(status, message, provider=self.provider.name,
                             retry_after=retry_after_header(headers))

    def stream_decoder(self, req: ir.Request) -> StreamDecoder:
        return StreamDecoder(req, self.provider.name)

    # ------------------------------------------------------------ count tokens

    def count_tokens(self, req: ir.Request) -> tuple[str, bytes]:
        """`:countTokens` with the whole request (`generateContentRequest`, whose `model` the API
        requires): a Gemini client's body as it came (its inner model rewritten), else the IR's."""
        model = "models/" + req.model.removeprefix("models/")
        native = req.native if req.native_protocol == self.protocol else None
        if native is not None:
            inner = get(native, "generateContentRequest")
            if inner is None:
                body = {"contents": native.get("contents", [])}
            else:
                body = {"generateContentRequest": {**inner, "model": model}}
        else:
            inner = self._encode_ir(req)
            inner.pop("generationConfig", None)
            body = {"generateContentRequest": {"model": model, **inner}}
        return self._url(req.model, ":countTokens"), orjson.dumps(body)

    def decode_count_tokens(self, raw: bytes) -> int:
        try:
            count = get(orjson.loads(raw), "totalTokens")
        except (orjson.JSONDecodeError, TypeError, AttributeError):
            count = None
        if isinstance(count, str) and count.isdigit():
            count = int(count)
        if count.__class__ is not int:
            raise UpstreamProtocolError(
                f"provider '{self.provider.name}' returned a malformed token count")
        return count


def fold(events: list) -> list[ir.Block]:
    """Block events of one answer → IR blocks (the JSON path shares the stream's part decoding)."""
    blocks: list[ir.Block] = []
    args: list[str] = []
    for ev in events:
        cls = ev.__class__
        if cls is ir.TextStart:
            blocks.append(ir.TextBlock(""))
        elif cls is ir.TextDelta:
            blocks[-1].text += ev.text
        elif cls is ir.ThinkingStart:
            blocks.append(ir.ThinkingBlock())
        elif cls is ir.ThinkingDelta:
            blocks[-1].thinking += ev.thinking
        elif cls is ir.SignatureDelta:
            blocks[-1].signature = (blocks[-1].signature or "") + ev.signature
        elif cls is ir.ToolUseStart:
            blocks.append(ir.ToolUseBlock(ev.id, ev.name, {}))
            args = []
        elif cls is ir.ToolArgsDelta:
            args.append(ev.partial_json)
        elif cls is ir.BlockStop and blocks[-1].type == "tool_use" and args:
            blocks[-1].input = orjson.loads("".join(args))
            args = []
    return blocks
