"""The protocol registry: name → `Protocol` (its entry side, its adapter side).

A protocol is one package, `ferryllm/protocols/<name>/`, whose `__init__` defines `PROTOCOL`. The
server builds its routes from the entries listed here, the relay renders errors and streams
through them, and a provider's `type` names the adapter. Nothing outside `protocols/` names a
protocol: adding one is a package plus a line in `BUILTINS`, or, from another distribution, an
entry point in the `ferryllm.protocols` group whose object is a `Protocol` (or a module with
`PROTOCOL`):

    [options.entry_points]
    ferryllm.protocols =
        myproto = myproto_package:PROTOCOL

Built-ins and entry points are loaded on first use, so importing this module is cheap and
`config` can ask it which provider types exist.
"""
from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Callable, Mapping

from .. import ir
from ..errors import GatewayError

log = logging.getLogger("ferryllm.protocols")

ENTRY_POINT_GROUP = "ferryllm.protocols"
BUILTINS = {
    "anthropic": "ferryllm.protocols.anthropic",
    "openai": "ferryllm.protocols.openai",
    "openai_responses": "ferryllm.protocols.openai_responses",
    "gemini": "ferryllm.protocols.gemini",
}

# route kinds the server knows how to run
CHAT, COUNT_TOKENS, MODELS = "chat", "count_tokens", "models"


@dataclass(frozen=True, slots=True)
class EntryRoute:
    """One HTTP route of an entry. `decode(body, http)` turns the client's JSON body into an IR
    request; `http` is the incoming request (read only: `.headers`, `.query`, `.match_info`),
    for protocols that put the model or the stream flag in the URL. A `models` route has no
    decode: the entry's `encode_models` renders the list."""

    method: str
    path: str
    kind: str = CHAT
    decode: Callable[[dict, Any], ir.Request] | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """The client side of a protocol: what the server and the relay need to serve it.

    - `encode_response(resp, display_model, req) -> bytes` (the JSON body; `req` is the decoded
      request, for answers that depend on it, e.g. the Responses API echoes its settings);
    - `stream_encoder(req, display_model)` → an object with `encode(events) -> bytes` and
      `error(err) -> bytes` (the in-band error frame);
    - `error_body(err) -> bytes` (the HTTP error body before the first byte);
    - `ping`: the keep-alive frame for a silent stream;
    - `encode_count_tokens(n) -> dict` for `count_tokens` routes;
    - `encode_models(rows) -> dict` for `models` routes (rows: dicts of id, owned_by, …);
    - `client_keys(http) -> list[str]`: keys the client sent where this protocol puts them
      beyond `Authorization: Bearer` and `x-api-key` (e.g. a query parameter); None: nowhere else.
    - `path_prefixes`: paths whose 404/405 answers use this entry's error shape.
    """

    routes: tuple[EntryRoute, ...]
    encode_response: Callable[[ir.Response, str, ir.Request], bytes]
    stream_encoder: Callable[[ir.Request, str], Any]
    error_body: Callable[[GatewayError], bytes]
    ping: bytes
    encode_count_tokens: Callable[[int], dict] | None = None
    encode_models: Callable[[list[dict]], dict] | None = None
    client_keys: Callable[[Any], list[str]] | None = None
    path_prefixes: tuple[str, ...] = ()
    # or a function of the decoded request, for a protocol with more than one stream format
    stream_content_type: str | Callable[[ir.Request], str] = "text/event-stream; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Protocol:
    """`adapter(provider_config)` builds the provider side: an object with `protocol` (this
    name), `endpoint(req) -> url`, `headers(req)`, `encode_request(req) -> bytes`,
    `decode_response(raw, req) -> ir.Response`, `decode_error(status, raw, headers) ->
    GatewayError`, `stream_decoder(req)` (`feed(bytes)`/`close()` → IR events), and optionally
    `count_tokens(req) -> (url, body) | None` with `decode_count_tokens(raw) -> int`, and
    `prompt_cache_key: bool` (the provider takes a routing key and strict tool schemas)."""

    name: str
    entry: Entry | None = None
    adapter: Callable[[Any], Any] | None = None
    description: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


_registry: dict[str, Protocol] = {}
_loaded = False


def register(protocol: Protocol) -> None:
    """Add (or replace) a protocol by name; for tests and library users."""
    _load()
    _registry[protocol.name] = protocol


def _from(obj: Any, origin: str) -> Protocol:
    proto = getattr(obj, "PROTOCOL", obj)
    if callable(proto) and not isinstance(proto, Protocol):
        proto = proto()
    if not isinstance(proto, Protocol):
        raise TypeError(f"{origin} does not give a ferryllm Protocol")
    return proto


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for name, module in BUILTINS.items():
        _registry[name] = _from(importlib.import_module(module), module)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in BUILTINS:
            log.warning("protocol plug-in %r ignored: a built-in has that name", ep.name)
            continue
        try:
            _registry[ep.name] = _from(ep.load(), f"entry point {ep.value}")
        except Exception as exc:  # noqa: BLE001 - a broken plug-in must not stop the gateway
            log.error("protocol plug-in %r could not be loaded: %s", ep.name, exc)


def get(name: str) -> Protocol:
    _load()
    return _registry[name]


def all_protocols() -> list[Protocol]:
    _load()
    return list(_registry.values())


def entries() -> list[Protocol]:
    """Protocols with a client side, in registration order."""
    return [p for p in all_protocols() if p.entry is not None]


def provider_types() -> tuple[str, ...]:
    """The names a provider's `type` may take: protocols with an adapter."""
    return tuple(p.name for p in all_protocols() if p.adapter is not None)


def entry_for_path(path: str) -> Protocol:
    """The entry whose `path_prefixes` best match `path` (longest prefix), else the first entry:
    the shape of a 404/405 on a path no route serves."""
    best, best_len = None, -1
    for proto in entries():
        for prefix in proto.entry.path_prefixes:
            if path.startswith(prefix) and len(prefix) > best_len:
                best, best_len = proto, len(prefix)
    return best or entries()[0]
