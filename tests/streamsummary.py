"""What a client should end up with for a fixture: summarise its `.expected` IR event lines
(text, thinking, tool calls, stop reason, usage), the oracle for end-to-end stream tests."""
from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass, field

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


@dataclass
class Summary:
    blocks: list[dict] = field(default_factory=list)  # in order: {"type", ...}
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: dict | None = None
    error: dict | None = None
    message_id: str | None = None

    @property
    def text(self) -> str:
        return "".join(b["text"] for b in self.blocks if b["type"] == "text")

    @property
    def thinking(self) -> str:
        return "".join(b["thinking"] for b in self.blocks if b["type"] == "thinking")

    @property
    def tools(self) -> list[tuple[str, str, str]]:
        return [(b["id"], b["name"], b["args"]) for b in self.blocks if b["type"] == "tool_use"]

    @property
    def complete(self) -> bool:
        return self.error is None and self.stop_reason is not None


def summarise(provider: str, name: str) -> Summary:
    out = Summary()
    lines = (FIXTURES / provider / f"{name}.expected").read_text(encoding="utf-8").splitlines()
    for line in lines:
        ev = json.loads(line)
        kind = ev.get("event")
        if "error" in ev or "raise" in ev:
            out.error = ev
        elif kind == "MessageStart":
            out.message_id = ev["id"]
        elif kind == "TextStart":
            out.blocks.append({"type": "text", "text": ""})
        elif kind == "ThinkingStart":
            out.blocks.append({"type": "thinking", "thinking": "", "signature": "",
                               "redacted": ev.get("redacted_data")})
        elif kind == "ToolUseStart":
            out.blocks.append({"type": "tool_use", "id": ev["id"], "name": ev["name"], "args": ""})
        elif kind == "TextDelta":
            out.blocks[-1]["text"] += ev["text"]
        elif kind == "ThinkingDelta":
            out.blocks[-1]["thinking"] += ev["thinking"]
        elif kind == "SignatureDelta":
            out.blocks[-1]["signature"] += ev["signature"]
        elif kind == "ToolArgsDelta":
            out.blocks[-1]["args"] += ev["partial_json"]
        elif kind == "MessageDelta":
            out.stop_reason, out.stop_sequence, out.usage = (
                ev["stop_reason"], ev["stop_sequence"], ev["usage"])
    return out


def fixture_names(provider: str) -> list[str]:
    return sorted(p.stem for p in (FIXTURES / provider).glob("*.sse"))
