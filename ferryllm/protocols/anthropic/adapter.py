"""Anthropic Messages provider adapter: IR ⇄ provider JSON (sans-IO).

Two ways to build the upstream body:
- pass-through, when the client also spoke Anthropic (`req.native_protocol == "anthropic"`): the
  client's body goes on as it came (signatures, `cache_control`, `context_management`, server
  tools …), with only `model` rewritten, `max_tokens` capped (by `max_tokens_cap`, and by the IR's
  `max_tokens` when a policy lowered it; a thinking budget that no longer fits shrinks) and unsigned thinking blocks (ones an OpenAI-compatible
  provider produced) removed from assistant turns. Other IR edits (reasoning policy, cache-prefix
  strip) do not reach a pass-through body;
- encoded from the IR otherwise (an OpenAI client): see `_encode_ir`.

Reasoning from the IR becomes `thinking: {type: enabled, budget_tokens}`: an explicit budget is
used as given, an effort without a budget maps through `EFFORT_BUDGETS`. A request without
`max_tokens` gets the provider's `max_tokens_cap`, else the model's maximum (`MODEL_MAX_TOKENS`),
else (a model of unknown maximum) `DEFAULT_MAX_TOKENS`, grown by the thinking budget. Anthropic
requires 1024 ≤ budget < max_tokens: the budget shrinks to fit, and thinking is left off when
`max_tokens` ≤ 1024. With thinking on, `temperature` (unless 1), `top_k` and a `top_p`
below 0.95 are not sent, since Anthropic rejects them together with thinking.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping

import orjson

from ... import USER_AGENT, ir
from ...config import ProviderConfig
from ...errors import GatewayError, UpstreamProtocolError, from_upstream, retry_after_header
from ...jsonfields import split_data_url
from .adapter_stream import StreamDecoder, usage_into

log = logging.getLogger("ferryllm.translate")

DEFAULT_VERSION = "2023-06-01"
NEW_VERSION = "2026-10-21"  # the first version without sampling parameters
SAMPLING = ("temperature", "top_p", "top_k")
COUNT_TOKENS_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking")
DEFAULT_MAX_TOKENS = 4096  # Anthropic requires max_tokens: for a model of unknown maximum
# The output maximum of Claude models (longest prefix wins): what a request without max_tokens
# gets, unless the provider's `max_tokens_cap` says otherwise. A client that sets no limit (the
# OpenAI and Responses APIs allow it; Codex never sets one) must not be cut at a small default.
MODEL_MAX_TOKENS = (
    ("claude-opus-4-6", 128000), ("claude-opus-4-5", 64000), ("claude-opus-4", 32000),
    ("claude-sonnet-4", 64000), ("claude-haiku-4", 64000), ("claude-3-7-sonnet", 64000),
    ("claude-3-5", 8192), ("claude-3-haiku", 4096), ("claude-3-opus", 4096),
)
MIN_THINKING_BUDGET = 1024  # Anthropic's minimum budget_tokens
# Thinking budget for a reasoning effort given without an explicit budget (e.g. an OpenAI
# client's `reasoning_effort`).
EFFORT_BUDGETS = ir.EFFORT_BUDGETS


def model_max_tokens(model: str) -> int | None:
    best, best_len = None, 0
    for prefix, limit in MODEL_MAX_TOKENS:
        if model.startswith(prefix) and len(prefix) > best_len:
            best, best_len = limit, len(prefix)
    return best


def _cap(max_tokens: int, provider: ProviderConfig) -> int:
    cap = provider.max_tokens_cap
    return min(max_tokens, cap) if cap else max_tokens


# ---------------------------------------------------------------- pass-through


def _unsigned_thinking(block: Any) -> bool:
    """A thinking block Anthropic would reject: no signature, or another provider kind's
    (`ir.own_signature`)."""
    if not (isinstance(block, dict) and block.get("type") == "thinking"):
        return False
    signature = block.get("signature")
    return not (isinstance(signature, str) and ir.own_signature(None, signature))


def _as_blocks(content: Any) -> list:
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)


def _strip_unsigned_thinking(messages: list) -> list | None:
    """Messages without unsigned thinking blocks in assistant turns, or None if none had any.
    Only the messages that change are copied. An assistant turn left empty is dropped, and the
    turns around it are merged if that leaves two of the same role together."""
    if not any(isinstance(m, dict) and m.get("role") == "assistant"
               and isinstance(m.get("content"), list)
               and any(_unsigned_thinking(b) for b in m["content"]) for m in messages):
        return None
    out: list = []
    for msg in messages:
        if (isinstance(msg, dict) and msg.get("role") == "assistant"
                and isinstance(msg.get("content"), list)):
            content = [b for b in msg["content"] if not _unsigned_thinking(b)]
            if len(content) != len(msg["content"]):
                log.debug("dropped %d unsigned thinking block(s)",
                          len(msg["content"]) - len(content))
                if not content:
                    continue
                msg = {**msg, "content": content}
        if out and isinstance(msg, dict) and out[-1].get("role") == msg.get("role"):
            out[-1] = {**out[-1], "content": _as_blocks(out[-1].get("content"))
                       + _as_blocks(msg.get("content"))}
        else:
            out.append(msg)
    return out


# ---------------------------------------------------------------- IR → Anthropic JSON


def _image(block: ir.ImageBlock) -> dict | None:
    if block.data is not None:
        return {"type": "image", "source": {"type": "base64",
                                            "media_type": block.media_type or "image/png",
                                            "data": block.data}}
    url = block.url or ""
    if url.startswith("data:"):
        parts = split_data_url(url)
        if parts is not None:
            return {"type": "image", "source": {"type": "base64",
                                                "media_type": parts[0] or "image/png",
                                                "data": parts[1]}}
        log.debug("dropped image with a non-base64 data URL")
        return None
    if url:
        return {"type": "image", "source": {"type": "url", "url": url}}
    return None


def _block(block: ir.Block) -> dict | None:
    match block:
        case ir.TextBlock(text=text):
            return {"type": "text", "text": text} if text else None
        case ir.ImageBlock():
            return _image(block)
        case ir.ToolUseBlock(id=id_, name=name, input=input_):
            return {"type": "tool_use", "id": id_, "name": name, "input": input_}
        case ir.ToolResultBlock(tool_use_id=tool_use_id, content=content, is_error=is_error):
            out: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_use_id}
            parts = [p for p in map(_block, content) if p is not None]
            if parts:
                out["content"] = parts
            if is_error:
                out["is_error"] = True
            return out
        case ir.ThinkingBlock(redacted=True, data=data):
            return {"type": "redacted_thinking", "data": data} if data else None
        case ir.ThinkingBlock(thinking=thinking, signature=signature):
            signature = ir.own_signature(None, signature)
            if signature:
                return {"type": "thinking", "thinking": thinking, "signature": signature}
            log.debug("dropped a thinking block without an Anthropic signature")
            return None
    return None


def _messages(messages: list[ir.Message]) -> list[dict]:
    out: list[dict] = []
    for msg in messages:
        content = [b for b in map(_block, msg.content) if b is not None]
        if not content:
            continue
        role = "user" if msg.role == "system" else msg.role  # a mid-conversation instruction
        if out and out[-1]["role"] == role:  # Anthropic requires alternating roles
            out[-1]["content"].extend(content)
        else:
            out.append({"role": role, "content": content})
    for msg in out:  # tool results must open a user turn
        content = msg["content"]
        if msg["role"] == "user" and len(content) > 1:
            msg["content"] = ([b for b in content if b["type"] == "tool_result"]
                              + [b for b in content if b["type"] != "tool_result"])
    return out


def _thinking(req: ir.Request, max_tokens: int, grow: bool,
              provider: ProviderConfig) -> tuple[dict | None, int]:
    r = req.reasoning
    if r is None or not r.enabled:
        return None, max_tokens
    budget = r.budget_tokens
    if budget is None and r.effort is not None:
        budget = EFFORT_BUDGETS.get(r.effort)
    if budget is None:
        return ({"type": "adaptive"} if r.adaptive else None), max_tokens
    budget = max(budget, MIN_THINKING_BUDGET)
    if grow:  # a default limit: room for the budget and the answer
        max_tokens = _cap(budget + DEFAULT_MAX_TOKENS, provider)
    if budget >= max_tokens:
        budget = max_tokens - 1
        if budget < MIN_THINKING_BUDGET:
            log.debug("thinking left off: max_tokens too small for a thinking budget")
            return None, max_tokens
    return {"type": "enabled", "budget_tokens": budget}, max_tokens


# ---------------------------------------------------------------- API versions


def for_version(body: dict, version: str) -> dict:
    """`body` holding only what `version` accepts. 2026-10-21 rejects `temperature`, `top_p`
    and `top_k` (at any value), a `document` block in an assistant turn and `citations` on a
    user's text block; they are dropped (debug log) instead of earning a 400. Only the parts
    that change are copied."""
    if version < NEW_VERSION:
        return body
    dropped = [k for k in SAMPLING if k in body]
    if dropped:
        body = {k: v for k, v in body.items() if k not in SAMPLING}
        log.debug("dropped %s: anthropic-version %s does not take them", ", ".join(dropped),
                  version)
    messages = body.get("messages")
    if isinstance(messages, list):
        kept = [_message_for_new_version(m) for m in messages]
        if any(a is not b for a, b in zip(kept, messages)):
            body = {**body, "messages": kept}
    return body


def _message_for_new_version(msg: Any) -> Any:
    if not isinstance(msg, dict) or not isinstance(msg.get("content"), list):
        return msg
    role, content = msg.get("role"), msg["content"]
    if role == "assistant":
        kept = [b for b in content if not (isinstance(b, dict) and b.get("type") == "document")]
        if len(kept) != len(content):
            log.debug("dropped a document block from an assistant turn (anthropic-version)")
            return {**msg, "content": kept}
    elif role == "user" and any(isinstance(b, dict) and b.get("type") == "text"
                                and b.get("citations") for b in content):
        log.debug("dropped citations from a user's text (anthropic-version)")
        return {**msg, "content": [
            {k: v for k, v in b.items() if k != "citations"}
            if isinstance(b, dict) and b.get("type") == "text" and "citations" in b else b
            for b in content]}
    return msg


def _output_format(fmt: dict | None) -> dict | None:
    """IR structured output → `output_config.format` (Anthropic's structured outputs take a JSON
    schema; a bare JSON mode has no equivalent and is left to the prompt)."""
    if not fmt:
        return None
    schema = fmt.get("schema")
    if fmt.get("type") == "json_schema" and isinstance(schema, dict):
        return {"type": "json_schema", "schema": _closed_schema(schema)}
    log.debug("structured output without a schema is not sent to an Anthropic provider")
    return None


# numeric and length constraints Anthropic's structured outputs reject (their SDKs drop them too)
_UNSUPPORTED_CONSTRAINTS = frozenset(("minimum", "maximum", "exclusiveMinimum",
                                      "exclusiveMaximum", "multipleOf", "minLength",
                                      "maxLength", "maxItems"))


def _closed_schema(schema: Any) -> Any:
    """A copy in the subset Anthropic's structured outputs take: every object closed
    (`additionalProperties: false`, which they require), unsupported constraints dropped."""
    if isinstance(schema, list):
        return [_closed_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _closed_schema(v) for k, v in schema.items() if k not in _UNSUPPORTED_CONSTRAINTS}
    if isinstance(out.get("minItems"), int) and out["minItems"] > 1:
        del out["minItems"]
    if out.get("type") == "object" or "properties" in out:
        out["additionalProperties"] = False
    return out


# ---------------------------------------------------------------- adapter


class AnthropicAdapter:
    protocol = "anthropic"
    runs_tool_search = True  # the API searches deferred tools itself (toolsearch_loop)

    def __init__(self, provider: ProviderConfig) -> None:
        self.provider = provider
        self.url = provider.base_url + "/v1/messages"
        self.count_tokens_url = provider.base_url + "/v1/messages/count_tokens"
        head = {"content-type": "application/json", "user-agent": USER_AGENT}
        if provider.api_key:
            head["x-api-key"] = provider.api_key
        self._head = head
        self._extra = dict(provider.headers)

    def _version(self, req: ir.Request) -> str:
        """An Anthropic client's own version on pass-through, else the provider's."""
        if req.native_protocol == self.protocol and req.native is not None:
            return req.headers.get("anthropic-version") or self.provider.anthropic_version
        return self.provider.anthropic_version

    def headers(self, req: ir.Request) -> dict[str, str]:
        h = dict(self._head)
        h["anthropic-version"] = self._version(req)
        beta = req.headers.get("anthropic-beta")
        if beta:
            h["anthropic-beta"] = beta
        if self._extra:
            h.update(self._extra)
        return h

    def endpoint(self, req: ir.Request) -> str:
        return self.url

    # -- requests

    def encode_request(self, req: ir.Request) -> bytes:
        if req.native_protocol == self.protocol and req.native is not None:
            body = self._passthrough(req)
        else:
            body = self._encode_ir(req)
        return orjson.dumps(for_version(body, self._version(req)))

    def _passthrough(self, req: ir.Request) -> dict:
        body = dict(req.native)
        body["model"] = req.model
        max_tokens = body.get("max_tokens")
        if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
            if req.max_tokens is not None:  # a policy may have lowered it on the IR
                max_tokens = min(max_tokens, req.max_tokens)
            body["max_tokens"] = max_tokens = _cap(max_tokens, self.provider)
            thinking = body.get("thinking")
            if (isinstance(thinking, dict) and isinstance(thinking.get("budget_tokens"), int)
                    and thinking["budget_tokens"] >= max_tokens):
                # Anthropic rejects budget_tokens >= max_tokens: shrink it (or drop thinking)
                if max_tokens - 1 >= MIN_THINKING_BUDGET:
                    body["thinking"] = {**thinking, "budget_tokens": max_tokens - 1}
                else:
                    del body["thinking"]
        messages = body.get("messages")
        if isinstance(messages, list):
            stripped = _strip_unsigned_thinking(messages)
            if stripped is not None:
                body["messages"] = stripped
        return body

    def _encode_ir(self, req: ir.Request) -> dict:
        body: dict[str, Any] = {"model": req.model}
        limit = None if req.max_tokens is not None else (
            self.provider.max_tokens_cap or model_max_tokens(req.model))
        if req.max_tokens is not None:
            max_tokens = _cap(req.max_tokens, self.provider)
        else:
            max_tokens = limit or DEFAULT_MAX_TOKENS
        thinking, max_tokens = _thinking(req, max_tokens, req.max_tokens is None and not limit,
                                         self.provider)
        body["max_tokens"] = max_tokens
        system = [b.text for b in req.system if b.text]
        if len(system) == 1:
            body["system"] = system[0]
        elif system:
            body["system"] = [{"type": "text", "text": t} for t in system]
        body["messages"] = _messages(req.messages)
        if req.tools:
            tools = []
            for t in req.tools:
                tool: dict[str, Any] = {"name": t.name}
                if t.description:
                    tool["description"] = t.description
                tool["input_schema"] = t.input_schema
                tools.append(tool)
            body["tools"] = tools
            choice = req.tool_choice
            disable = (choice is not None and choice.disable_parallel) or req.parallel_tool_calls is False
            if choice is not None or disable:
                tc: dict[str, Any] = {"type": choice.type if choice else "auto"}
                if tc["type"] == "tool":
                    tc["name"] = choice.name
                if disable and tc["type"] != "none":
                    tc["disable_parallel_tool_use"] = True
                body["tool_choice"] = tc
        if req.stop:
            body["stop_sequences"] = list(req.stop)
        if req.temperature is not None and (thinking is None or req.temperature == 1):
            body["temperature"] = req.temperature
        if req.top_p is not None and (thinking is None or req.top_p >= 0.95):
            body["top_p"] = req.top_p
        if req.top_k is not None and thinking is None:
            body["top_k"] = req.top_k
        if req.user:
            body["metadata"] = {"user_id": req.user}
        if thinking is not None:
            body["thinking"] = thinking
        output_format = _output_format(req.response_format)
        if output_format is not None:
            body["output_config"] = {"format": output_format}
        if req.stream:
            body["stream"] = True
        return body

    # -- responses

    def decode_response(self, body: bytes, req: ir.Request) -> ir.Response:
        try:
            data = orjson.loads(body)
            content = []
            for block in data["content"]:
                kind = block.get("type")
                if kind == "text":
                    content.append(ir.TextBlock(block["text"]))
                elif kind == "thinking":
                    content.append(ir.ThinkingBlock(thinking=block["thinking"],
                                                    signature=block.get("signature")))
                elif kind == "redacted_thinking":
                    content.append(ir.ThinkingBlock(redacted=True, data=block["data"]))
                elif kind == "tool_use":
                    tool_input = block.get("input")
                    if not isinstance(tool_input, dict):
                        raise TypeError("tool_use input")
                    content.append(ir.ToolUseBlock(id=block["id"], name=block["name"],
                                                   input=tool_input))
                else:
                    log.debug("skipped %s block in a provider response", str(kind)[:64])
            usage = ir.Usage()
            usage_into(usage, data.get("usage") or None)
            details = data.get("stop_details")
            return ir.Response(
                id=data.get("id") or "", model=data.get("model") or req.model, content=content,
                stop_reason=data.get("stop_reason"), stop_sequence=data.get("stop_sequence"),
                usage=usage, stop_details=details if isinstance(details, dict) else None)
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise UpstreamProtocolError(
                f"provider '{self.provider.name}' returned a malformed message") from exc

    def decode_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError:
        message = ""
        try:
            data = orjson.loads(body)
            message = data["error"]["message"]
            if not isinstance(message, str):
                message = ""
        except (orjson.JSONDecodeError, KeyError, TypeError):
            message = body[:500].decode("utf-8", "replace").strip() if body else ""
        return from_upstream(status, message, provider=self.provider.name,
                             retry_after=retry_after_header(headers))

    def stream_decoder(self, req: ir.Request) -> StreamDecoder:
        return StreamDecoder(provider=self.provider.name)

    # -- count tokens

    def count_tokens(self, req: ir.Request) -> tuple[str, bytes]:
        """`POST /v1/messages/count_tokens`: an Anthropic client's body as it came (model
        rewritten), else the fields of the encoded request that the endpoint takes."""
        if req.native_protocol == self.protocol and req.native is not None:
            body = dict(req.native)
            body["model"] = req.model
        else:
            full = self._encode_ir(req)
            body = {k: full[k] for k in COUNT_TOKENS_FIELDS if k in full}
        return self.count_tokens_url, orjson.dumps(for_version(body, self._version(req)))

    def decode_count_tokens(self, raw: bytes) -> int:
        try:
            count = orjson.loads(raw)["input_tokens"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise UpstreamProtocolError(
                f"provider '{self.provider.name}' returned a malformed token count") from exc
        if count.__class__ is not int:
            raise UpstreamProtocolError(
                f"provider '{self.provider.name}' returned a malformed token count")
        return count
