"""The internal representation every path goes through: client protocol → IR → provider protocol.

The IR is protocol-neutral. Entries (`ferryllm.entry.*`) decode client JSON into it and encode IR
responses and stream events back; adapters (`ferryllm.adapters.*`) encode it for a provider and
decode the provider's answers into it. Entries and adapters never import each other.

Conventions (fixed, every translator relies on them):
- `Usage.input_tokens` EXCLUDES cached tokens (cache reads and cache writes are counted apart);
  an OpenAI `prompt_tokens` is `input_tokens + cache_read_input_tokens + cache_creation_input_tokens`.
- Block indices in stream events count from 0 and are consecutive; one block is open at a time.
- A well-formed IR stream is: MessageStart, then blocks (BlockStart, deltas, BlockStop)*, then
  exactly one MessageDelta (stop reason + full usage), then MessageStop.
- Stream events are flat mutable slotted dataclasses: cheap to build on the hot path.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Union

# ---------------------------------------------------------------- stop reasons

END_TURN = "end_turn"
MAX_TOKENS = "max_tokens"
TOOL_USE = "tool_use"
STOP_SEQUENCE = "stop_sequence"
REFUSAL = "refusal"
PAUSE_TURN = "pause_turn"
CONTEXT_WINDOW_EXCEEDED = "model_context_window_exceeded"  # Anthropic: the window, not max_tokens
StopReason = str  # one of the constants above

# ---------------------------------------------------------------- content blocks


@dataclass(slots=True)
class TextBlock:
    text: str
    type: Literal["text"] = "text"


@dataclass(slots=True)
class ImageBlock:
    """An image: either inline base64 `data` with its `media_type`, or a `url`."""

    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    type: Literal["image"] = "image"


@dataclass(slots=True)
class ToolUseBlock:
    id: str
    name: str
    input: dict[str, Any]
    type: Literal["tool_use"] = "tool_use"


@dataclass(slots=True)
class ToolReferenceBlock:
    """Inside a tool result: "the tool `tool_name` is now loaded" (a tool search's answer, e.g.
    Claude Code's `ToolSearch`). `policy.resolve_deferred` turns it into text carrying the
    tool's definition for providers that do not load deferred tools themselves."""

    tool_name: str
    type: Literal["tool_reference"] = "tool_reference"


@dataclass(slots=True)
class ToolResultBlock:
    tool_use_id: str
    content: list[TextBlock | ImageBlock | ToolReferenceBlock] = field(default_factory=list)
    is_error: bool = False
    type: Literal["tool_result"] = "tool_result"


@dataclass(slots=True)
class ThinkingBlock:
    """Model reasoning. `signature` is None/"" when the reasoning came from a provider that does not
    sign it (an OpenAI-compatible backend); such a block must never be sent to an Anthropic
    provider. `redacted` blocks carry the opaque payload in `data` instead of `thinking`.
    A signature is only ever sent back to the kind of provider that made it: see
    `tag_signature`."""

    thinking: str = ""
    signature: str | None = None
    redacted: bool = False
    data: str | None = None
    type: Literal["thinking"] = "thinking"


# Signatures (thinking signatures, Gemini thought signatures, Responses encrypted reasoning) are
# opaque and only valid for the kind of provider that made them. Anthropic's travel as they are
# (Claude Code keeps them byte for byte; pass-through relays them untouched); every other
# protocol's adapter tags its own as "<protocol>:<raw>" before they enter the IR, and an adapter
# sends back only the signatures it can claim (`own_signature`), dropping the rest. Raw Anthropic
# signatures are base64 and never contain ":".


def tag_signature(protocol: str, raw: str) -> str:
    return f"{protocol}:{raw}"


def own_signature(protocol: str | None, signature: str | None) -> str | None:
    """The raw signature if `signature` was made by `protocol`'s kind of provider, else None.
    `protocol=None` claims the untagged (Anthropic) form."""
    if not signature:
        return None
    head, sep, raw = signature.partition(":")
    if protocol is None:
        return None if sep and head.isidentifier() else signature
    return raw if sep and head == protocol and raw else None


@dataclass(slots=True)
class ServerToolUseBlock:
    """A tool the server side ran in the middle of the answer (Anthropic's `server_tool_use`):
    so far a tool search (`ServerToolSearch`), which ferryllm runs for providers without one."""

    id: str
    name: str
    input: dict[str, Any]
    type: Literal["server_tool_use"] = "server_tool_use"


@dataclass(slots=True)
class ToolSearchResultBlock:
    """The answer to a tool search (`ServerToolUseBlock`): the names of the tools it loaded, or
    an error code (`invalid_tool_input`, `unavailable`, …)."""

    tool_use_id: str
    tool_names: list[str] = field(default_factory=list)
    error: str | None = None
    type: Literal["tool_search_result"] = "tool_search_result"


Block = Union[TextBlock, ImageBlock, ToolUseBlock, ToolResultBlock, ThinkingBlock,
              ServerToolUseBlock, ToolSearchResultBlock]


@dataclass(slots=True)
class Message:
    """`system` is an instruction in the middle of the conversation (Claude Code 2.1 sends its
    environment this way); an adapter places it as its protocol allows."""

    role: Literal["user", "assistant", "system"]
    content: list[Block]


# ---------------------------------------------------------------- tools


@dataclass(slots=True)
class Tool:
    """`freeform` marks a tool that takes raw text instead of JSON arguments (an OpenAI Responses
    `custom` tool, e.g. Codex's `apply_patch`); it holds the tool's `format` (`{"type": "text"}`
    or a grammar). Such a tool still has an `input_schema` of one string property `input`, so an
    adapter whose provider lacks freeform tools sends it as an ordinary function.

    `deferred`: declared but not loaded (Anthropic's `defer_loading`): the model only gets the
    tool once a tool reference in the conversation names it (`policy.resolve_deferred`)."""

    name: str
    description: str | None
    input_schema: dict[str, Any]
    freeform: dict[str, Any] | None = None
    deferred: bool = False


@dataclass(slots=True)
class ServerToolSearch:
    """The client asked the server to search its deferred tools (Anthropic's
    `tool_search_tool_regex_*` / `tool_search_tool_bm25_*`): `kind` "regex" or "bm25", `name`
    the tool's name in the conversation."""

    kind: Literal["regex", "bm25"]
    name: str


@dataclass(slots=True)
class ToolChoice:
    """`auto` (model decides), `any` (must call some tool), `tool` (must call `name`), `none`."""

    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel: bool = False


# ---------------------------------------------------------------- reasoning


EFFORT_ORDER = ("minimal", "low", "medium", "high", "xhigh", "max")
# effort → thinking budget (tokens); a budget maps back to the lowest effort whose budget covers it
# (docs/reasoning.md). One table for the policy and every adapter.
EFFORT_BUDGETS = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384, "xhigh": 24576,
                  "max": 32000}


