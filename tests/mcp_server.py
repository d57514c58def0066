"""A small stdio MCP server for the Claude Code tests (standard library only).

JSON-RPC 2.0, one message per line on stdin/stdout (the MCP stdio transport). It offers
`TOOL_COUNT` tools: a harbour's worth of look-ups with plain names and descriptions, and one
that the tests look for, `berth_finder`, whose answer carries `BERTH_ANSWER`. Run as
`python tests/mcp_server.py`; every tool call is appended to `$FERRY_MCP_LOG` when set.
"""
from __future__ import annotations

import json
import os
import sys

SERVER_NAME = "ferrytools"
TARGET_TOOL = "berth_finder"
BERTH_ANSWER = "berth-17-on-pier-C"
TOOL_COUNT = 60
_TOPICS = ("tide", "weather", "cargo", "ticket", "crew", "fuel", "route", "cabin", "harbour",
           "customs", "lifeboat", "radio")
_ACTIONS = ("report", "forecast", "audit", "schedule", "summary")


def tools() -> list[dict]:
    out = [{
        "name": TARGET_TOOL,
        "description": "Find the berth where a named ferry is moored in the harbour, "
                       "with its pier letter.",
        "inputSchema": {"type": "object", "properties": {
            "ferry": {"type": "string", "description": "The ferry's name"}},
            "required": ["ferry"], "additionalProperties": False},
    }]
    for topic in _TOPICS:
        for action in _ACTIONS:
            if len(out) >= TOOL_COUNT:
                return out
            out.append({
                "name": f"{topic}_{action}",
                "description": f"Produce the {action} of the ship's {topic} records for a "
                               f"given voyage number. Returns a long plain-text {action} with "
                               f"every {topic} entry, its time stamp and the officer on duty.",
                "inputSchema": {"type": "object", "properties": {
                    "voyage": {"type": "integer", "description": "Voyage number"},
                    "detail": {"type": "string", "enum": ["short", "full"]}},
                    "required": ["voyage"]},
            })
    return out


def call(name: str, arguments: dict) -> dict:
    log = os.environ.get("FERRY_MCP_LOG")
    if log:
        with open(log, "a") as f:
            f.write(json.dumps({"name": name, "arguments": arguments}) + "\n")
    if name == TARGET_TOOL:
        ferry = arguments.get("ferry", "?")
        return {"content": [{"type": "text", "text": f"{ferry} is at {BERTH_ANSWER}"}]}
    return {"content": [{"type": "text", "text": f"{name}: nothing on record"}]}


def handle(msg: dict) -> dict | None:
    method, params, mid = msg.get("method"), msg.get("params") or {}, msg.get("id")
    if mid is None:  # a notification
        return None
    if method == "initialize":
        result = {"protocolVersion": params.get("protocolVersion", "2025-06-18"),
                  "capabilities": {"tools": {"listChanged": False}},
                  "serverInfo": {"name": SERVER_NAME, "version": "1.0.0"}}
    elif method == "tools/list":
        result = {"tools": tools()}
    elif method == "tools/call":
        result = call(params.get("name", ""), params.get("arguments") or {})
    elif method == "ping":
        result = {}
    else:
        return {"jsonrpc": "2.0", "id": mid,
                "error": {"code": -32601, "message": f"method not found: {method}"}}
    return {"jsonrpc": "2.0", "id": mid, "result": result}


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        reply = handle(msg) if isinstance(msg, dict) else None
        if reply is not None:
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
