"""What both sides of the Gemini protocol share: field names in both spellings, Google's status
names, finish reasons, usage, schemas and the thought-signature envelope.

Field names: the real API reads protobuf JSON, which takes every field as lowerCamelCase or as
snake_case (google-genai sends `thought_signature`, `inline_data.mime_type`,
`thinking_config.include_thoughts` …); `get(obj, "thoughtSignature")` looks for both.

Signatures. A Gemini `thoughtSignature` sits on a part (a thought, a text or a function call)
and must come back on that part. In the IR a signature belongs to a `ThinkingBlock`: a signed
thought part is one, and a signature on any other part becomes an empty "carrier" thinking block
right before that part's block (`ir.tag_signature("gemini", raw)`), which the adapter puts back
on the part that follows it. Signatures of other provider kinds (Anthropic's, tagged Responses
ones) travel to a Gemini client in an *envelope*: base64 of `ENVELOPE_MAGIC` + a JSON list of the
thinking blocks, placed on the next non-thought part (the Gemini CLI drops thought parts from its
history, but keeps every other part as it came). The client echoes it, and the entry turns it
back into those thinking blocks. base64, because google-genai decodes a signature as bytes and
re-encodes it with the URL-safe alphabet.
"""
from __future__ import annotations

import base64
import binascii
import logging
from typing import Any

import orjson

from ... import ir

log = logging.getLogger("ferryllm.translate")

PROTOCOL = "gemini"
# signatures the real API accepts in place of a lost one (documented; Gemini CLI uses the first)
DUMMY_SIGNATURES = frozenset({"skip_thought_signature_validator",
                              "context_engineering_is_the_way_to_go"})
SKIP_SIGNATURE = "skip_thought_signature_validator"

# ---------------------------------------------------------------- field names

_SNAKE: dict[str, str] = {}


def snake(name: str) -> str:
    s = _SNAKE.get(name)
    if s is None:
        s = _SNAKE[name] = "".join("_" + c.lower() if c.isupper() else c for c in name)
    return s


def get(obj: dict, name: str) -> Any:
    """`obj[name]`, else `obj[snake_case(name)]`, else None (`name` is lowerCamelCase)."""
    value = obj.get(name)
    if value is None:
        value = obj.get(snake(name))
    return value


# ---------------------------------------------------------------- errors

STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                404: "NOT_FOUND", 408: "DEADLINE_EXCEEDED", 409: "ABORTED",
                413: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED",
                500: "INTERNAL", 501: "UNIMPLEMENTED", 502: "UNAVAILABLE",
                503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED", 529: "UNAVAILABLE"}
