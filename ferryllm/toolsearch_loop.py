"""The server tool search loop: a provider that cannot search deferred tools itself calls the
search function (`toolsearch.search_tool`); ferryllm runs the search, continues the provider's
turn with the found tools loaded, and answers the client as Anthropic does, with a
`server_tool_use` block and a `tool_search_tool_result` block (`tool_references`) in place of
the call.

Hooked into the relay per attempt (`json_attempt`, `stream_pump`): a provider whose adapter
`runs_tool_search` and gets the client's own body (Anthropic) is left to do it. Bounded: at most
`MAX_SEARCHES` searches per request; a further call of the search function is dropped from the
answer. The provider calls are JSON calls (a turn must be complete to know whether it searched);
for a streaming client the whole answer is then sent as one well-formed stream, with pings
while it waits. The usage is the sum of every provider call's.
"""
from __future__ import annotations

import logging
from dataclasses import replace

import orjson

from . import ir, toolsearch
from .downstream import StreamOutput

log = logging.getLogger("ferryllm.toolsearch")

MAX_SEARCHES = 3


def needed(adapter, prepared: ir.Request) -> bool:
    return prepared.tool_search is not None and not (
        getattr(adapter, "runs_tool_search", False)
        and prepared.native_protocol == adapter.protocol and prepared.native is not None)


def _add(total: ir.Usage, more: ir.Usage) -> None:
    for name in ("input_tokens", "output_tokens", "cache_read_input_tokens",
                 "cache_creation_input_tokens", "cache_creation_1h_input_tokens",
                 "thinking_tokens"):
        setattr(total, name, getattr(total, name) + getattr(more, name))


async def run(relay, provider, adapter, req: ir.Request, route, prepared: ir.Request) -> ir.Response:
    """The provider's whole turn, searches included, as one IR response."""
    search = req.tool_search
    content: list[ir.Block] = []
    usage = ir.Usage()
    searches = 0
    first_id = None
    while True:
        resp = await relay.fetch(provider, adapter, replace(prepared, stream=False))
        _add(usage, resp.usage)
        first_id = first_id or resp.id
        calls = [b for b in resp.content if b.type == "tool_use" and b.name == search.name]
        if not calls:
            content += resp.content
            break
        own_calls = any(b.type == "tool_use" and b.name != search.name for b in resp.content)
        before = searches
        for block in resp.content:
            if block.type != "tool_use" or block.name != search.name:
                content.append(block)
            elif searches < MAX_SEARCHES:
                searches += 1
                names, error = toolsearch.search(search.kind, block.input.get("query"), req.tools)
                srv_id = "srvtoolu_" + block.id.removeprefix("call_").removeprefix("toolu_")
                content.append(ir.ServerToolUseBlock(srv_id, search.name, dict(block.input)))
                content.append(ir.ToolSearchResultBlock(srv_id, names, error))
            else:
                log.info("dropped a tool search call: at most %d per request", MAX_SEARCHES)
        if own_calls or searches == before:
            break  # the client has tools to run, or no search was left to answer
        # the provider's turn goes on with the found tools loaded: the same conversation with
        # this turn so far as its last assistant message (policy unfolds it for the provider)
        convo = replace(req, messages=[*req.messages, ir.Message("assistant", list(content))])
        prepared = relay.prepare(convo, route, provider)
    stop = resp.stop_reason
    if stop == ir.TOOL_USE and not any(b.type == "tool_use" for b in content):
        stop = ir.END_TURN  # only dropped search calls were left
    return ir.Response(id=first_id or resp.id, model=resp.model, content=content,
                       stop_reason=stop, stop_sequence=resp.stop_sequence, usage=usage,
                       stop_details=resp.stop_details)


def json_attempt(relay, attempt, req: ir.Request, route, proto, outcome):
    """`attempt` (the relay's JSON attempt), or the search loop where the provider needs it."""
    async def run_or_attempt(provider, adapter, prepared: ir.Request) -> bytes:
        if not needed(adapter, prepared):
            return await attempt(provider, adapter, prepared)
        resp = await run(relay, provider, adapter, req, route, prepared)
        outcome.usage = resp.usage
        return proto.entry.encode_response(resp, route.display_model, prepared)
    return run_or_attempt


def stream_pump(relay, pump, req: ir.Request):
    """`pump` (the relay's stream attempt), or the search loop sent as one stream."""
    async def run_or_pump(client, provider, adapter, prepared, route, proto, outcome, started,
                          loop) -> None:
        if not needed(adapter, prepared):
            return await pump(client, provider, adapter, prepared, route, proto, outcome,
                              started, loop)
        resp = await run(relay, provider, adapter, req, route, prepared)
        out = StreamOutput(client, outcome, started, loop)
        out.encoder = client.encoder = proto.entry.stream_encoder(prepared, route.display_model)
        await out.send(b"", events(resp))
    return run_or_pump


def events(resp: ir.Response) -> list[ir.StreamEvent]:
    """A whole IR response as a well-formed IR stream."""
    u = resp.usage
    out: list[ir.StreamEvent] = [ir.MessageStart(resp.id, resp.model, ir.Usage(
        u.input_tokens, 0, u.cache_read_input_tokens, u.cache_creation_input_tokens))]
    for i, block in enumerate(resp.content):
        kind = block.type
        if kind == "text":
            out += [ir.TextStart(i), ir.TextDelta(i, block.text), ir.BlockStop(i)]
        elif kind == "thinking":
            out.append(ir.ThinkingStart(i, block.data if block.redacted else None))
            if block.thinking:
                out.append(ir.ThinkingDelta(i, block.thinking))
            if block.signature:
                out.append(ir.SignatureDelta(i, block.signature))
            out.append(ir.BlockStop(i))
        elif kind == "tool_use":
            out += [ir.ToolUseStart(i, block.id, block.name),
                    ir.ToolArgsDelta(i, orjson.dumps(block.input).decode()), ir.BlockStop(i)]
        else:  # server_tool_use, tool_search_result
            out.append(ir.ServerBlock(i, block))
    out += [ir.MessageDelta(resp.stop_reason, resp.stop_sequence, u, resp.stop_details),
            ir.MessageStop()]
    return out
