"""OpenAI Chat Completions: the entry (`POST /v1/chat/completions`, `GET /v1/models`) and the
adapter for OpenAI-compatible providers (`type = "openai"`)."""
from __future__ import annotations

import time

import orjson

from .. import MODELS, Entry, EntryRoute, Protocol
from . import entry
from .adapter import OpenAIAdapter
from .entry_stream import StreamEncoder


def _stream_encoder(req, display_model: str) -> StreamEncoder:
    return StreamEncoder(display_model, req.include_usage, created=int(time.time()))


def _encode_response(resp, display_model: str, req) -> bytes:
    return orjson.dumps(entry.encode_response(resp, display_model, created=int(time.time())))


def _encode_models(rows: list[dict]) -> dict:
    """OpenAI's list format, with the fields Anthropic's model list has too (`type`,
    `display_name`, `created_at`, `has_more`, `first_id`, `last_id`): both SDKs read it."""
    data = [{"id": r["id"], "object": "model", "type": "model", "created": 0,
             "created_at": "1970-01-01T00:00:00Z", "display_name": r["id"],
             "owned_by": r["owned_by"], "match_type": r["match_type"],
             "backend_model": r["backend_model"]} for r in rows]
    return {"object": "list", "data": data, "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None}


PROTOCOL = Protocol(
    name="openai",
    description="OpenAI Chat Completions API",
    entry=Entry(
        routes=(
            EntryRoute("POST", "/v1/chat/completions",
                       decode=lambda body, http: entry.decode_request(body, http.headers)),
            EntryRoute("GET", "/v1/models", MODELS),
        ),
        encode_response=_encode_response,
        stream_encoder=_stream_encoder,
        error_body=entry.error_body,
        ping=StreamEncoder.PING,
        encode_models=_encode_models,
        path_prefixes=("/",),  # the shape of a 404 on a path no entry claims
    ),
    adapter=OpenAIAdapter,
)
