"""Sans-IO translation between any two registered protocols, for library users.

    t = Translator(client="anthropic", provider="openai")
    upstream = t.request(client_body)            # client JSON (dict) → provider body (bytes)
    answer = t.response(provider_bytes)          # provider JSON body → client JSON (bytes)
    stream = t.stream()                          # provider SSE bytes → client SSE bytes
    out = stream.feed(chunk) ... + stream.close()

The same pieces the gateway runs, without sockets, clocks or the event loop: the client
protocol's entry decodes into the IR, the provider protocol's adapter encodes it (and decodes the
provider's answer), the entry encodes the answer for the client. A `Translator` is one request:
the decoded request stays with it, since decoding an answer needs it (tool-name maps, stop
sequences, the model to report). Routing, policies, retries and limits are the gateway's; see
docs/library.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import orjson

from . import ir, protocols
from .config import ProviderConfig
from .errors import GatewayError
from .protocols import CHAT

__all__ = ["Translator", "StreamTranslator", "HttpView"]


@dataclass(frozen=True, slots=True)
class HttpView:
    """What an entry's `decode` may read of the HTTP request: headers, query, path parameters
    (a protocol that puts the model in the URL reads `match_info["model"]`)."""

    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    match_info: Mapping[str, str] = field(default_factory=dict)


class Translator:
    """One request from a `client` protocol to a `provider` protocol.

    `provider_config` carries the provider options the adapter honours (`max_tokens_cap`,
    `max_completion_tokens`, …); by default a bare provider of the `provider` type. `model`
    replaces the client's model upstream (the client still sees its own). `http` is the client's
    request line for protocols that put fields in the URL or headers."""

    def __init__(self, client: str, provider: str, *, model: str | None = None,
                 provider_config: ProviderConfig | None = None, http: HttpView | None = None,
                 stream: bool | None = None) -> None:
        self.client = protocols.get(client)
        if self.client.entry is None:
            raise ValueError(f"protocol {client!r} has no client side")
        target = protocols.get(provider)
        if target.adapter is None:
            raise ValueError(f"protocol {provider!r} has no provider side")
        self.adapter = target.adapter(provider_config or ProviderConfig(
            name="library", type=provider, base_url="http://provider.invalid"))
        self._decode = next(r.decode for r in self.client.entry.routes if r.kind == CHAT)
        self._model, self._stream, self._http = model, stream, http
        self.ir_request: ir.Request | None = None
        self.display_model = ""

    def decode(self, body: dict) -> ir.Request:
        """Client body → IR request (raises `InvalidRequest` naming the field)."""
        http = self._http or HttpView(match_info={"model": str(body.get("model", ""))})
        req = self._decode(body, http)
        if self._stream is not None:
            req.stream = self._stream
        self.display_model = req.model
        if self._model:
            req.model = self._model
        self.ir_request = req
        return req

    def request(self, body: dict) -> bytes:
        """Client body → the provider's request body."""
        return self.adapter.encode_request(self.decode(body))

    def endpoint(self) -> str:
        """The provider URL the request goes to (after `request`)."""
        return self.adapter.endpoint(self._req())

    def response(self, raw: bytes) -> bytes:
        """The provider's JSON answer → the client's JSON answer."""
        req = self._req()
        if self.adapter.protocol == self.client.name and req.native_protocol == self.client.name:
            body = orjson.loads(raw)
            if isinstance(body, dict) and "model" in body:
                body["model"] = self.display_model
            return orjson.dumps(body)
        return self.client.entry.encode_response(self.adapter.decode_response(raw, req),
                                                 self.display_model, req)

    def error(self, status: int, raw: bytes, headers: Mapping[str, str] | None = None) -> bytes:
        """A provider error answer → the client's error body."""
        err = self.adapter.decode_error(status, raw, headers or {})
        return self.client.entry.error_body(err)

    def stream(self) -> StreamTranslator:
        return StreamTranslator(self.adapter.stream_decoder(self._req()),
                                self.client.entry.stream_encoder(self._req(), self.display_model))

    def _req(self) -> ir.Request:
        if self.ir_request is None:
            raise RuntimeError("call request() (or decode()) first")
        return self.ir_request


class StreamTranslator:
    """Provider stream bytes in, client stream bytes out, as they arrive. An error the provider
    reports mid-stream becomes the client protocol's in-band error frame, after the events
    decoded before it."""

    __slots__ = ("_decoder", "_encoder", "_done")

    def __init__(self, decoder: Any, encoder: Any) -> None:
        self._decoder, self._encoder, self._done = decoder, encoder, False

    def feed(self, chunk: bytes) -> bytes:
        return self._run(self._decoder.feed, chunk)

    def close(self) -> bytes:
        return self._run(self._decoder.close)

    def _run(self, step, *args) -> bytes:
        if self._done:
            return b""
        try:
            events = step(*args)
        except GatewayError as err:
            self._done = True
            pending = getattr(err, "events", None)
            head = self._encoder.encode(pending) if pending else b""
            return head + self._encoder.error(err)
        return self._encoder.encode(events) if events else b""
