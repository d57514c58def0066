"""OpenAI-compatible Chat Completions fields → IR, shared by the JSON response decoder
(`adapters/openai`) and the stream decoder (`adapters/openai_sse`): usage, stop reasons, a
provider's in-band error, a leading `<think>…</think>` in content, and the parse of a chunk or a
body into a JSON object."""
from __future__ import annotations

from typing import Any, Sequence

import orjson

from ... import ir
from ...errors import GatewayError, UpstreamProtocolError, from_upstream

OPEN_TAG, CLOSE_TAG = "<think>", "</think>"
_ERROR_STATUS = {"rate_limit_exceeded": 429, "rate_limit_error": 429, "insufficient_quota": 429,
                 "context_length_exceeded": 400, "invalid_request_error": 400,
                 "server_error": 500, "overloaded_error": 529}


def _n(value: Any) -> int:
    return value if value.__class__ is int else int(value) if value.__class__ is float else 0


def usage_from_openai(u: dict) -> ir.Usage:
    """OpenAI usage → IR usage. `prompt_tokens` includes cache reads (`cached_tokens`, or
    DeepSeek's `prompt_cache_hit_tokens`) and cache writes (`cache_write_tokens`, as OpenRouter
    reports them); IR `input_tokens` excludes both."""
    prompt = _n(u.get("prompt_tokens"))
    details = u.get("prompt_tokens_details")
    cached = written = None
    if details.__class__ is dict:
        cached, written = details.get("cached_tokens"), details.get("cache_write_tokens")
    if cached is None:
        cached = u.get("prompt_cache_hit_tokens")  # DeepSeek
    cached, written = _n(cached), _n(written)
    return ir.Usage(input_tokens=max(prompt - cached - written, 0),
                    output_tokens=_n(u.get("completion_tokens")),
                    cache_read_input_tokens=cached, cache_creation_input_tokens=written)


def load_object(data: bytes, what: str) -> dict:
    """A provider's JSON object (a stream chunk or a whole response), or UpstreamProtocolError."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise UpstreamProtocolError(f"malformed {what} from provider (not JSON)") from None
    if obj.__class__ is not dict:
        raise UpstreamProtocolError(f"malformed {what} from provider (not a JSON object)")
    return obj


def stop_reason(finish: str | None, tool_calls: bool, stop_sequence: str | None) -> str:
    if finish == "length":
        return ir.MAX_TOKENS
    if finish == "content_filter":
        return ir.REFUSAL
    if tool_calls:
        return ir.TOOL_USE
    if stop_sequence is not None:
        return ir.STOP_SEQUENCE
    return ir.END_TURN


def matched_stop(choice: dict, stops: Sequence[str]) -> str | None:
    """vLLM reports the stop string that ended generation in `choice.stop_reason`."""
    value = choice.get("stop_reason")
    return value if value.__class__ is str and value in stops else None


def split_think(content: str) -> tuple[str | None, str]:
    """A leading `<think>…</think>` in a whole content string → (reasoning, remaining text).
    Leading whitespace inside the tag and after it is dropped, as the stream decoder does."""
    stripped = content.lstrip()
    if not stripped.startswith(OPEN_TAG):
        return None, content
    inner = stripped[len(OPEN_TAG):].lstrip()
    end = inner.find(CLOSE_TAG)
    if end < 0:
        return inner, ""
    return inner[:end], inner[end + len(CLOSE_TAG):].lstrip()


def provider_error(err: Any, provider: str) -> GatewayError:
    """An in-band `{"error": …}` payload → the client's error (status from `error.code`)."""
    status, message = 502, ""
    if err.__class__ is dict:
        message = err.get("message") if err.get("message").__class__ is str else ""
        code = err.get("code")
        if code.__class__ is int and 400 <= code <= 599:
            status = code
        else:
            status = _ERROR_STATUS.get(code, _ERROR_STATUS.get(err.get("type"), 502))
    elif err.__class__ is str:
        message = err
    return from_upstream(status, message or "provider reported an error", provider=provider)
