"""Gemini `generateContent` entry: client JSON ⇄ IR (sans-IO).

The model and the stream flag come from the URL (`/v1beta/models/{model}:{action}`); the body
is a `GenerateContentRequest` in either field spelling (see `fields.get`). `decode` validates
what the IR needs and names the offending field in a 400 (`contents[2].parts[0].functionCall.
name`); unknown parts (`executableCode`, `fileData` that is not an image …) and server tools
(`googleSearch`, `codeExecution` …) are dropped with a log line naming only their kind.

Function calls without an `id` get one (`call_<content>_<part>`); a `functionResponse` answers
the call of the preceding model turn with its `id`, else the first unanswered call of its
`name`, else the first unanswered call; a response that answers nothing becomes user text, and a
call left unanswered by the next user turn gets an error result ("no result"), since every
provider requires one result per call.
"""
from __future__ import annotations

import logging
from typing import Any

import orjson

from ... import ir
from ...errors import GatewayError, InvalidRequest
from ...jsonfields import Bad as _Bad, array_at as _list, number_at as _number, obj_at as _dict
from .fields import (DUMMY_SIGNATURES, PROTOCOL, PendingSignatures, error_object, finish_reason,
                     get, lower_types, open_envelope,
                     openapi_to_json_schema, signed, usage_metadata)

log = logging.getLogger("ferryllm.translate")

_MODES = {"AUTO": "auto", "ANY": "any", "NONE": "none", "VALIDATED": "auto",
          "MODE_UNSPECIFIED": "auto"}
_LEVELS = {"minimal": "minimal", "low": "low", "medium": "medium", "high": "high"}
_SERVER_TOOLS = ("googleSearch", "googleSearchRetrieval", "codeExecution", "urlContext",
                 "computerUse", "fileSearch", "googleMaps", "retrieval", "enterpriseWebSearch")
NO_RESULT = "no result"


class Context:
    """What the entry keeps of a request to shape its answers (`Request.entry_context`): thought
    parts are sent only when the client asked for them (`thinkingConfig.includeThoughts`), as
    the real API does (signatures travel either way); `array`: the stream is one JSON array
    (`streamGenerateContent` without `?alt=sse`) instead of server-sent events."""

    __slots__ = ("include_thoughts", "array")

    def __init__(self, include_thoughts: bool = False, array: bool = False) -> None:
        self.include_thoughts = include_thoughts
        self.array = array


def include_thoughts(req: ir.Request | None) -> bool:
    ctx = req.entry_context if req is not None else None
    return ctx.include_thoughts if isinstance(ctx, Context) else True


def _str(value: Any, *path: str | int) -> str:
    if not isinstance(value, str):
        raise _Bad("must be a string", *path)
    return value


def _int(value: Any, *path: str | int) -> int:
    if isinstance(value, str) and value.lstrip("-").isdigit():
        value = int(value)  # protobuf JSON writes int64 as a string
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad("must be an integer", *path)
    return value


# ---------------------------------------------------------------- contents


def _result_content(response: Any) -> tuple[list[ir.TextBlock], bool]:
    """A functionResponse's `response` object → result text and whether it is an error. The
    Gemini CLI sends `{"output": …}` or `{"error": …}`; anything else goes as its JSON."""
    if response is None:
        return [], False
    keys = response.keys()
    if len(keys) == 1:
        value = response.get("output", response.get("error"))
        if isinstance(value, str):
            return ([ir.TextBlock(value)] if value else []), "error" in response
    return [ir.TextBlock(orjson.dumps(response).decode())], "error" in response


