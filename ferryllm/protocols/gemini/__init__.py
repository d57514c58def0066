"""Gemini `generateContent`: the entry (`/v1beta/models/{model}:generateContent`,
`:streamGenerateContent?alt=sse`, `:countTokens`, the same under `/v1/`, and `GET
/v1beta/models`) and the adapter (`type = "gemini"`)."""
from __future__ import annotations

import orjson

from .. import COUNT_TOKENS, MODELS, Entry, EntryRoute, Protocol
from . import entry
from .adapter import GeminiAdapter
from .entry_stream import PING, StreamEncoder

# `{model}` may hold a `models/` prefix (a slash) but never the `:` before the action
_CHAT = "/{version}/models/{{model:[^:]+}}:{{action:generateContent|streamGenerateContent}}"
_COUNT = "/{version}/models/{{model:[^:]+}}:countTokens"


def _decode(body, http):
    # no action (the library's `Translator` gives only the model): generateContent
    stream = http.match_info.get("action") == "streamGenerateContent"
    req = entry.decode(body, http.match_info["model"], stream=stream)
    if stream and http.query.get("alt") != "sse":
        # the real API's other stream format: one JSON array of the same chunks. Translated
        # even for a Gemini provider (whose SSE bytes cannot be relayed as they are)
        req.entry_context.array = True
        req.native_protocol = None
    return req


def _stream_content_type(req) -> str:
    ctx = req.entry_context
    array = isinstance(ctx, entry.Context) and ctx.array
    return "application/json; charset=utf-8" if array else "text/event-stream; charset=utf-8"


def _decode_count(body, http):
    return entry.decode_count_tokens(body, http.match_info["model"])


def _client_keys(http) -> list[str]:
    """Google's places for a key: the `x-goog-api-key` header and the `key` query parameter."""
    keys = []
    header = http.headers.get("x-goog-api-key")
    if header and header.strip():
        keys.append(header.strip())
    query = http.query.get("key")
    if query:
        keys.append(query)
    return keys


def _stream_encoder(req, display_model: str) -> StreamEncoder:
    ctx = req.entry_context
    return StreamEncoder(display_model, entry.include_thoughts(req),
                         array=isinstance(ctx, entry.Context) and ctx.array)


def _encode_response(resp, display_model: str, req) -> bytes:
    return orjson.dumps(entry.encode_response(resp, display_model, req))


PROTOCOL = Protocol(
    name="gemini",
    description="Google Gemini generateContent API",
    entry=Entry(
        routes=(
            *(EntryRoute("POST", _CHAT.format(version=v), decode=_decode)
              for v in ("v1beta", "v1")),
            *(EntryRoute("POST", _COUNT.format(version=v), COUNT_TOKENS, decode=_decode_count)
              for v in ("v1beta", "v1")),
            EntryRoute("GET", "/v1beta/models", MODELS),
        ),
        encode_response=_encode_response,
        stream_encoder=_stream_encoder,
        error_body=entry.error_body,
        ping=PING,
        encode_count_tokens=lambda n: {"totalTokens": n},
        encode_models=entry.encode_models,
        client_keys=_client_keys,
        stream_content_type=_stream_content_type,
        path_prefixes=("/v1beta/",),  # /v1/models/… 404s keep the OpenAI shape (its list)
    ),
    adapter=GeminiAdapter,
)
