"""What both sides of the Responses protocol share: usage in both directions, the error codes
Codex classifies, and how a reasoning signature travels in `encrypted_content`.

Signatures in `encrypted_content`. A Responses provider's own encrypted reasoning is opaque text
without a `:` (a Fernet token). Every other kind of signature the gateway hands a Responses
client is prefixed with the kind that made it, so a later turn gives it back to that kind only:

    IR signature (ferryllm.ir)         encrypted_content
    "<kind>:<raw>" (tagged)            the same
    "<raw>" (Anthropic, untagged)      "anthropic:<raw>"
    redacted Anthropic thinking        "anthropic_redacted:<data>"
    "openai_responses:<raw>"           "<raw>" (only a Responses provider made it)
"""
from __future__ import annotations

from typing import Any

from ... import ir
from ...errors import GatewayError

PROTOCOL = "openai_responses"
ANTHROPIC, REDACTED = "anthropic:", "anthropic_redacted:"

# error codes the Codex CLI acts on (rate_limit_exceeded: retry after "try again in Ns";
# context_length_exceeded: compact; insufficient_quota: stop)
_CONTEXT_HINTS = ("context length", "context window", "maximum context", "prompt is too long",
                  "too many tokens", "context_length_exceeded")


def error_code(err: GatewayError) -> str:
    """The `code` a Responses client gets for `err` (Codex classifies by it)."""
    message = (getattr(err, "message", None) or str(err)).lower()
    if err.status == 429 or err.kind == "rate_limit_error":
        return "insufficient_quota" if "quota" in message else "rate_limit_exceeded"
    if err.status < 500 and any(h in message for h in _CONTEXT_HINTS):
        return "context_length_exceeded"
    if err.code and err.code not in ("upstream_error", "api_error"):
        return err.code
    if err.status >= 500:
        return "server_error"
    return "invalid_request_error"


# ---------------------------------------------------------------- usage


def _n(value: Any) -> int:
    return value if value.__class__ is int else 0


_USAGE = (b'{"input_tokens":%d,"input_tokens_details":{"cached_tokens":%d,"cache_write_tokens":%d},'
          b'"output_tokens":%d,"output_tokens_details":{"reasoning_tokens":%d},"total_tokens":%d}')


def usage_json(usage: ir.Usage) -> bytes:
    """IR usage → the Responses usage object, serialized (a template: it is on every stream's
    last event). `input_tokens` counts cache reads and writes too."""
    prompt = usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens
    return _USAGE % (prompt, usage.cache_read_input_tokens, usage.cache_creation_input_tokens,
                     usage.output_tokens, usage.thinking_tokens, prompt + usage.output_tokens)


def usage_from_responses(raw: Any) -> ir.Usage:
    """Responses usage → IR usage (IR `input_tokens` excludes cached tokens)."""
    if raw.__class__ is not dict:
        return ir.Usage()
    details = raw.get("input_tokens_details")
    cached = written = 0
    if details.__class__ is dict:
        cached, written = _n(details.get("cached_tokens")), _n(details.get("cache_write_tokens"))
    out = raw.get("output_tokens_details")
    thinking = _n(out.get("reasoning_tokens")) if out.__class__ is dict else 0
    return ir.Usage(input_tokens=max(_n(raw.get("input_tokens")) - cached - written, 0),
                    output_tokens=_n(raw.get("output_tokens")),
                    cache_read_input_tokens=cached, cache_creation_input_tokens=written,
                    thinking_tokens=thinking)


# ---------------------------------------------------------------- encrypted_content


def secret_for(block: ir.ThinkingBlock) -> str | None:
    """A thinking block's signature as a Responses client carries it (`encrypted_content`)."""
    if block.redacted:
        return REDACTED + block.data if block.data else None
    sig = block.signature
    if not sig:
        return None
    own = ir.own_signature(PROTOCOL, sig)
    if own is not None:
        return own
    return sig if ir.own_signature(None, sig) is None else ANTHROPIC + sig


def thinking_from_secret(text: str, secret: str | None) -> ir.ThinkingBlock:
    """`encrypted_content` (and the reasoning text) a client sent back → an IR thinking block
    whose signature names the kind of provider that made it."""
    if not secret:
        return ir.ThinkingBlock(text)
    if secret.startswith(REDACTED):
        return ir.ThinkingBlock(redacted=True, data=secret[len(REDACTED):])
    if secret.startswith(ANTHROPIC):
        return ir.ThinkingBlock(text, signature=secret[len(ANTHROPIC):])
    head, sep, raw = secret.partition(":")
    if sep and head.isidentifier() and raw:
        return ir.ThinkingBlock(text, signature=secret)  # another kind's, tagged
    return ir.ThinkingBlock(text, signature=ir.tag_signature(PROTOCOL, secret))


def foreign_secret(secret: Any) -> bool:
    """True for an `encrypted_content` a Responses provider did not make (the gateway tagged
    it for another kind): a pass-through body must not carry it upstream."""
    if secret.__class__ is not str:
        return False
    head, sep, raw = secret.partition(":")
    return bool(sep and head.isidentifier())
