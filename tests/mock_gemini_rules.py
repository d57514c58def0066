"""What the Gemini mock rejects, as the real API rejects it (400 `INVALID_ARGUMENT` unless said).

- Field names: the API parses the body as a proto message, so an unknown field anywhere in a typed
  message is `Invalid JSON payload received. Unknown name "x" at 'path': Cannot find field.`; both
  the camelCase and the snake_case spelling of a known field are accepted. `parameters` and
  `responseSchema` are the OpenAPI `Schema` message (so `additionalProperties` or `$schema` there
  is rejected); `parametersJsonSchema`, `responseJsonSchema`, `args`, `response` are free JSON.
- Conversation: `contents` not empty; roles `user` or `model`; parts not empty, each with one
  data field; the turn after a model turn with N function calls is a user turn with exactly N
  `functionResponse` parts, and a function response turn comes right after a call turn.
- Thought signatures: a signature must be one the mock issued (or a documented skip value); for
  3.x models every model turn of the current turn (since the last user text) that calls a
  function carries a signature on its first `functionCall` part.
- Tools: valid, unique function names; not both `parameters` and `parametersJsonSchema`.
- `thinkingConfig`: `thinkingLevel` only for 3.x models, and not together with `thinkingBudget`.
"""
from __future__ import annotations

import re
from typing import Any

FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,127}")
DATA_FIELDS = ("text", "inlineData", "functionCall", "functionResponse", "fileData",
               "executableCode", "codeExecutionResult")


