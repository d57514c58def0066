"""OpenAI-compatible Chat Completions provider adapter: IR ⇄ provider JSON (sans-IO).

Two ways to build the upstream body:
- pass-through, when the client also spoke OpenAI (`req.native_protocol == "openai"`): the
  client's body goes on (shallow copy) with `model` rewritten, `max_tokens` /
  `max_completion_tokens` capped (and renamed when the provider wants `max_completion_tokens`),
  `reasoning_effort` set from the IR when the reasoning policy changed it, the policy's
  `prompt_cache_key` added unless the client sent its own, and, for streams,
  `stream_options.include_usage` forced on so the gateway can count tokens;
- encoded from the IR otherwise (an Anthropic client), see `_encode_ir`: one system message;
  tool results as `role:"tool"` messages right after the assistant turn that called them, then
  the rest of that user turn (images from tool results first: tool messages carry text only);
  thinking sent back as `reasoning_content` only with `reasoning_history = true`; tool names a
  backend would reject shortened (`ferryllm.toolnames`) and mapped back in responses; only
  Chat Completions fields (never `cache_control`, `thinking`, `metadata`, `top_k` …), plus
  `prompt_cache_key` when the policy set one (`Request.prompt_cache_key`).

Reasoning → `reasoning_effort`: an IR effort maps through `EFFORTS` ("max" → "high"); a budget
without an effort maps through `ir.budget_effort` (the lowest effort whose budget covers it); adaptive reasoning without an effort, and disabled reasoning, send nothing.

A `user` longer than 64 characters (Claude Code's `metadata.user_id` is a JSON document) is sent
as a stable hash, `user_<sha256[:32]>`: the field is an end-user identifier, not content.
"""
from __future__ import annotations

import hashlib
import logging
from typing import Any, Mapping

import orjson

from ... import USER_AGENT, ir
from ...config import ProviderConfig
from ...errors import GatewayError, UpstreamProtocolError, from_upstream, retry_after_header
from ...jsonfields import arguments_json, tool_arguments
from ...toolnames import ToolNames, shorten
from .fields import (load_object, matched_stop, provider_error, split_think, stop_reason,
                            usage_from_openai)
from .adapter_stream import StreamDecoder

log = logging.getLogger("ferryllm.translate")

EFFORTS = {"minimal": "minimal", "low": "low", "medium": "medium", "high": "high",
           "xhigh": "high", "max": "high"}
IMAGE_MOVED = "[image moved to the next user message]"
MAX_USER_LEN = 64
_TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}


def effort_for(reasoning: ir.Reasoning | None) -> str | None:
    if reasoning is None or not reasoning.enabled:
        return None
    if reasoning.effort:
        return EFFORTS.get(reasoning.effort, "medium")
    if reasoning.budget_tokens is not None:
        return EFFORTS[ir.budget_effort(reasoning.budget_tokens)]
    return None