def budget_effort(budget: int) -> str:
    """The lowest effort whose budget covers `budget` ("max" above every budget)."""
    for effort in EFFORT_ORDER:
        if budget <= EFFORT_BUDGETS[effort]:
            return effort
    return "max"


@dataclass(slots=True)
class Reasoning:
    """What the client asked for. `effort` is one of low|medium|high|max (None: not given);
    `budget_tokens` an explicit thinking budget; `adaptive` the model decides;
    `enabled=False` means the client explicitly turned reasoning off."""

    enabled: bool = True
    effort: str | None = None
    budget_tokens: int | None = None
    adaptive: bool = False


# ---------------------------------------------------------------- request / response


@dataclass(slots=True)
class Usage:
    """`cache_creation_1h_input_tokens`: of the cache writes, those with a 1-hour TTL (the rest
    are 5-minute ones); `thinking_tokens`: of `output_tokens`, those spent on reasoning."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_creation_1h_input_tokens: int = 0
    thinking_tokens: int = 0

    @property
    def prompt_tokens(self) -> int:
        """OpenAI-style prompt tokens (cached included)."""
        return self.input_tokens + self.cache_read_input_tokens + self.cache_creation_input_tokens


@dataclass(slots=True)
class Request:
    """A chat request. `model` starts as what the client sent; the router rewrites it to the
    backend model before an adapter encodes it. `native` keeps the client's decoded JSON body and
    its protocol name so that an adapter of the SAME protocol can pass it through (byte-faithful
    thinking signatures, cache_control, unknown-but-valid fields) instead of re-encoding."""

    model: str
    messages: list[Message]
    system: list[TextBlock] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] = field(default_factory=list)
    stream: bool = False
    include_usage: bool = False  # OpenAI stream_options.include_usage (client side)
    user: str | None = None
    reasoning: Reasoning | None = None
    parallel_tool_calls: bool | None = None
    native_protocol: str | None = None
    native: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)  # protocol headers to forward, filtered
    # set by `policy` for OpenAI-compatible providers: a stable digest of (provider, backend
    # model, tools, system) that the adapter sends as `prompt_cache_key`
    prompt_cache_key: str | None = None
    tool_search: ServerToolSearch | None = None  # a server-side tool search the client declared
    # structured output: {"type": "json_schema", "name", "schema", "strict"} or
    # {"type": "json_object"}; adapters send it where their provider has structured output
    response_format: dict[str, Any] | None = None
    # what the entry that decoded this request needs to encode its answers (e.g. which tools
    # were freeform or namespaced); opaque to everything else, never sent upstream
    entry_context: Any = None


@dataclass(slots=True)
class Response:
    id: str
    model: str
    content: list[Block]
    stop_reason: StopReason | None
    stop_sequence: str | None = None
    usage: Usage = field(default_factory=Usage)
    # why the model stopped, beyond the reason: Anthropic's `stop_details`, e.g.
    # {"type": "refusal", "category": "cyber", "explanation": …}
    stop_details: dict[str, Any] | None = None


# ---------------------------------------------------------------- stream events


@dataclass(slots=True)
class MessageStart:
    id: str
    model: str
    usage: Usage  # what is known at the start (often input tokens only, or zeros)


@dataclass(slots=True)
class TextStart:
    index: int


@dataclass(slots=True)
class ThinkingStart:
    index: int
    redacted_data: str | None = None  # a redacted thinking block carries its payload here


@dataclass(slots=True)
class ToolUseStart:
    index: int
    id: str
    name: str


@dataclass(slots=True)
class TextDelta:
    index: int
    text: str


@dataclass(slots=True)
class ThinkingDelta:
    index: int
    thinking: str


@dataclass(slots=True)
class SignatureDelta:
    index: int
    signature: str


@dataclass(slots=True)
class ToolArgsDelta:
    index: int
    partial_json: str


@dataclass(slots=True)
class BlockStop:
    index: int


@dataclass(slots=True)
class MessageDelta:
    stop_reason: StopReason | None
    stop_sequence: str | None
    usage: Usage
    stop_details: dict[str, Any] | None = None  # as `Response.stop_details`


@dataclass(slots=True)
class MessageStop:
    pass


@dataclass(slots=True)
class ServerBlock:
    """A whole `ServerToolUseBlock` or `ToolSearchResultBlock` at `index` (start, content and
    stop in one event); encoders of protocols without such blocks skip it."""

    index: int
    block: ServerToolUseBlock | ToolSearchResultBlock


StreamEvent = Union[
    MessageStart, TextStart, ThinkingStart, ToolUseStart, TextDelta, ThinkingDelta,
    SignatureDelta, ToolArgsDelta, BlockStop, MessageDelta, MessageStop, ServerBlock,
]
