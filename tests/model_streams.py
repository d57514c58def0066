"""How `tests/model_mock.py` answers in each provider's own wire format: SSE streams (the text
in word pieces, a call's arguments in two halves, a thinking block with a signature, an error
event mid-text for `break_with`), whole JSON answers for non-streaming requests, error bodies.
"""
from __future__ import annotations

import uuid

import orjson

from tests import mock_responses as responses

OUTPUT_TOKENS = 25  # the completion usage every answer reports


def signature_of(thinking: str) -> str:
    """The signature this mock gives a thinking text (so a test can recognise it returning)."""
    return "sig-" + uuid.uuid5(uuid.NAMESPACE_URL, thinking).hex


def _halves(text: str) -> list[str]:
    cut = len(text) // 2
    return [p for p in (text[:cut], text[cut:]) if p]


def _words(text: str) -> list[str]:
    words = text.split(" ")
    return [w + " " for w in words[:-1]] + words[-1:]


def _fresh(prefix: str) -> str:
    """A new id per answer, as real providers give (Claude Code merges answers sharing one)."""
    return prefix + uuid.uuid4().hex[:24]


# ---------------------------------------------------------------- OpenAI Chat Completions


def openai_stream(body: dict, answer) -> list[bytes]:
    model, cid = body.get("model", "mock"), _fresh("chatcmpl-")

    def chunk(delta: dict, finish: str | None = None, usage=None) -> bytes:
        out = {"id": cid, "object": "chat.completion.chunk", "created": 1700000000,
               "model": model, "choices": [] if usage else
               [{"index": 0, "delta": delta, "finish_reason": finish}]}
        if usage:
            out["usage"] = usage
        return b"data: " + orjson.dumps(out) + b"\n\n"

    out = [chunk({"role": "assistant", "content": "" if answer.text is not None else None})]
    if answer.thinking:
        out += [chunk({"reasoning_content": p}) for p in _halves(answer.thinking)]
    if answer.text is not None:
        pieces = [chunk({"content": w}) for w in _words(answer.text)]
        if answer.break_with:  # OpenAI-compatible servers send an error object mid-stream
            return out + pieces[:len(pieces) // 2 or 1] + [b"data: " + orjson.dumps({"error": {
                "message": answer.break_with, "type": "server_error", "code": None}}) + b"\n\n"]
        out += pieces
    for index, (name, args) in enumerate(answer.calls):
        raw = orjson.dumps(args).decode()
        cut = len(raw) // 2
        out.append(chunk({"tool_calls": [{
            "index": index, "id": _fresh("call_"), "type": "function",
            "function": {"name": name, "arguments": raw[:cut]}}]}))
        out.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": raw[cut:]}}]}))
    out.append(chunk({}, "tool_calls" if answer.calls else "stop"))
    out.append(chunk({}, usage={"prompt_tokens": answer.input_tokens,
                                "completion_tokens": OUTPUT_TOKENS,
                                "total_tokens": answer.input_tokens + OUTPUT_TOKENS,
                                "prompt_tokens_details": {"cached_tokens": 0}}))
    return out + [b"data: [DONE]\n\n"]


def openai_whole(body: dict, answer) -> dict:
    message: dict = {"role": "assistant", "content": answer.text}
    if answer.thinking:
        message["reasoning_content"] = answer.thinking
    if answer.calls:
        message["tool_calls"] = [{"id": _fresh("call_"), "type": "function", "function": {
            "name": name, "arguments": orjson.dumps(args).decode()}} for name, args in answer.calls]
    return {"id": _fresh("chatcmpl-"), "object": "chat.completion", "created": 1700000000,
            "model": body.get("model", "mock"), "choices": [{
                "index": 0, "message": message,
                "finish_reason": "tool_calls" if answer.calls else "stop"}],
            "usage": {"prompt_tokens": answer.input_tokens, "completion_tokens": OUTPUT_TOKENS,
                      "total_tokens": answer.input_tokens + OUTPUT_TOKENS}}


def openai_error(status: int, message: str, kind: str | None) -> dict:
    kind = kind or {429: "rate_limit_exceeded", 401: "invalid_api_key"}.get(
        status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


# ---------------------------------------------------------------- Anthropic Messages


def _event(kind: str, data: dict) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **data}) + b"\n\n"