def _user_id(user: str) -> str:
    if len(user) <= MAX_USER_LEN:
        return user
    return "user_" + hashlib.sha256(user.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _image_url(block: ir.ImageBlock) -> dict:
    url = block.url if block.data is None else f"data:{block.media_type};base64,{block.data}"
    return {"type": "image_url", "image_url": {"url": url}}


def _user_content(blocks: list) -> str | list:
    """Text-only turns as one string (what every backend accepts); with images, an array."""
    texts = []
    for b in blocks:  # a loop, not all()/join over generators: ~40 % of this function's cost
        if b.type != "text":
            return [{"type": "text", "text": b.text} if b.type == "text" else _image_url(b)
                    for b in blocks]
        texts.append(b.text)
    return texts[0] if len(texts) == 1 else "\n\n".join(texts)


def _response_format(fmt: dict) -> dict:
    """IR structured output → Chat Completions `response_format`."""
    if fmt.get("type") != "json_schema":
        return {"type": "json_object"}
    spec = {"name": fmt.get("name") or "response", "schema": fmt.get("schema") or {}}
    if fmt.get("strict") is not None:
        spec["strict"] = fmt["strict"]
    return {"type": "json_schema", "json_schema": spec}


class OpenAIAdapter:
    protocol = "openai"
    prompt_cache_key = True  # the policy sets `prompt_cache_key` and cleans tool schemas
    provider_tool_name = staticmethod(shorten)  # the name a loaded deferred tool is shown by

    def __init__(self, provider: ProviderConfig) -> None:
        self.provider = provider
        self.url = provider.base_url + "/v1/chat/completions"
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
        """The upstream request headers (shared dicts built once: do not mutate)."""
        return self._stream_headers if req.stream else self._json_headers

    # ------------------------------------------------------------ request

    def _max_tokens(self, value: int) -> int:
        cap = self.provider.max_tokens_cap
        return min(value, cap) if cap else value

    def encode_request(self, req: ir.Request) -> bytes:
        if req.native_protocol == self.protocol and req.native is not None:
            return orjson.dumps(self._pass_through(req))
        return orjson.dumps(self._encode_ir(req))

    def _pass_through(self, req: ir.Request) -> dict:
        body = dict(req.native)
        body["model"] = req.model
        for key in ("max_tokens", "max_completion_tokens"):
            if body.get(key).__class__ is int:
                body[key] = self._max_tokens(body[key])
        if (self.provider.max_completion_tokens and "max_tokens" in body
                and "max_completion_tokens" not in body):
            body["max_completion_tokens"] = body.pop("max_tokens")
        effort = effort_for(req.reasoning)
        if not self.provider.send_reasoning_effort:
            body.pop("reasoning_effort", None)
        elif effort is not None and effort != EFFORTS.get(body.get("reasoning_effort")):
            body["reasoning_effort"] = effort  # set (or changed) by the reasoning policy
        if req.prompt_cache_key and "prompt_cache_key" not in body:
            body["prompt_cache_key"] = req.prompt_cache_key  # the client's own key wins
        if req.stream or body.get("stream"):
            opts = body.get("stream_options")
            body["stream_options"] = ({**opts, "include_usage": True} if isinstance(opts, dict)
                                      else {"include_usage": True})
        return body

    def _encode_ir(self, req: ir.Request) -> dict:
        provider = self.provider
        messages: list[dict] = []
        if req.system:
            messages.append({"role": "system",
                             "content": "\n\n".join(b.text for b in req.system)})
        for msg in req.messages:
            if msg.role == "assistant":
                self._assistant(msg, messages)
            else:  # user, or a mid-conversation system instruction sent as user text
                self._user(msg, messages)
        body: dict[str, Any] = {"model": req.model, "messages": messages}
        if req.tools:
            body["tools"] = [{"type": "function", "function": _function(t)} for t in req.tools]
        choice = req.tool_choice
        if choice is not None:
            if choice.type == "tool" and choice.name:
                body["tool_choice"] = {"type": "function", "function": {"name": shorten(choice.name)}}
            elif choice.type in _TOOL_CHOICES:
                body["tool_choice"] = _TOOL_CHOICES[choice.type]
            if choice.disable_parallel and req.tools:
                body["parallel_tool_calls"] = False
        if "parallel_tool_calls" not in body and req.parallel_tool_calls is not None and req.tools:
            body["parallel_tool_calls"] = req.parallel_tool_calls
        if req.max_tokens is not None:
            key = "max_completion_tokens" if provider.max_completion_tokens else "max_tokens"
            body[key] = self._max_tokens(req.max_tokens)
        if req.temperature is not None:
            body["temperature"] = req.temperature
        if req.top_p is not None:
            body["top_p"] = req.top_p
        if req.stop:
            body["stop"] = req.stop
        if req.user:
            body["user"] = _user_id(req.user)
        effort = effort_for(req.reasoning)
        if effort is not None and self.provider.send_reasoning_effort:
            body["reasoning_effort"] = effort
        if req.prompt_cache_key:
            body["prompt_cache_key"] = req.prompt_cache_key
        if req.response_format is not None:
            body["response_format"] = _response_format(req.response_format)
        if req.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def _assistant(self, msg: ir.Message, out: list[dict]) -> None:
        texts, thinking, calls = [], [], []
        for block in msg.content:
            kind = block.type
            if kind == "text":
                if block.text:
                    texts.append(block.text)
            elif kind == "tool_use":
                calls.append({"id": block.id, "type": "function", "function": {
                    "name": shorten(block.name), "arguments": arguments_json(block.input)}})
            elif kind == "thinking":
                if self.provider.reasoning_history and not block.redacted and block.thinking:
                    thinking.append(block.thinking)
            else:
                log.debug("dropped %s block from an assistant turn", kind)
        if not texts and not calls and not thinking:
            log.debug("dropped an assistant turn with nothing to send")
            return
        message: dict[str, Any] = {"role": "assistant",
                                   "content": "\n\n".join(texts) if texts else (None if calls else "")}
        if thinking:
            message["reasoning_content"] = "\n\n".join(thinking)
        if calls:
            message["tool_calls"] = calls
        out.append(message)

    def _user(self, msg: ir.Message, out: list[dict]) -> None:
        rest: list = []  # the turn's own blocks, after the tool messages
        moved: list = []  # images out of tool results
        for block in msg.content:
            kind = block.type
            if kind == "tool_result":
                texts, images = [], 0
                for part in block.content:
                    if part.type == "text":
                        texts.append(part.text)
                    elif part.type == "image":
                        moved.append(part)
                        images += 1
                text = "\n\n".join(texts)
                if images and not text:
                    text = IMAGE_MOVED
                out.append({"role": "tool", "tool_call_id": block.tool_use_id, "content": text})
            elif kind == "text":
                if block.text:
                    rest.append(block)
            elif kind == "image":
                rest.append(block)
            else:
                log.debug("dropped %s block from a user turn", kind)
        blocks = moved + rest if moved else rest
        if blocks:
            out.append({"role": "user", "content": _user_content(blocks)})

    # ------------------------------------------------------------ response

    def decode_response(self, body: bytes, req: ir.Request) -> ir.Response:
        data = load_object(body, "response")
        if data.get("error"):
            raise provider_error(data["error"], self.provider.name)
        try:
            return self._response(data, req)
        except (AttributeError, TypeError, KeyError, IndexError):
            raise UpstreamProtocolError(
                "malformed response from provider (unexpected structure)") from None

    def _response(self, data: dict, req: ir.Request) -> ir.Response:
        choices = data.get("choices")
        if not choices:
            raise UpstreamProtocolError("malformed response from provider (no choices)")
        choice = choices[0]
        message = choice.get("message") or {}
        content: list[ir.Block] = []
        reasoning = message.get("reasoning_content") or message.get("reasoning")
        text = message.get("content")
        if text is not None and text.__class__ is not str:
            raise TypeError
        if text and reasoning is None:
            reasoning, text = split_think(text)
        if reasoning and reasoning.__class__ is str:
            content.append(ir.ThinkingBlock(reasoning))
        if text:
            content.append(ir.TextBlock(text))
        if message.get("refusal").__class__ is str and message["refusal"]:
            content.append(ir.TextBlock(message["refusal"]))
        calls = message.get("tool_calls") or []
        if not calls and message.get("function_call"):
            calls = [{"id": None, "function": message["function_call"]}]
        names = ToolNames.for_request(req) if calls else None
        for n, call in enumerate(calls):
            fn = call.get("function") or {}
            content.append(ir.ToolUseBlock(
                id=call.get("id") or f"call_{n}", name=names.to_client(fn.get("name") or ""),
                input=tool_arguments(fn.get("arguments"))))
        stop_seq = matched_stop(choice, req.stop) if req.stop else None
        usage = data.get("usage")
        model = data.get("model")
        return ir.Response(
            id=data.get("id") or "chatcmpl-unknown",
            model=model if model.__class__ is str and model else req.model, content=content,
            stop_reason=stop_reason(choice.get("finish_reason"), bool(calls), stop_seq),
            stop_sequence=stop_seq,
            usage=usage_from_openai(usage) if usage.__class__ is dict else ir.Usage())

    def decode_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError:
        message = ""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        if data.__class__ is dict:
            err = data.get("error")
            if err.__class__ is dict and err.get("message").__class__ is str:
                message = err["message"]
            elif err.__class__ is str:
                message = err
            elif data.get("message").__class__ is str:
                message = data["message"]
            elif data.get("detail").__class__ is str:  # FastAPI-style servers
                message = data["detail"]
        if not message:
            message = body[:500].decode("utf-8", "replace")
        retry_after = retry_after_header(headers, "retry-after-ms")
        if retry_after is not None:
            retry_after /= 1000
        else:
            retry_after = retry_after_header(headers)
        return from_upstream(status, message, provider=self.provider.name, retry_after=retry_after)

    def stream_decoder(self, req: ir.Request) -> StreamDecoder:
        return StreamDecoder(req, self.provider.name)


def _function(tool: ir.Tool) -> dict:
    fn: dict[str, Any] = {"name": shorten(tool.name)}
    if tool.description:
        fn["description"] = tool.description
    fn["parameters"] = tool.input_schema or {"type": "object", "properties": {}}
    return fn
