"""Check a Responses SSE stream against OpenAI's grammar (for the mock and for ferryllm's entry).

`parse_sse(raw)` → the events (dicts; each frame's `event:` name must equal its `type`);
`check_stream(events)` asserts the grammar and returns the final response body:
`sequence_number` 0, 1, 2, …; `response.created` then `response.in_progress`; per output item,
in `output_index` order and never interleaved, `response.output_item.added` → events of that
item only → `response.output_item.done`, whose item equals the one at that index in the final
body; every delta/done event names the item's id; the done events carry the concatenated deltas;
a call's `call_id` is the same in `added`, `done` and the final body; exactly one terminal event
(`response.completed` | `response.incomplete` | `response.failed`), last. `response.failed`
(an error after the first byte) may cut an item short, and its body need not list the output.
"""
from __future__ import annotations

import orjson

TERMINAL = ("response.completed", "response.incomplete", "response.failed")
DELTAS = {"response.output_text.delta": ("response.output_text.done", "text"),
          "response.function_call_arguments.delta": ("response.function_call_arguments.done",
                                                     "arguments"),
          "response.custom_tool_call_input.delta": ("response.custom_tool_call_input.done",
                                                    "input"),
          "response.reasoning_summary_text.delta": ("response.reasoning_summary_text.done",
                                                    "text")}


def parse_sse(raw: bytes) -> list[dict]:
    events = []
    for frame in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        if not frame.strip():
            continue
        name, data = None, []
        for line in frame.split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip().decode()
            elif line.startswith(b"data:"):
                data.append(line[5:].removeprefix(b" "))
        event = orjson.loads(b"\n".join(data))
        assert name is None or name == event["type"], f"event: {name} but type {event['type']}"
        events.append(event)
    return events


def check_stream(events: list[dict]) -> dict:
    assert [e.get("sequence_number") for e in events] == list(range(len(events))), \
        "sequence_number must count from 0 without gaps"
    assert [e["type"] for e in events[:2]] == ["response.created", "response.in_progress"]
    assert events[-1]["type"] in TERMINAL, f"last event is {events[-1]['type']}"
    assert sum(e["type"] in TERMINAL for e in events) == 1
    final = events[-1]["response"]
    failed = events[-1]["type"] == "response.failed"
    output = final["output"]
    open_index: int | None = None
    next_index = 0
    text: dict[tuple, str] = {}
    for event in events[2:-1]:
        kind = event["type"]
        if kind == "response.output_item.added":
            assert open_index is None, "an item was added before the previous one was done"
            assert event["output_index"] == next_index, "output_index out of order"
            open_index, item = next_index, event["item"]
            added = item
            continue
        assert open_index is not None, f"{kind} outside of an output item"
        assert event["output_index"] == open_index, f"{kind} interleaved with another item"
        if kind == "response.output_item.done":
            done = event["item"]
            if not failed or open_index < len(output):
                assert done == output[open_index], "output_item.done differs from the final body"
            assert done.get("id") == added.get("id") and done["type"] == added["type"]
            if "call_id" in done:
                assert done["call_id"] == added["call_id"], "call_id changed"
            open_index, next_index = None, next_index + 1
            continue
        assert event["item_id"] == added.get("id"), f"{kind} names another item"
        key = (event["output_index"], event.get("content_index"), event.get("summary_index"))
        if kind in DELTAS:
            text[key] = text.get(key, "") + event["delta"]
        for delta, (done_kind, field) in DELTAS.items():
            if kind == done_kind:
                assert event[field] == text.get(key, ""), f"{kind} is not the sum of its deltas"
    if failed:
        assert final["error"] and final["error"].get("code"), "response.failed without error.code"
        return final
    assert open_index is None, "an output item was never done"
    assert next_index == len(output), "the final body has items that were never streamed"
    return final