class _Contents:
    """One pass over `contents`, pairing function responses with the calls before them."""

    def __init__(self) -> None:
        self.messages: list[ir.Message] = []
        self.pending: list[tuple[str, str]] = []  # (id, name) of unanswered calls

    def decode(self, contents: list) -> list[ir.Message]:
        for ci, content in enumerate(contents):
            try:
                self._content(ci, _dict(content))
            except _Bad as bad:
                raise bad.at("contents", ci) from None
        return self.messages

    def _content(self, ci: int, content: dict) -> None:
        role = content.get("role")
        if role is None or role == "function":
            role = "user"
        elif role not in ("user", "model"):
            raise _Bad("must be 'user' or 'model'", "role")
        parts = content.get("parts")
        if parts is None:
            parts = []
        model = role == "model"
        if model:
            self._unanswered()
        blocks: list[ir.Block] = []
        for pi, part in enumerate(_list(parts, "parts")):
            try:
                self._part(ci, pi, _dict(part), model, blocks)
            except _Bad as bad:
                raise bad.at("parts", pi) from None
        if not model:
            self._unanswered(blocks)
        if blocks:
            self.messages.append(ir.Message("assistant" if model else "user", blocks))

    def _unanswered(self, blocks: list[ir.Block] | None = None) -> None:
        """Calls nobody answered get an error result in the next user turn (or before the next
        model turn)."""
        if not self.pending:
            return
        results = [ir.ToolResultBlock(cid, [ir.TextBlock(NO_RESULT)], True)
                   for cid, _ in self.pending]
        self.pending = []
        if blocks is not None:
            blocks[:0] = results
        else:
            self.messages.append(ir.Message("user", results))

    def _part(self, ci: int, pi: int, part: dict, model: bool, out: list[ir.Block]) -> None:
        sig = get(part, "thoughtSignature")
        if sig is not None:
            sig = _str(sig, "thoughtSignature")
            if sig in DUMMY_SIGNATURES or not sig:
                sig = None
            else:
                carried = open_envelope(sig)
                if carried is not None:
                    _drop_shown(out, carried)
                    out.extend(carried)
                    sig = None
        tagged = ir.tag_signature(PROTOCOL, sig) if sig else None
        text = part.get("text")
        if text is not None:
            text = _str(text, "text")
            if part.get("thought") is True:
                if text or tagged:
                    out.append(ir.ThinkingBlock(thinking=text, signature=tagged))
                return
            if tagged:
                out.append(ir.ThinkingBlock(signature=tagged))
            if text:
                out.append(ir.TextBlock(text))
            return
        if tagged:
            out.append(ir.ThinkingBlock(signature=tagged))
        call = get(part, "functionCall")
        if call is not None:
            call = _dict(call, "functionCall")
            name = _str(call.get("name"), "functionCall", "name")
            args = call.get("args")
            args = {} if args is None else _dict(args, "functionCall", "args")
            cid = call.get("id")
            cid = f"call_{ci}_{pi}" if cid is None or cid == "" else _str(cid, "functionCall", "id")
            out.append(ir.ToolUseBlock(cid, name, args))
            if model:
                self.pending.append((cid, name))
            return
        response = get(part, "functionResponse")
        if response is not None:
            out.append(self._response(_dict(response, "functionResponse")))
            return
        data = get(part, "inlineData")
        if data is not None:
            data = _dict(data, "inlineData")
            mime = _str(get(data, "mimeType"), "inlineData", "mimeType")
            if mime.startswith("image/"):
                out.append(ir.ImageBlock(media_type=mime,
                                         data=_str(data.get("data"), "inlineData", "data")))
            else:
                log.debug("dropped inline data of a non-image type")
            return
        file = get(part, "fileData")
        if file is not None:
            file = _dict(file, "fileData")
            mime = get(file, "mimeType")
            if isinstance(mime, str) and mime.startswith("image/"):
                out.append(ir.ImageBlock(url=_str(get(file, "fileUri"), "fileData", "fileUri")))
            else:
                log.debug("dropped file data of a non-image type")
            return
        log.debug("dropped a part with fields %s", ",".join(k[:32] for k in list(part)[:4]))

    def _response(self, response: dict) -> ir.Block:
        name = response.get("name")
        if name is not None:
            _str(name, "functionResponse", "name")
        rid = response.get("id")
        if rid is not None:
            _str(rid, "functionResponse", "id")
        body = response.get("response")
        if body is not None:
            _dict(body, "functionResponse", "response")
        content, is_error = _result_content(body)
        parts = response.get("parts")
        if parts is not None:
            for i, part in enumerate(_list(parts, "functionResponse", "parts")):
                data = get(_dict(part, "functionResponse", "parts", i), "inlineData")
                if isinstance(data, dict):
                    mime, raw = get(data, "mimeType"), data.get("data")
                    if isinstance(mime, str) and mime.startswith("image/") and isinstance(raw, str):
                        content.append(ir.ImageBlock(media_type=mime, data=raw))
        pending = self.pending
        match = next((i for i, (cid, _) in enumerate(pending) if rid and cid == rid), None)
        if match is None:
            match = next((i for i, (_, n) in enumerate(pending) if n == name), None)
        if match is None and pending and not rid:
            match = 0
        if match is None:  # answers no call: what it said is still worth keeping
            text = "".join(b.text for b in content if b.type == "text")
            return ir.TextBlock(f"[result of {name or 'a function'}]: {text}")
        cid, _ = pending.pop(match)
        return ir.ToolResultBlock(cid, content, is_error)


def _drop_shown(out: list[ir.Block], carried: list[ir.ThinkingBlock]) -> None:
    """An envelope repeats thinking the client may also have kept as thought parts right before:
    those unsigned copies go."""
    texts = {b.thinking for b in carried if b.thinking}
    while out and out[-1].type == "thinking" and not signed(out[-1]) and out[-1].thinking in texts:
        out.pop()


