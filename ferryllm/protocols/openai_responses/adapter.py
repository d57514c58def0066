"""Providers that speak the OpenAI Responses API (`type = "openai_responses"`): IR ⇄ provider
JSON (sans-IO), `{base_url}/v1/responses`.

Two ways to build the upstream body:
- pass-through, when the client also spoke Responses: the client's body goes on with `model`
  rewritten, `max_output_tokens` capped, the reasoning effort set when the reasoning policy
  changed it, and reasoning items whose `encrypted_content` another kind of provider made (the
  gateway tags those, `fields.foreign_secret`) removed;
- encoded from the IR otherwise: `store: false` (the gateway is stateless), the system prompt as
  `instructions`, mid-conversation system messages as `developer` messages, thinking replayed as
  `reasoning` items by `encrypted_content` only (without item ids: nothing is stored), tool
  results as `function_call_output` (or `custom_tool_call_output` for a freeform tool) with
  `include: ["reasoning.encrypted_content"]` whenever reasoning is on; tool names a backend
  would reject shortened (`ferryllm.toolnames`) and mapped back.

Reasoning → `reasoning: {effort, summary: "auto"}` (IR "max" → "high"; a budget → the lowest
effort that covers it; disabled → nothing). A long `user` goes as a hashed
`safety_identifier`.
"""
from __future__ import annotations

import hashlib
import logging
from typing import Any, Mapping

import orjson

from ... import USER_AGENT, ir
from ...config import ProviderConfig
from ...errors import GatewayError, UpstreamProtocolError, from_upstream, retry_after_header
from ...jsonfields import arguments_json
from ...toolnames import ToolNames, shorten
from .adapter_stream import StreamDecoder, item_blocks, provider_error
from .fields import PROTOCOL, foreign_secret, usage_from_responses

log = logging.getLogger("ferryllm.translate")

EFFORTS = {"minimal": "minimal", "low": "low", "medium": "medium", "high": "high",
           "xhigh": "xhigh", "max": "high"}
ENCRYPTED = "reasoning.encrypted_content"
_CHOICES = {"auto": "auto", "any": "required", "none": "none"}


def effort_for(reasoning: ir.Reasoning | None) -> str | None:
    if reasoning is None or not reasoning.enabled:
        return None  # "none" exists for a few models only: reasoning off is said by silence
    if reasoning.effort:
        return EFFORTS.get(reasoning.effort, "medium")
    if reasoning.budget_tokens is not None:
        return EFFORTS[ir.budget_effort(reasoning.budget_tokens)]
    return None


def _image(block: ir.ImageBlock) -> dict:
    url = block.url if block.data is None else f"data:{block.media_type};base64,{block.data}"
    return {"type": "input_image", "image_url": url, "detail": "auto"}


def _result_output(block: ir.ToolResultBlock) -> str | list:
    if all(p.type == "text" for p in block.content):
        return "\n\n".join(p.text for p in block.content)
    return [{"type": "input_text", "text": p.text} if p.type == "text" else _image(p)
            for p in block.content]