def _tool_use(name: str, args: dict) -> dict:
    return {"type": "tool_use", "id": _fresh("toolu_"), "name": name, "input": args}


def anthropic_stream(body: dict, answer) -> list[bytes]:
    out = [_event("message_start", {"message": {
        "id": _fresh("msg_"), "type": "message", "role": "assistant",
        "model": body.get("model", "mock"), "content": [], "stop_reason": None,
        "stop_sequence": None, "usage": {"input_tokens": answer.input_tokens, "output_tokens": 1,
                                         "cache_read_input_tokens": 0,
                                         "cache_creation_input_tokens": 0}}})]
    index = 0
    if answer.thinking:
        out.append(_event("content_block_start", {"index": 0, "content_block": {
            "type": "thinking", "thinking": "", "signature": ""}}))
        out += [_event("content_block_delta", {"index": 0, "delta": {
            "type": "thinking_delta", "thinking": p}}) for p in _halves(answer.thinking)]
        out.append(_event("content_block_delta", {"index": 0, "delta": {
            "type": "signature_delta", "signature": signature_of(answer.thinking)}}))
        out.append(_event("content_block_stop", {"index": 0}))
        index = 1
    if answer.text is not None:
        out.append(_event("content_block_start", {"index": index, "content_block": {
            "type": "text", "text": ""}}))
        pieces = [_event("content_block_delta", {"index": index, "delta": {
            "type": "text_delta", "text": piece}}) for piece in _halves(answer.text)]
        if answer.break_with:
            return out + pieces[:1] + [_event("error", {"error": {
                "type": "overloaded_error", "message": answer.break_with}})]
        out += pieces + [_event("content_block_stop", {"index": index})]
        index += 1
    for index, (name, args) in enumerate(answer.calls, index):
        out.append(_event("content_block_start", {"index": index, "content_block": {
            **_tool_use(name, {})}}))
        out += [_event("content_block_delta", {"index": index, "delta": {
            "type": "input_json_delta", "partial_json": piece}})
                for piece in _halves(orjson.dumps(args).decode())]
        out.append(_event("content_block_stop", {"index": index}))
    out.append(_event("message_delta", {"delta": {
        "stop_reason": "tool_use" if answer.calls else "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": OUTPUT_TOKENS}}))
    return out + [_event("message_stop", {})]


def anthropic_whole(body: dict, answer) -> dict:
    content = [{"type": "thinking", "thinking": answer.thinking,
                "signature": signature_of(answer.thinking)}] if answer.thinking else []
    content += [{"type": "text", "text": answer.text}] if answer.text is not None else []
    content += [_tool_use(name, args) for name, args in answer.calls]
    return {"id": _fresh("msg_"), "type": "message", "role": "assistant",
            "model": body.get("model", "mock"), "content": content,
            "stop_reason": "tool_use" if answer.calls else "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": answer.input_tokens, "output_tokens": OUTPUT_TOKENS}}


def anthropic_error(status: int, message: str, kind: str | None) -> dict:
    kind = kind or {429: "rate_limit_error", 529: "overloaded_error", 500: "api_error",
                    401: "authentication_error", 404: "not_found_error"}.get(
        status, "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


# ---------------------------------------------------------------- OpenAI Responses


def responses_stream(body: dict, answer) -> list[bytes]:
    items = [responses.reasoning(answer.thinking, encrypted_content=signature_of(
        answer.thinking))] if answer.thinking else []
    fail = None
    if answer.text is not None:
        words = answer.text.split(" ")
        if answer.break_with:
            words, fail = words[:len(words) // 2 or 1], ("server_error", answer.break_with)
        items.append(responses.text(answer.text, [w + " " for w in words[:-1]] + words[-1:]))
    freeform = {t.get("name") for t in body.get("tools") or [] if t.get("type") == "custom"}
    items += [responses.custom_call(name, args["input"]) if name in freeform
              else responses.function_call(name, args) for name, args in answer.calls]
    script = responses.Turn(items, input_tokens=answer.input_tokens, output_tokens=OUTPUT_TOKENS,
                            fail=fail)
    return responses.sse(responses.turn_events(body, script, "resp_" + uuid.uuid4().hex,
                                               1_760_000_000))
