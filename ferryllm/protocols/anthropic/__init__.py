"""Anthropic Messages: the entry (`POST /v1/messages`, `/v1/messages/count_tokens`) and the
adapter (`type = "anthropic"`)."""
from __future__ import annotations

import orjson

from .. import COUNT_TOKENS, Entry, EntryRoute, Protocol
from . import entry
from .adapter import AnthropicAdapter
from .entry_stream import PING, StreamEncoder


def _encode_response(resp, display_model: str, req) -> bytes:
    return orjson.dumps(entry.encode_response(resp, display_model))


def _stream_encoder(req, display_model: str) -> StreamEncoder:
    return StreamEncoder(display_model)


PROTOCOL = Protocol(
    name="anthropic",
    description="Anthropic Messages API",
    entry=Entry(
        routes=(
            EntryRoute("POST", "/v1/messages",
                       decode=lambda body, http: entry.decode_request(body, http.headers)),
            EntryRoute("POST", "/v1/messages/count_tokens", COUNT_TOKENS,
                       decode=lambda body, http: entry.decode_count_tokens(body, http.headers)),
        ),
        encode_response=_encode_response,
        stream_encoder=_stream_encoder,
        error_body=entry.error_body,
        ping=PING,
        encode_count_tokens=lambda n: {"input_tokens": n},
        path_prefixes=("/v1/messages",),
    ),
    adapter=AnthropicAdapter,
)