class ResponsesAdapter:
    protocol = PROTOCOL
    prompt_cache_key = True  # the policy sets `prompt_cache_key` and cleans tool schemas

    def __init__(self, provider: ProviderConfig) -> None:
        self.provider = provider
        self.url = provider.base_url + "/v1/responses"
        headers = {"content-type": "application/json", "accept": "application/json",
                   "user-agent": USER_AGENT}
        if provider.api_key:
            headers["authorization"] = f"Bearer {provider.api_key}"
        headers.update(provider.headers)
        self._json_headers = headers
        self._stream_headers = {**headers, "accept": "text/event-stream"}

    def endpoint(self, req: ir.Request) -> str:
        return self.url

    def headers(self, req: ir.Request) -> dict:
        return self._stream_headers if req.stream else self._json_headers

    def _cap(self, value: int) -> int:
        cap = self.provider.max_tokens_cap
        return min(value, cap) if cap else value

    # ------------------------------------------------------------ request

    def encode_request(self, req: ir.Request) -> bytes:
        if req.native_protocol == self.protocol and req.native is not None:
            return orjson.dumps(self._pass_through(req))
        return orjson.dumps(self._encode_ir(req))

    def _pass_through(self, req: ir.Request) -> dict:
        body = dict(req.native)
        body["model"] = req.model
        if body.get("max_output_tokens").__class__ is int:
            body["max_output_tokens"] = self._cap(body["max_output_tokens"])
        effort = effort_for(req.reasoning)
        native = body.get("reasoning")
        if effort is not None and (native.__class__ is not dict
                                   or EFFORTS.get(native.get("effort")) != effort):
            body["reasoning"] = {**(native if native.__class__ is dict else {}),
                                 "effort": effort}
        items = body.get("input")
        if items.__class__ is list and any(
                i.__class__ is dict and i.get("type") == "reasoning"
                and foreign_secret(i.get("encrypted_content")) for i in items):
            body["input"] = [i for i in items if not (
                i.__class__ is dict and i.get("type") == "reasoning"
                and foreign_secret(i.get("encrypted_content")))]
            log.debug("dropped reasoning items signed by another kind of provider")
        return body

    def _encode_ir(self, req: ir.Request) -> dict:
        freeform = {t.name for t in req.tools if t.freeform is not None}
        custom_calls: set[str] = set()
        items: list[dict] = []
        for msg in req.messages:
            if msg.role == "assistant":
                self._assistant(msg, items, freeform, custom_calls)
            else:
                self._user(msg, items, custom_calls)
        body: dict[str, Any] = {"model": req.model, "input": items, "store": False}
        if req.system:
            body["instructions"] = "\n\n".join(b.text for b in req.system)
        if req.tools:
            body["tools"] = [_tool(t) for t in req.tools]
        choice = req.tool_choice
        if choice is not None and req.tools:
            if choice.type == "tool" and choice.name:
                kind = "custom" if choice.name in freeform else "function"
                body["tool_choice"] = {"type": kind, "name": shorten(choice.name)}
            elif choice.type in _CHOICES:
                body["tool_choice"] = _CHOICES[choice.type]
            if choice.disable_parallel:
                body["parallel_tool_calls"] = False
        if ("parallel_tool_calls" not in body and req.parallel_tool_calls is not None
                and req.tools):
            body["parallel_tool_calls"] = req.parallel_tool_calls
        if req.max_tokens is not None:
            body["max_output_tokens"] = self._cap(req.max_tokens)
        if req.temperature is not None:
            body["temperature"] = req.temperature
        if req.top_p is not None:
            body["top_p"] = req.top_p
        effort = effort_for(req.reasoning)
        if effort is not None:
            body["reasoning"] = {"effort": effort, "summary": "auto"}
            body["include"] = [ENCRYPTED]
        if req.response_format is not None:
            body["text"] = {"format": _text_format(req.response_format)}
        if req.user:
            digest = hashlib.sha256(req.user.encode("utf-8", "surrogatepass")).hexdigest()
            body["safety_identifier"] = digest[:32]
        if req.prompt_cache_key:
            body["prompt_cache_key"] = req.prompt_cache_key
        if req.stop:
            log.debug("stop sequences dropped: the Responses API has none")
        if req.stream:
            body["stream"] = True
        return body

    def _assistant(self, msg: ir.Message, out: list[dict], freeform: set[str],
                   custom_calls: set[str]) -> None:
        texts: list[str] = []

        def flush() -> None:
            if texts:
                out.append({"type": "message", "role": "assistant", "content": [
                    {"type": "output_text", "text": "\n\n".join(texts)}]})
                texts.clear()

        for block in msg.content:
            kind = block.type
            if kind == "text":
                if block.text:
                    texts.append(block.text)
            elif kind == "thinking":
                secret = ir.own_signature(PROTOCOL, block.signature)
                if secret is None:
                    log.debug("dropped reasoning without a Responses signature")
                    continue
                flush()
                summary = [{"type": "summary_text", "text": block.thinking}] \
                    if block.thinking else []
                out.append({"type": "reasoning", "summary": summary,
                            "encrypted_content": secret})
            elif kind == "tool_use":
                flush()
                if block.name in freeform:
                    custom_calls.add(block.id)
                    value = block.input.get("input")
                    out.append({"type": "custom_tool_call", "call_id": block.id,
                                "name": shorten(block.name),
                                "input": value if isinstance(value, str)
                                else orjson.dumps(block.input).decode()})
                else:
                    out.append({"type": "function_call", "call_id": block.id,
                                "name": shorten(block.name),
                                "arguments": arguments_json(block.input)})
        flush()

    def _user(self, msg: ir.Message, out: list[dict], custom_calls: set[str]) -> None:
        parts: list[dict] = []
        for block in msg.content:
            kind = block.type
            if kind == "tool_result":
                kind_out = ("custom_tool_call_output" if block.tool_use_id in custom_calls
                            else "function_call_output")
                out.append({"type": kind_out, "call_id": block.tool_use_id,
                            "output": _result_output(block)})
            elif kind == "text":
                if block.text:
                    parts.append({"type": "input_text", "text": block.text})
            elif kind == "image":
                parts.append(_image(block))
        if parts:
            role = "developer" if msg.role == "system" else "user"
            out.append({"type": "message", "role": role, "content": parts})

    # ------------------------------------------------------------ response

    def decode_response(self, body: bytes, req: ir.Request) -> ir.Response:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise UpstreamProtocolError("malformed response from provider (not JSON)") from None
        if data.__class__ is not dict:
            raise UpstreamProtocolError("malformed response from provider (not an object)")
        if data.get("error") or data.get("status") == "failed":
            raise provider_error(data.get("error"), self.provider.name)
        output = data.get("output")
        if output.__class__ is not list:
            raise UpstreamProtocolError("malformed response from provider (no output)")
        names = ToolNames.for_request(req)
        content: list[ir.Block] = []
        try:
            for item in output:
                content.extend(item_blocks(item, names))
        except (AttributeError, TypeError, KeyError):
            raise UpstreamProtocolError(
                "malformed response from provider (unexpected output item)") from None
        details = data.get("incomplete_details")
        reason = details.get("reason") if details.__class__ is dict else None
        if reason == "max_output_tokens":
            stop = ir.MAX_TOKENS
        elif reason == "content_filter":
            stop = ir.REFUSAL
        elif any(b.type == "tool_use" for b in content):
            stop = ir.TOOL_USE
        else:
            stop = ir.END_TURN
        model = data.get("model")
        return ir.Response(id=data.get("id") or "resp_unknown",
                           model=model if model.__class__ is str and model else req.model,
                           content=content, stop_reason=stop,
                           usage=usage_from_responses(data.get("usage")))

    def decode_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError:
        message, code = "", None
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        if data.__class__ is dict and data.get("error").__class__ is dict:
            err = data["error"]
            message = err.get("message") if err.get("message").__class__ is str else ""
            code = err.get("code") if err.get("code").__class__ is str else None
        if not message:
            message = body[:500].decode("utf-8", "replace")
        out = from_upstream(status, message, provider=self.provider.name,
                            retry_after=retry_after_header(headers))
        if code and status not in (401, 403):
            out.code = code
        return out

    def stream_decoder(self, req: ir.Request) -> StreamDecoder:
        return StreamDecoder(req, self.provider.name)


def _tool(tool: ir.Tool) -> dict:
    if tool.freeform is not None:
        out = {"type": "custom", "name": shorten(tool.name)}
        if tool.description:
            out["description"] = tool.description
        out["format"] = tool.freeform
        return out
    out = {"type": "function", "name": shorten(tool.name)}
    if tool.description:
        out["description"] = tool.description
    out["parameters"] = tool.input_schema
    out["strict"] = False
    return out


def _text_format(fmt: dict) -> dict:
    if fmt.get("type") != "json_schema":
        return {"type": "json_object"}
    out = {"type": "json_schema", "name": fmt.get("name") or "response",
           "schema": fmt.get("schema") or {}}
    if fmt.get("strict") is not None:
        out["strict"] = fmt["strict"]
    return out
