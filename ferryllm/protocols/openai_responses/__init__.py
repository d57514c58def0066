"""OpenAI Responses API: the entry (`POST /v1/responses`, alias `POST /responses`: what the
Codex CLI speaks) and the adapter for providers that speak it (`type = "openai_responses"`)."""
from __future__ import annotations

import time

from .. import Entry, EntryRoute, Protocol
from . import entry, output
from .adapter import ResponsesAdapter
from .entry_stream import StreamEncoder


def _stream_encoder(req, display_model: str) -> StreamEncoder:
    return StreamEncoder(display_model, req.entry_context, created=int(time.time()))


def _encode_response(resp, display_model: str, req) -> bytes:
    return output.encode_response(resp, display_model, req, created=int(time.time()))


def _decode(body, http):
    return entry.decode_request(body, http.headers)


PROTOCOL = Protocol(
    name="openai_responses",
    description="OpenAI Responses API",
    entry=Entry(
        routes=(EntryRoute("POST", "/v1/responses", decode=_decode),
                EntryRoute("POST", "/responses", decode=_decode)),
        encode_response=_encode_response,
        stream_encoder=_stream_encoder,
        error_body=entry.error_body,
        ping=StreamEncoder.PING,
        path_prefixes=("/v1/responses", "/responses"),
    ),
    adapter=ResponsesAdapter,
)