class GeminiReject(Exception):
    def __init__(self, code: int, message: str, status: str = "INVALID_ARGUMENT",
                 details: list | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.status, self.details = code, message, status, details


def snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def snake_get(obj: dict, camel: str, default: Any = None) -> Any:
    """A field by its camelCase name, also found under its snake_case spelling."""
    if camel in obj:
        return obj[camel]
    return obj.get(snake(camel), default)


FREE = None  # a google.protobuf.Struct / Value: anything goes
SCHEMA = "Schema"
# message -> {camelCase field: the message its value is (a name), FREE, or a leaf type}
MESSAGES: dict[str, dict[str, Any]] = {
    "GenerateContentRequest": {
        "model": "leaf", "contents": ["Content"], "tools": ["Tool"], "toolConfig": "ToolConfig",
        "safetySettings": ["leaf"], "systemInstruction": "Content",
        "generationConfig": "GenerationConfig", "cachedContent": "leaf", "labels": FREE,
        "serviceTier": "leaf", "store": "leaf"},
    "Content": {"role": "leaf", "parts": ["Part"]},
    "Part": {"text": "leaf", "inlineData": "Blob", "functionCall": "FunctionCall",
             "functionResponse": "FunctionResponse", "fileData": FREE, "executableCode": FREE,
             "codeExecutionResult": FREE, "thought": "leaf", "thoughtSignature": "leaf",
             "videoMetadata": FREE, "partMetadata": FREE, "mediaResolution": FREE},
    "Blob": {"mimeType": "leaf", "data": "leaf", "displayName": "leaf"},
    "FunctionCall": {"id": "leaf", "name": "leaf", "args": FREE, "partialArgs": FREE,
                     "willContinue": "leaf"},
    "FunctionResponse": {"id": "leaf", "name": "leaf", "response": FREE, "parts": FREE,
                         "willContinue": "leaf", "scheduling": "leaf"},
    "Tool": {"functionDeclarations": ["FunctionDeclaration"], "googleSearchRetrieval": FREE,
             "codeExecution": FREE, "googleSearch": FREE, "urlContext": FREE,
             "computerUse": FREE, "fileSearch": FREE, "googleMaps": FREE},
    "FunctionDeclaration": {"name": "leaf", "description": "leaf", "behavior": "leaf",
                            "parameters": SCHEMA, "parametersJsonSchema": FREE,
                            "response": SCHEMA, "responseJsonSchema": FREE},
    "ToolConfig": {"functionCallingConfig": "FunctionCallingConfig", "retrievalConfig": FREE},
    "FunctionCallingConfig": {"mode": "leaf", "allowedFunctionNames": ["leaf"]},
    "GenerationConfig": {
        "stopSequences": ["leaf"], "responseMimeType": "leaf", "responseSchema": SCHEMA,
        "responseJsonSchema": FREE, "candidateCount": "leaf", "maxOutputTokens": "leaf",
        "temperature": "leaf", "topP": "leaf", "topK": "leaf", "seed": "leaf",
        "presencePenalty": "leaf", "frequencyPenalty": "leaf", "responseLogprobs": "leaf",
        "logprobs": "leaf", "enableEnhancedCivicAnswers": "leaf", "responseModalities": ["leaf"],
        "speechConfig": FREE, "thinkingConfig": "ThinkingConfig", "mediaResolution": "leaf",
        "imageConfig": FREE},
    "ThinkingConfig": {"includeThoughts": "leaf", "thinkingBudget": "leaf",
                       "thinkingLevel": "leaf"},
    SCHEMA: {"type": "leaf", "format": "leaf", "title": "leaf", "description": "leaf",
             "nullable": "leaf", "enum": ["leaf"], "maxItems": "leaf", "minItems": "leaf",
             "properties": {SCHEMA}, "required": ["leaf"], "minProperties": "leaf",
             "maxProperties": "leaf", "minLength": "leaf", "maxLength": "leaf",
             "pattern": "leaf", "example": FREE, "anyOf": [SCHEMA], "propertyOrdering": ["leaf"],
             "default": FREE, "items": SCHEMA, "minimum": "leaf", "maximum": "leaf"},
}
FIELDS = {msg: {**{snake(k): v for k, v in fields.items()}, **fields}
          for msg, fields in MESSAGES.items()}


def _unknown(name: str, path: str) -> GeminiReject:
    where = f" at '{path}'" if path else ""
    return GeminiReject(400, f'Invalid JSON payload received. Unknown name "{name}"{where}: '
                             "Cannot find field.")


def check_fields(value: Any, kind: Any, path: str = "") -> None:
    """Reject unknown field names anywhere in a typed message."""
    if kind is FREE or kind == "leaf":
        return
    if isinstance(kind, list):
        if not isinstance(value, list):
            raise GeminiReject(400, f"Invalid value at '{path}': expected a list")
        for i, item in enumerate(value):
            check_fields(item, kind[0], f"{path}[{i}]")
        return
    if isinstance(kind, set):  # map<string, message>
        if not isinstance(value, dict):
            raise GeminiReject(400, f"Invalid value at '{path}': expected an object")
        for key, item in value.items():
            check_fields(item, next(iter(kind)), f"{path}[{key}]")
        return
    if not isinstance(value, dict):
        raise GeminiReject(400, f"Invalid value at '{path}': expected an object")
    fields = FIELDS[kind]
    for name, item in value.items():
        if name not in fields:
            raise _unknown(name, path)
        check_fields(item, fields[name], f"{path}.{snake(name)}" if path else snake(name))


def same_bytes(signature: str) -> str:
    """A signature as the bytes it stands for: the API reads it as base64 `bytes`, so the
    URL-safe spelling google-genai re-encodes it with (and missing padding) is the same one."""
    return signature.replace("-", "+").replace("_", "/").rstrip("=")


def check_request(body: dict, model: str, signatures: set[str]) -> None:
    check_fields(body, "GenerateContentRequest")
    contents = snake_get(body, "contents")
    if not contents:
        raise GeminiReject(400, "* GenerateContentRequest.contents: contents is not specified\n")
    for i, content in enumerate(contents):
        role = content.get("role", "user")
        if role not in ("user", "model"):
            raise GeminiReject(400, f"Please use a valid role: user, model. (contents[{i}])")
        parts = content.get("parts") or []
        if not parts:
            raise GeminiReject(400, f"* GenerateContentRequest.contents[{i}].parts: contents.parts "
                                    "must not be empty.\n")
        for j, part in enumerate(parts):
            if sum(snake_get(part, f) is not None for f in DATA_FIELDS) != 1:
                raise GeminiReject(400, f"* GenerateContentRequest.contents[{i}].parts[{j}].data: "
                                        "required oneof field 'data' must have one initialized "
                                        "field\n")
            sig = snake_get(part, "thoughtSignature")
            if sig is not None and same_bytes(sig) not in {same_bytes(s) for s in signatures}:
                raise GeminiReject(400, "Corrupted thought signature.")
    _check_calls(contents)
    if model.startswith("gemini-3"):
        _check_signatures(contents)
    _check_tools(snake_get(body, "tools") or [])
    _check_thinking(snake_get(snake_get(body, "generationConfig") or {}, "thinkingConfig") or {},
                    model)


def _count(content: dict, field: str) -> int:
    return sum(snake_get(p, field) is not None for p in content.get("parts") or [])


def _check_calls(contents: list[dict]) -> None:
    for i, content in enumerate(contents):
        responses = _count(content, "functionResponse")
        previous = contents[i - 1] if i else None
        asked = 0
        if previous and previous.get("role") == "model":
            asked = _count(previous, "functionCall")
        if responses and not asked:
            raise GeminiReject(400, "Please ensure that function response turn comes immediately "
                                    "after a function call turn.")
        if asked and content.get("role", "user") == "user" and responses != asked:
            raise GeminiReject(400, "Please ensure that the number of function response parts is "
                                    "equal to the number of function call parts of the function "
                                    "call turn.")


def _check_signatures(contents: list[dict]) -> None:
    start = 0  # the current turn starts after the last user content with text in it
    for i, content in enumerate(contents):
        if content.get("role", "user") == "user" and any(
                snake_get(p, "text") is not None for p in content.get("parts") or []):
            start = i + 1
    for i in range(start, len(contents)):
        content = contents[i]
        if content.get("role") != "model":
            continue
        call_parts = [p for p in content.get("parts") or [] if snake_get(p, "functionCall")]
        if call_parts and not snake_get(call_parts[0], "thoughtSignature"):
            name = snake_get(call_parts[0], "functionCall").get("name")
            raise GeminiReject(400, "Function call is missing a thought_signature in functionCall "
                                    "parts. This is required for tools to work correctly, and "
                                    "missing thought_signature may lead to degraded model "
                                    f"performance. Additional data, function call `default_api:"
                                    f"{name}` , position {i + 1}. Please refer to https://ai."
                                    "google.dev/gemini-api/docs/thought-signatures for more "
                                    "details.")


def _check_tools(tools: list[dict]) -> None:
    seen: set[str] = set()
    for i, tool in enumerate(tools):
        for j, decl in enumerate(snake_get(tool, "functionDeclarations") or []):
            name = decl.get("name") or ""
            where = f"tools[{i}].function_declarations[{j}]"
            if not FUNCTION_NAME.fullmatch(name):
                raise GeminiReject(400, f"* GenerateContentRequest.{where}.name: Invalid function "
                                        "name. Must start with a letter or an underscore. Must be "
                                        "a-z, A-Z, 0-9, or contain underscores, dots, colons and "
                                        "dashes, with a maximum length of 128.\n")
            if name in seen:
                raise GeminiReject(400, f"Duplicate function declaration found: {name}")
            seen.add(name)
            if snake_get(decl, "parameters") is not None and \
                    snake_get(decl, "parametersJsonSchema") is not None:
                raise GeminiReject(400, f"* GenerateContentRequest.{where}: parameters and "
                                        "parameters_json_schema cannot both be set.\n")


def _check_thinking(config: dict, model: str) -> None:
    level = snake_get(config, "thinkingLevel")
    if level is None:
        return
    if not model.startswith("gemini-3"):
        raise GeminiReject(400, "Thinking level is not supported for this model.")
    if snake_get(config, "thinkingBudget") is not None:
        raise GeminiReject(400, "You can only set only one of thinking budget and thinking "
                                "level.")
