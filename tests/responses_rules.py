"""What the OpenAI Responses API rejects, for the mock provider (`tests/mock_responses.py`).

`check_request(raw, headers)` returns the parsed body or raises `RequestRejected` carrying the
status and OpenAI's error fields (message, type, param, code) worded as the API words them:
an unknown top-level parameter, a missing or mistyped field (named by its path,
`input[3].call_id`), an unknown input item, content part or tool type, a tool name the API's
pattern refuses, a tool output without its call or a call without its output (paired by
`call_id`), a reasoning item that a stateless request (`store: false`) cannot resolve without
`encrypted_content`, an `item_reference` or `previous_response_id` under `store: false`.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

import orjson

TOP_LEVEL = frozenset({
    "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls",
    "reasoning", "store", "include", "prompt_cache_key", "prompt_cache_retention", "stream",
    "stream_options", "max_output_tokens", "max_tool_calls", "temperature", "top_p",
    "top_logprobs", "text", "truncation", "metadata", "user", "safety_identifier",
    "service_tier", "previous_response_id", "conversation", "background", "prompt",
    "client_metadata", "context_management"})
ITEM_FIELDS = {
    "message": {"type", "role", "content", "id", "status", "phase"},
    "function_call": {"type", "id", "call_id", "name", "arguments", "status", "namespace"},
    "function_call_output": {"type", "id", "call_id", "output", "status"},
    "custom_tool_call": {"type", "id", "call_id", "name", "input", "status", "namespace"},
    "custom_tool_call_output": {"type", "id", "call_id", "output", "status"},
    "reasoning": {"type", "id", "summary", "content", "encrypted_content", "status"},
}
# item types the API knows but this mock does not inspect further
OTHER_ITEMS = frozenset({
    "item_reference", "web_search_call", "file_search_call", "computer_call",
    "computer_call_output", "local_shell_call", "local_shell_call_output", "tool_search_call",
    "tool_search_output", "image_generation_call", "code_interpreter_call", "mcp_call",
    "mcp_list_tools", "mcp_approval_request", "mcp_approval_response", "compaction",
    "additional_tools"})
ROLES = ("user", "assistant", "system", "developer")
INPUT_PARTS = {"input_text": {"type", "text"},
               "input_image": {"type", "image_url", "file_id", "detail"},
               "input_file": {"type", "file_id", "file_data", "file_url", "filename"}}
OUTPUT_PARTS = {"output_text": {"type", "text", "annotations", "logprobs"},
                "refusal": {"type", "refusal"}}
TOOL_TYPES = frozenset({
    "function", "custom", "namespace", "web_search", "web_search_preview", "file_search",
    "code_interpreter", "image_generation", "mcp", "local_shell", "computer_use_preview",
    "tool_search", "shell", "apply_patch"})
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
CHOICES = ("none", "auto", "required")


class RequestRejected(Exception):
    def __init__(self, message: str, param: str | None = None, code: str | None = None,
                 status: int = 400, type: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.message, self.param, self.code, self.status, self.type = (
            message, param, code, status, type)


def _values(options) -> str:
    names = [f"'{o}'" for o in sorted(options)]
    return ", ".join(names[:-1]) + f", and {names[-1]}" if len(names) > 2 else " and ".join(names)


def _missing(path: str) -> RequestRejected:
    return RequestRejected(f"Missing required parameter: '{path}'.", path,
                           "missing_required_parameter")


def _bad_type(path: str, expected: str, value: Any) -> RequestRejected:
    got = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
           type(None): "null", int: "an integer", float: "a decimal"}.get(type(value), "a value")
    return RequestRejected(f"Invalid type for '{path}': expected {expected}, but got {got} "
                           "instead.", path, "invalid_type")


def _bad_value(path: str, value: Any, options) -> RequestRejected:
    return RequestRejected(f"Invalid value: '{value}'. Supported values are: {_values(options)}.",
                           path, "invalid_value")


def _unknown(path: str) -> RequestRejected:
    return RequestRejected(f"Unknown parameter: '{path}'.", path, "unknown_parameter")


def _fields(obj: dict, allowed: set, path: str, required: tuple[str, ...] = ()) -> None:
    for key in obj:
        if key not in allowed:
            raise _unknown(f"{path}.{key}")
    for key in required:
        if obj.get(key) is None:
            raise _missing(f"{path}.{key}")


def _string(obj: dict, key: str, path: str) -> None:
    if not isinstance(obj[key], str):
        raise _bad_type(f"{path}.{key}", "a string", obj[key])


def check_request(raw: bytes, headers: Mapping[str, str]) -> dict:
    auth = headers.get("Authorization", "")
    if not auth.startswith("Bearer ") or not auth[7:].strip():
        raise RequestRejected("You didn't provide an API key. You need to provide your API key "
                              "in an Authorization header using Bearer auth (i.e. "
                              "Authorization: Bearer YOUR_KEY).", status=401)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RequestRejected("We could not parse the JSON body of your request. The OpenAI "
                              "API expects a JSON payload.") from None
    if not isinstance(body, dict):
        raise _bad_type("body", "an object", body)
    for key in body:
        if key not in TOP_LEVEL:
            raise _unknown(key)
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise _missing("model")
    store = body.get("store", True)
    if body.get("previous_response_id") is not None:
        rid = body["previous_response_id"]
        raise RequestRejected(f"Previous response with id '{rid}' not found.",
                              "previous_response_id", "previous_response_not_found")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise _bad_type("stream", "a boolean", body["stream"])
    if "instructions" in body and not isinstance(body["instructions"], (str, type(None))):
        raise _bad_type("instructions", "a string", body["instructions"])
    _check_tools(body.get("tools"))
    _check_tool_choice(body.get("tool_choice"))
    items = body.get("input")
    if items is None:
        raise _missing("input")
    if isinstance(items, list):
        _check_items(items, store is not False)
    elif not isinstance(items, str):
        raise _bad_type("input", "one of a string or array of input items", items)
    return body


def _check_tools(tools: Any, path: str = "tools") -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise _bad_type(path, "an array", tools)
    for n, tool in enumerate(tools):
        at = f"{path}[{n}]"
        if not isinstance(tool, dict):
            raise _bad_type(at, "an object", tool)
        kind = tool.get("type")
        if kind is None:
            raise _missing(f"{at}.type")
        if kind not in TOOL_TYPES:
            raise _bad_value(f"{at}.type", kind, TOOL_TYPES)
        if kind in ("function", "custom", "namespace"):
            name = tool.get("name")
            if not isinstance(name, str) or not name:
                raise _missing(f"{at}.name")
            if len(name) > 64:
                raise RequestRejected(
                    f"Invalid '{at}.name': string too long. Expected a string with maximum "
                    f"length 64, but got a string with length {len(name)} instead.",
                    f"{at}.name", "string_above_max_length")
            if not TOOL_NAME.match(name):
                raise RequestRejected(
                    f"Invalid '{at}.name': string does not match pattern. Expected a string "
                    "that matches the pattern '^[a-zA-Z0-9_-]+$'.", f"{at}.name", "invalid_value")
        if kind == "function" and not isinstance(tool.get("parameters", {}), (dict, type(None))):
            raise _bad_type(f"{at}.parameters", "an object", tool["parameters"])
        if kind == "namespace":
            _check_tools(tool.get("tools"), f"{at}.tools")


def _check_tool_choice(choice: Any) -> None:
    if choice is None or choice in CHOICES:
        return
    if isinstance(choice, str):
        raise _bad_value("tool_choice", choice, CHOICES)
    if not isinstance(choice, dict):
        raise _bad_type("tool_choice", "one of a string or an object", choice)
    if choice.get("type") in ("function", "custom") and not choice.get("name"):
        raise _missing("tool_choice.name")


def _check_items(items: list, store: bool) -> None:
    calls: dict[str, str] = {}  # call_id -> kind of call
    answered: set[str] = set()
    for n, item in enumerate(items):
        at = f"input[{n}]"
        if not isinstance(item, dict):
            raise _bad_type(at, "an object", item)
        kind = item.get("type", "message" if "role" in item else None)
        if kind is None:
            raise _missing(f"{at}.type")
        if kind in OTHER_ITEMS:
            if kind == "item_reference" and not store:
                raise _not_persisted(item.get("id"))
            continue
        if kind not in ITEM_FIELDS:
            raise _bad_value(f"{at}.type", kind, set(ITEM_FIELDS) | OTHER_ITEMS)
        if kind == "message":
            _check_message(item, at)
        elif kind in ("function_call", "custom_tool_call"):
            payload = "arguments" if kind == "function_call" else "input"
            _fields(item, ITEM_FIELDS[kind], at, ("call_id", "name", payload))
            _string(item, payload, at)
            _string(item, "call_id", at)
            calls[item["call_id"]] = kind
        elif kind in ("function_call_output", "custom_tool_call_output"):
            _fields(item, ITEM_FIELDS[kind], at, ("call_id", "output"))
            _check_output(item["output"], f"{at}.output")
            wanted = kind.removesuffix("_output")
            if calls.get(item["call_id"]) != wanted:
                noun = "function call" if wanted == "function_call" else "custom tool call"
                raise RequestRejected(f"No tool call found for {noun} output with call_id "
                                      f"{item['call_id']}.", "input")
            answered.add(item["call_id"])
        else:  # reasoning
            _fields(item, ITEM_FIELDS[kind], at, ("summary",))
            if not isinstance(item["summary"], list):
                raise _bad_type(f"{at}.summary", "an array", item["summary"])
            if not store and not item.get("encrypted_content"):
                raise _not_persisted(item.get("id"))
    for call_id, kind in calls.items():
        if call_id not in answered:
            noun = "function call" if kind == "function_call" else "custom tool call"
            raise RequestRejected(f"No tool output found for {noun} {call_id}.", "input")


def _not_persisted(item_id: Any) -> RequestRejected:
    return RequestRejected(
        f"Item with id '{item_id}' not found. Items are not persisted when `store` is set to "
        "false. Try again with `store` set to true, or remove this item from your input.",
        "input")


def _check_message(item: dict, at: str) -> None:
    _fields(item, ITEM_FIELDS["message"], at, ("role", "content"))
    role = item["role"]
    if role not in ROLES:
        raise _bad_value(f"{at}.role", role, ROLES)
    content = item["content"]
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _bad_type(f"{at}.content", "one of a string or array of content parts", content)
    parts = OUTPUT_PARTS if role == "assistant" else INPUT_PARTS
    for n, part in enumerate(content):
        where = f"{at}.content[{n}]"
        if not isinstance(part, dict):
            raise _bad_type(where, "an object", part)
        if part.get("type") not in parts:
            raise _bad_value(f"{where}.type", part.get("type"), parts)
        _fields(part, parts[part["type"]], where)
        if part["type"] in ("input_text", "output_text"):
            if not isinstance(part.get("text"), str):
                raise _missing(f"{where}.text")


def _check_output(output: Any, at: str) -> None:
    if isinstance(output, str):
        return
    if not isinstance(output, list):
        raise _bad_type(at, "one of a string or array of content parts", output)
    for n, part in enumerate(output):
        if not isinstance(part, dict) or part.get("type") not in INPUT_PARTS:
            raise _bad_value(f"{at}[{n}].type", (part or {}).get("type")
                             if isinstance(part, dict) else part, INPUT_PARTS)
        _fields(part, INPUT_PARTS[part["type"]], f"{at}[{n}]")