def _system(raw: Any) -> list[ir.TextBlock]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [ir.TextBlock(raw)] if raw else []
    parts = _dict(raw, "systemInstruction").get("parts") or []
    out = []
    for i, part in enumerate(_list(parts, "systemInstruction", "parts")):
        text = _dict(part, "systemInstruction", "parts", i).get("text")
        if text is not None and _str(text, "systemInstruction", "parts", i, "text"):
            out.append(ir.TextBlock(text))
    return out


# ---------------------------------------------------------------- tools, config


def _declaration(decl: Any, *path: str | int) -> ir.Tool:
    decl = _dict(decl, *path)
    name = _str(decl.get("name"), *path, "name")
    description = decl.get("description")
    if description is not None:
        _str(description, *path, "description")
    schema = get(decl, "parametersJsonSchema")
    params = decl.get("parameters")
    if schema is not None and params is not None:
        raise _Bad("parameters and parametersJsonSchema cannot both be set", *path)
    if schema is not None:
        schema = lower_types(_dict(schema, *path, "parametersJsonSchema"))
    elif params is not None:
        try:
            schema = openapi_to_json_schema(params)
        except ValueError as exc:
            raise _Bad(str(exc), *path, "parameters") from None
    else:
        schema = {"type": "object", "properties": {}}
    return ir.Tool(name, description, schema)


def _tools(raw: Any) -> list[ir.Tool]:
    if raw is None:
        return []
    out = []
    for i, tool in enumerate(_list(raw, "tools")):
        tool = _dict(tool, "tools", i)
        decls = get(tool, "functionDeclarations")
        if decls is not None:
            for j, decl in enumerate(_list(decls, "tools", i, "functionDeclarations")):
                out.append(_declaration(decl, "tools", i, "functionDeclarations", j))
        for kind in _SERVER_TOOLS:
            if get(tool, kind) is not None:
                log.info("dropped server tool %s", kind)
    return out


def _tool_choice(raw: Any) -> ir.ToolChoice | None:
    if raw is None:
        return None
    config = get(_dict(raw, "toolConfig"), "functionCallingConfig")
    if config is None:
        return None
    config = _dict(config, "toolConfig", "functionCallingConfig")
    mode = config.get("mode") or "AUTO"
    kind = _MODES.get(mode.upper() if isinstance(mode, str) else mode)
    if kind is None:
        raise _Bad("must be AUTO, ANY, NONE or VALIDATED", "toolConfig", "functionCallingConfig",
                   "mode")
    names = get(config, "allowedFunctionNames")
    if names is not None:
        names = _list(names, "toolConfig", "functionCallingConfig", "allowedFunctionNames")
        if kind == "any" and len(names) == 1 and isinstance(names[0], str):
            return ir.ToolChoice("tool", names[0])
    return ir.ToolChoice(kind)


def _reasoning(raw: Any) -> ir.Reasoning | None:
    if raw is None:
        return None
    config = _dict(raw, "generationConfig", "thinkingConfig")
    budget = get(config, "thinkingBudget")
    level = get(config, "thinkingLevel")
    if level is not None:
        effort = _LEVELS.get(_str(level, "generationConfig", "thinkingConfig",
                                  "thinkingLevel").lower())
        if effort is not None:
            return ir.Reasoning(effort=effort)
    if budget is not None:
        budget = _int(budget, "generationConfig", "thinkingConfig", "thinkingBudget")
        if budget == 0:
            return ir.Reasoning(enabled=False)
        if budget < 0:
            return ir.Reasoning(adaptive=True)
        return ir.Reasoning(budget_tokens=budget)
    if get(config, "includeThoughts") is True:
        return ir.Reasoning(adaptive=True)
    return None


def _response_format(config: dict) -> dict | None:
    mime = get(config, "responseMimeType")
    schema = get(config, "responseJsonSchema")
    if schema is None:
        schema = get(config, "responseSchema")
        if schema is not None:
            try:
                schema = openapi_to_json_schema(schema)
            except ValueError as exc:
                raise _Bad(str(exc), "generationConfig", "responseSchema") from None
    elif isinstance(schema, dict):
        schema = lower_types(schema)
    else:
        raise _Bad("must be an object", "generationConfig", "responseJsonSchema")
    if schema is not None:
        return {"type": "json_schema", "name": "response", "schema": schema}
    if mime == "application/json":
        return {"type": "json_object"}
    return None


