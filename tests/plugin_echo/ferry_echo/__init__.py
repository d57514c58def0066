"""A fourth protocol from another distribution, registered through the `ferryllm.protocols`
entry-point group (tests/e2e/test_plugin_protocol.py installs it). The wire format is a toy:

    POST {base}/complete   {"model", "prompt", "max_tokens", "stream"}
    → {"text", "input_tokens", "output_tokens"}           (JSON)
    → {"text": …}\\n … {"done": true, "input_tokens", "output_tokens"}\\n   (NDJSON stream)

It has both sides: the adapter (`type = "echo_text"` providers) and an entry
(`POST /echo/complete`), built only from ferryllm's public pieces: the IR, errors, the registry."""
from __future__ import annotations

import orjson

from ferryllm import ir
from ferryllm.errors import GatewayError, InvalidRequest, UpstreamProtocolError, from_upstream
from ferryllm.protocols import Entry, EntryRoute, Protocol

NAME = "echo_text"


def _prompt(req: ir.Request) -> str:
    return "\n".join(b.text for m in req.messages for b in m.content if isinstance(b, ir.TextBlock))


class StreamDecoder:
    """NDJSON lines → a well-formed IR stream (one text block)."""

    def __init__(self) -> None:
        self._rest, self._started = b"", False

    def feed(self, chunk: bytes) -> list:
        data = self._rest + chunk
        lines, _, self._rest = data.rpartition(b"\n")
        out: list = []
        for line in lines.split(b"\n") if lines else ():
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise UpstreamProtocolError("echo provider sent a malformed line") from None
            if not self._started:
                self._started = True
                out += [ir.MessageStart("echo_1", "", ir.Usage()), ir.TextStart(0)]
            if obj.get("done"):
                usage = ir.Usage(obj.get("input_tokens", 0), obj.get("output_tokens", 0))
                out += [ir.BlockStop(0), ir.MessageDelta(ir.END_TURN, None, usage),
                        ir.MessageStop()]
            else:
                out.append(ir.TextDelta(0, obj["text"]))
        return out

    def close(self) -> list:
        if self._rest.strip():
            return self.feed(b"\n")
        return []


class EchoAdapter:
    protocol = NAME

    def __init__(self, provider) -> None:
        self.provider = provider
        self.url = provider.base_url + "/complete"

    def endpoint(self, req: ir.Request) -> str:
        return self.url

    def headers(self, req: ir.Request) -> dict:
        return {"content-type": "application/json"}

    def encode_request(self, req: ir.Request) -> bytes:
        return orjson.dumps({"model": req.model, "prompt": _prompt(req),
                             "max_tokens": req.max_tokens, "stream": req.stream})

    def decode_response(self, raw: bytes, req: ir.Request) -> ir.Response:
        obj = orjson.loads(raw)
        return ir.Response("echo_1", req.model, [ir.TextBlock(obj["text"])], ir.END_TURN,
                           usage=ir.Usage(obj["input_tokens"], obj["output_tokens"]))

    def decode_error(self, status: int, raw: bytes, headers) -> GatewayError:
        return from_upstream(status, raw.decode("utf-8", "replace")[:200],
                             provider=self.provider.name)

    def stream_decoder(self, req: ir.Request) -> StreamDecoder:
        return StreamDecoder()


# ---------------------------------------------------------------- the entry side


def decode(body: dict, http) -> ir.Request:
    prompt, model = body.get("prompt"), body.get("model")
    if not isinstance(prompt, str) or not isinstance(model, str) or not model:
        raise InvalidRequest("model and prompt must be strings")
    return ir.Request(model=model, max_tokens=256, stream=body.get("stream") is True,
                      messages=[ir.Message("user", [ir.TextBlock(prompt)])])


class StreamEncoder:
    def __init__(self, display_model: str) -> None:
        self.model = display_model

    def encode(self, events) -> bytes:
        out = b""
        for ev in events:
            if isinstance(ev, ir.TextDelta):
                out += orjson.dumps({"text": ev.text}) + b"\n"
            elif isinstance(ev, ir.MessageDelta):
                out += orjson.dumps({"done": True, "model": self.model,
                                     "output_tokens": ev.usage.output_tokens}) + b"\n"
        return out

    def error(self, err: GatewayError) -> bytes:
        return orjson.dumps({"error": str(err)}) + b"\n"


def encode_response(resp: ir.Response, display_model: str, req: ir.Request) -> bytes:
    return orjson.dumps({"model": display_model, "output_tokens": resp.usage.output_tokens,
                         "text": "".join(b.text for b in resp.content
                                         if isinstance(b, ir.TextBlock))})


PROTOCOL = Protocol(
    name=NAME,
    description="toy NDJSON completions (ferryllm plug-in test)",
    entry=Entry(routes=(EntryRoute("POST", "/echo/complete", decode=decode),),
                encode_response=encode_response,
                stream_encoder=lambda req, model: StreamEncoder(model),
                error_body=lambda err: orjson.dumps({"error": str(err)}),
                ping=b"\n", path_prefixes=("/echo/",),
                stream_content_type="application/x-ndjson"),
    adapter=EchoAdapter,
)