STATUS_CODES = {"INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400,
                "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404,
                "ALREADY_EXISTS": 409, "ABORTED": 409, "RESOURCE_EXHAUSTED": 429,
                "CANCELLED": 499, "INTERNAL": 500, "UNKNOWN": 500, "DATA_LOSS": 500,
                "UNIMPLEMENTED": 501, "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504}


def status_name(status: int) -> str:
    name = STATUS_NAMES.get(status)
    if name is None:
        name = "INVALID_ARGUMENT" if 400 <= status < 500 else "INTERNAL"
    return name


def error_object(status: int, message: str) -> dict:
    return {"error": {"code": status, "message": message, "status": status_name(status)}}


# ---------------------------------------------------------------- finish reasons

FINISH_REASONS = {ir.END_TURN: "STOP", ir.TOOL_USE: "STOP", ir.STOP_SEQUENCE: "STOP",
                  ir.PAUSE_TURN: "STOP", ir.MAX_TOKENS: "MAX_TOKENS", ir.REFUSAL: "SAFETY",
                  ir.CONTEXT_WINDOW_EXCEEDED: "MAX_TOKENS"}
# Gemini finish reason → IR stop reason; STOP with a function call is tool_use (the decoders
# decide), MALFORMED_FUNCTION_CALL / UNEXPECTED_TOOL_CALL are upstream errors (see RETRY_REASONS)
STOP_REASONS = {"STOP": ir.END_TURN, "MAX_TOKENS": ir.MAX_TOKENS, "SAFETY": ir.REFUSAL,
                "RECITATION": ir.REFUSAL, "BLOCKLIST": ir.REFUSAL,
                "PROHIBITED_CONTENT": ir.REFUSAL, "SPII": ir.REFUSAL, "IMAGE_SAFETY": ir.REFUSAL,
                "LANGUAGE": ir.REFUSAL, "OTHER": ir.END_TURN,
                "FINISH_REASON_UNSPECIFIED": ir.END_TURN, "TOO_MANY_TOOL_CALLS": ir.END_TURN}
RETRY_REASONS = frozenset({"MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL"})


def finish_reason(stop_reason: str | None) -> str:
    return FINISH_REASONS.get(stop_reason, "STOP") if stop_reason else "STOP"


# ---------------------------------------------------------------- usage


def usage_metadata(usage: ir.Usage) -> dict:
    """IR usage → `usageMetadata`: `promptTokenCount` counts cached tokens too; thinking is
    inside `candidatesTokenCount` (the IR does not split it out)."""
    prompt = usage.prompt_tokens
    out = {"promptTokenCount": prompt, "candidatesTokenCount": usage.output_tokens,
           "totalTokenCount": prompt + usage.output_tokens}
    if usage.cache_read_input_tokens:
        out["cachedContentTokenCount"] = usage.cache_read_input_tokens
    return out


def _count(meta: dict, name: str) -> int:
    value = meta.get(name)
    return value if value.__class__ is int and value > 0 else 0


def usage_from(meta: dict) -> ir.Usage:
    """`usageMetadata` (a provider's answer: camelCase) → IR usage: cached tokens taken out of
    the prompt count; thoughts are output (`candidatesTokenCount` excludes them)."""
    prompt = _count(meta, "promptTokenCount") + _count(meta, "toolUsePromptTokenCount")
    cached = min(_count(meta, "cachedContentTokenCount"), prompt)
    return ir.Usage(input_tokens=prompt - cached,
                    output_tokens=_count(meta, "candidatesTokenCount")
                    + _count(meta, "thoughtsTokenCount"),
                    cache_read_input_tokens=cached)


# ---------------------------------------------------------------- schemas

# OpenAPI-subset Schema keys (both spellings) → JSON Schema keys; `type`, `nullable`,
# `properties`, `items`, `anyOf` are handled apart, `propertyOrdering` and `example` dropped
_SCHEMA_KEYS = {"format": "format", "title": "title", "description": "description",
                "enum": "enum", "default": "default", "pattern": "pattern",
                "required": "required", "minimum": "minimum", "maximum": "maximum",
                "minItems": "minItems", "maxItems": "maxItems", "minLength": "minLength",
                "maxLength": "maxLength", "minProperties": "minProperties",
                "maxProperties": "maxProperties"}
_SCHEMA_KEYS.update({snake(k): v for k, v in list(_SCHEMA_KEYS.items())})
_MAX_DEPTH = 64


def openapi_to_json_schema(schema: Any, depth: int = 0) -> dict:
    """Gemini's `Schema` (OpenAPI 3.0 subset: upper-case types, `nullable`) → JSON Schema.
    Raises ValueError (with the reason) on what is not a schema."""
    if not isinstance(schema, dict):
        raise ValueError("must be an object")
    if depth > _MAX_DEPTH:
        raise ValueError("nested too deeply")
    out: dict[str, Any] = {}
    kind = schema.get("type")
    if kind is not None:
        if not isinstance(kind, str):
            raise ValueError("type must be a string")
        kind = kind.lower()
        if kind != "type_unspecified":
            out["type"] = kind
    for key, value in schema.items():
        mapped = _SCHEMA_KEYS.get(key)
        if mapped is not None:
            out[mapped] = value
    props = schema.get("properties")
    if props is not None:
        if not isinstance(props, dict):
            raise ValueError("properties must be an object")
        out["properties"] = {name: openapi_to_json_schema(sub, depth + 1)
                             for name, sub in props.items()}
    items = schema.get("items")
    if items is not None:
        out["items"] = openapi_to_json_schema(items, depth + 1)
    any_of = get(schema, "anyOf")
    if any_of is not None:
        if not isinstance(any_of, list):
            raise ValueError("anyOf must be an array")
        out["anyOf"] = [openapi_to_json_schema(s, depth + 1) for s in any_of]
    if schema.get("nullable") is True:
        if "type" in out:
            out["type"] = [out["type"], "null"]
        elif "anyOf" in out:
            out["anyOf"].append({"type": "null"})
    return out


def lower_types(schema: Any, depth: int = 0) -> Any:
    """A JSON Schema with OpenAPI-style upper-case `type` names (`"OBJECT"`, which the real API
    takes in `parametersJsonSchema` and `responseJsonSchema` too and the Gemini CLI sends) in
    lower case. The same object comes back when nothing had to change."""
    if depth > _MAX_DEPTH:
        return schema
    if isinstance(schema, list):
        items = [lower_types(s, depth + 1) for s in schema]
        return schema if all(a is b for a, b in zip(items, schema)) else items
    if not isinstance(schema, dict):
        return schema
    out = None
    for key, value in schema.items():
        if key == "type":
            new = value.lower() if isinstance(value, str) else (
                [v.lower() if isinstance(v, str) else v for v in value]
                if isinstance(value, list) else value)
            if new != value:
                out = out or dict(schema)
                out[key] = new
        elif isinstance(value, (dict, list)):
            new = lower_types(value, depth + 1)
            if new is not value:
                out = out or dict(schema)
                out[key] = new
    return schema if out is None else out


# ---------------------------------------------------------------- signature envelope

ENVELOPE_MAGIC = b"ferryllm:sig"  # 12 bytes: a fixed 16-character base64 prefix
ENVELOPE_PREFIX = base64.b64encode(ENVELOPE_MAGIC).decode()
_URLSAFE = str.maketrans("-_", "+/")


def envelope(blocks: list[ir.ThinkingBlock]) -> str:
    """Thinking blocks signed by another kind of provider, as one base64 thoughtSignature."""
    items = []
    for b in blocks:
        item: dict[str, Any] = {"t": b.thinking}
        if b.signature:
            item["s"] = b.signature
        if b.redacted:
            item["d"] = b.data or ""
        items.append(item)
    return base64.b64encode(ENVELOPE_MAGIC + orjson.dumps(items)).decode()


def open_envelope(value: str) -> list[ir.ThinkingBlock] | None:
    """The thinking blocks in an envelope, or None when `value` is not one (a Gemini signature)."""
    if not value.startswith(ENVELOPE_PREFIX):
        return None
    try:
        data = base64.b64decode(value.translate(_URLSAFE) + "=" * (-len(value) % 4))
        items = orjson.loads(data[len(ENVELOPE_MAGIC):])
        out = []
        for item in items:
            if "d" in item:
                out.append(ir.ThinkingBlock(redacted=True, data=str(item["d"])))
            else:
                out.append(ir.ThinkingBlock(thinking=str(item.get("t", "")),
                                            signature=item.get("s")))
        return out
    except (binascii.Error, ValueError, TypeError, AttributeError):
        log.debug("dropped a malformed signature envelope")
        return []


def thought_signature(block: ir.ThinkingBlock) -> str | None:
    """The raw Gemini signature of a thinking block, when a Gemini provider made it."""
    return ir.own_signature(PROTOCOL, block.signature)


def foreign(block: ir.ThinkingBlock) -> bool:
    """A thinking block another kind of provider signed (or redacted): it needs an envelope."""
    return block.redacted or (bool(block.signature) and thought_signature(block) is None)


def signed(block: ir.ThinkingBlock) -> bool:
    return block.redacted or bool(block.signature)


class PendingSignatures:
    """Signed thinking blocks waiting for the next non-thought part of an answer to a Gemini
    client: one Gemini carrier goes as its raw signature, anything else as an envelope."""

    __slots__ = ("blocks",)

    def __init__(self) -> None:
        self.blocks: list[ir.ThinkingBlock] = []

    def take(self) -> str | None:
        blocks = self.blocks
        if not blocks:
            return None
        self.blocks = []
        if len(blocks) == 1 and not blocks[0].thinking and not blocks[0].redacted:
            raw = thought_signature(blocks[0])
            if raw:
                return raw
        return envelope(blocks)