def _generation(req: ir.Request, raw: Any) -> None:
    if raw is None:
        return
    config = _dict(raw, "generationConfig")
    count = get(config, "candidateCount")
    if count is not None and _int(count, "generationConfig", "candidateCount") > 1:
        raise _Bad("only 1 candidate is supported by ferryllm", "generationConfig",
                   "candidateCount")
    max_tokens = get(config, "maxOutputTokens")
    if max_tokens is not None:
        req.max_tokens = _int(max_tokens, "generationConfig", "maxOutputTokens")
        if req.max_tokens < 1:
            raise _Bad("must be a positive integer", "generationConfig", "maxOutputTokens")
    for name, attr in (("temperature", "temperature"), ("topP", "top_p")):
        value = get(config, name)
        if value is not None:
            setattr(req, attr, _number(value, "generationConfig", name))
    top_k = get(config, "topK")
    if top_k is not None:
        req.top_k = int(_number(top_k, "generationConfig", "topK"))
    stop = get(config, "stopSequences")
    if stop is not None:
        for i, s in enumerate(_list(stop, "generationConfig", "stopSequences")):
            _str(s, "generationConfig", "stopSequences", i)
        req.stop = list(stop)
    thinking = get(config, "thinkingConfig")
    req.reasoning = _reasoning(thinking)
    req.entry_context.include_thoughts = (isinstance(thinking, dict)
                                          and get(thinking, "includeThoughts") is True)
    req.response_format = _response_format(config)


# ---------------------------------------------------------------- requests


def decode(body: Any, model: str, *, stream: bool) -> ir.Request:
    """A `GenerateContentRequest` body and the model from the URL → IR. Raises
    `InvalidRequest` naming the field."""
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    model = model.removeprefix("models/")
    if not model:
        raise InvalidRequest("the model in the URL must not be empty", param="model")
    try:
        if get(body, "cachedContent") is not None:
            raise _Bad("cached contents are not supported by ferryllm", "cachedContent")
        contents = body.get("contents")
        if contents is None:
            raise _Bad("required", "contents")
        _list(contents, "contents")
        req = ir.Request(model=model, messages=_Contents().decode(contents),
                         system=_system(get(body, "systemInstruction")),
                         tools=_tools(body.get("tools")),
                         tool_choice=_tool_choice(get(body, "toolConfig")), stream=stream,
                         native_protocol=PROTOCOL, native=body, entry_context=Context())
        _generation(req, get(body, "generationConfig"))
    except _Bad as bad:
        raise bad.indexed() from None
    return req


def decode_count_tokens(body: Any, model: str) -> ir.Request:
    """A `countTokens` body: `contents`, or a whole `generateContentRequest`."""
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    inner = get(body, "generateContentRequest")
    if inner is not None:
        req = decode(inner, model, stream=False)
    else:
        req = decode({"contents": body.get("contents", [])}, model, stream=False)
    req.native = body
    return req


# ---------------------------------------------------------------- responses


def encode_parts(blocks: list[ir.Block], thoughts: bool = True) -> list[dict]:
    """IR blocks → Gemini parts: thinking as thought parts, a signature on the next part that
    is not a thought (`fields.PendingSignatures`), a tool call as one `functionCall` with its id."""
    parts: list[dict] = []
    pending = PendingSignatures()
    for block in blocks:
        kind = block.type
        if kind == "thinking":
            if thoughts and block.thinking and not block.redacted:
                parts.append({"text": block.thinking, "thought": True})
            if signed(block):
                pending.blocks.append(block)
            continue
        if kind == "text":
            part: dict[str, Any] = {"text": block.text}
        elif kind == "tool_use":
            part = {"functionCall": {"id": block.id, "name": block.name,
                                     "args": block.input}}
        else:
            log.debug("dropped %s block from a response", kind)
            continue
        sig = pending.take()
        if sig:
            part["thoughtSignature"] = sig
        parts.append(part)
    sig = pending.take()
    if sig:
        parts.append({"text": "", "thoughtSignature": sig})
    return parts


def encode_response(resp: ir.Response, display_model: str, req: ir.Request | None = None) -> dict:
    """IR answer → `GenerateContentResponse` (thought parts when `req` asked for them)."""
    parts = encode_parts(resp.content, include_thoughts(req))
    return {"candidates": [{"content": {"parts": parts, "role": "model"},
                            "finishReason": finish_reason(resp.stop_reason), "index": 0}],
            "usageMetadata": usage_metadata(resp.usage), "modelVersion": display_model,
            "responseId": resp.id}


def encode_models(rows: list[dict]) -> dict:
    return {"models": [{"name": f"models/{r['id']}", "baseModelId": r["id"], "version": "001",
                        "displayName": r["id"], "description": f"routed to {r['owned_by']}",
                        "supportedGenerationMethods": ["generateContent",
                                                       "streamGenerateContent", "countTokens"]}
                       for r in rows]}


def error_body(err: GatewayError) -> bytes:
    message = getattr(err, "message", None) or str(err)
    return orjson.dumps(error_object(err.status, message))
