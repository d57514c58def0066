"""protocols/gemini/adapter: IR → generateContent bodies and URLs, responses and errors back."""
from __future__ import annotations

import orjson
import pytest

from ferryllm import ir
from ferryllm.config import ProviderConfig
from ferryllm.errors import UpstreamError, UpstreamProtocolError
from ferryllm.protocols.gemini.adapter import GeminiAdapter, thinking_config
from ferryllm.toolnames import shorten


def adapter(**kw) -> GeminiAdapter:
    return GeminiAdapter(ProviderConfig(name="gem", type="gemini",
                                        base_url="http://127.0.0.1:9", api_key="gk-1", **kw))


def body(req: ir.Request, **kw) -> dict:
    return orjson.loads(adapter(**kw).encode_request(req))


def test_url_escapes_the_model_and_puts_the_key_in_a_header():
    a = adapter()
    req = ir.Request(model="gemini-2.5-flash", messages=[], stream=True)
    assert a.endpoint(req) == ("http://127.0.0.1:9/v1beta/models/gemini-2.5-flash"
                               ":streamGenerateContent?alt=sse")
    req.stream = False
    assert a.endpoint(req).endswith("/v1beta/models/gemini-2.5-flash:generateContent")
    req.model = "../x?key=1#f/y"
    url = a.endpoint(req)
    assert url == "http://127.0.0.1:9/v1beta/models/..%2Fx%3Fkey%3D1%23f%2Fy:generateContent"
    assert a.headers(req)["x-goog-api-key"] == "gk-1"
    assert "authorization" not in a.headers(req)


def test_contents_merge_roles_and_answer_every_call_in_one_user_content():
    req = ir.Request(model="gemini-2.5-flash", system=[ir.TextBlock("sys")], messages=[
        ir.Message("user", [ir.TextBlock("a")]),
        ir.Message("system", [ir.TextBlock("note")]),
        ir.Message("assistant", [ir.TextBlock("calling"), ir.ToolUseBlock("t1", "f", {"x": 1}),
                                 ir.ToolUseBlock("t2", "g", {})]),
        ir.Message("user", [ir.TextBlock("and also"),
                            ir.ToolResultBlock("t1", [ir.TextBlock("one")]),
                            ir.ToolResultBlock("t2", [ir.TextBlock("bad")], is_error=True)]),
    ])
    b = body(req)
    assert b["systemInstruction"] == {"parts": [{"text": "sys"}]}
    assert [c["role"] for c in b["contents"]] == ["user", "model", "user"]
    assert b["contents"][0]["parts"] == [{"text": "a"}, {"text": "note"}]
    model = b["contents"][1]["parts"]
    assert model[1] == {"functionCall": {"id": "t1", "name": "f", "args": {"x": 1}},
                        "thoughtSignature": "skip_thought_signature_validator"}
    assert "thoughtSignature" not in model[2]
    answers = b["contents"][2]["parts"]
    assert answers == [
        {"functionResponse": {"id": "t1", "name": "f", "response": {"output": "one"}}},
        {"functionResponse": {"id": "t2", "name": "g", "response": {"error": "bad"}}},
        {"text": "and also"}]


def test_signatures_go_back_on_the_part_they_came_from_and_foreign_ones_never():
    req = ir.Request(model="gemini-3-pro-preview", messages=[
        ir.Message("user", [ir.TextBlock("go")]),
        ir.Message("assistant", [
            ir.ThinkingBlock("anthropic thought", "EqQBanthropic"),
            ir.ThinkingBlock("gemini thought", "gemini:VEhP"),
            ir.ThinkingBlock(signature="gemini:U0lH"), ir.ToolUseBlock("t1", "f", {}),
            ir.ToolUseBlock("t2", "f", {})]),
        ir.Message("user", [ir.ToolResultBlock("t1", []), ir.ToolResultBlock("t2", [])]),
        ir.Message("assistant", [ir.TextBlock("done"),
                                 ir.ThinkingBlock(signature="gemini:RU5E")]),
    ])
    contents = body(req)["contents"]
    assert contents[1]["parts"] == [
        {"text": "gemini thought", "thought": True, "thoughtSignature": "VEhP"},
        {"functionCall": {"id": "t1", "name": "f", "args": {}}, "thoughtSignature": "U0lH"},
        {"functionCall": {"id": "t2", "name": "f", "args": {}}}]
    assert contents[3]["parts"] == [{"text": "done", "thoughtSignature": "RU5E"}]
    assert "EqQB" not in orjson.dumps(contents).decode()


def test_tools_as_parameters_json_schema_with_short_names_and_modes():
    long = "mcp__server__" + "y" * 70
    req = ir.Request(model="gemini-2.5-flash", messages=[ir.Message("user", [ir.TextBlock("x")])],
                     tools=[ir.Tool(long, "d", {"type": "object", "properties": {}}),
                            ir.Tool("raw", None, {}, freeform={"type": "grammar"})],
                     tool_choice=ir.ToolChoice("tool", long))
    b = body(req)
    decls = b["tools"][0]["functionDeclarations"]
    assert decls[0] == {"name": shorten(long), "description": "d",
                        "parametersJsonSchema": {"type": "object", "properties": {}}}
    assert decls[1]["parametersJsonSchema"]["required"] == ["input"]
    assert b["toolConfig"] == {"functionCallingConfig": {
        "mode": "ANY", "allowedFunctionNames": [shorten(long)]}}


@pytest.mark.parametrize("reasoning,model,want", [
    (ir.Reasoning(budget_tokens=3000), "gemini-2.5-flash",
     {"thinkingBudget": 3000, "includeThoughts": True}),
    (ir.Reasoning(effort="high"), "gemini-2.5-pro",
     {"thinkingBudget": ir.EFFORT_BUDGETS["high"], "includeThoughts": True}),
    (ir.Reasoning(adaptive=True), "gemini-2.5-pro", {"thinkingBudget": -1, "includeThoughts": True}),
    (ir.Reasoning(enabled=False), "gemini-2.5-flash", {"thinkingBudget": 0}),
    (ir.Reasoning(effort="medium"), "gemini-3-pro-preview",
     {"includeThoughts": True, "thinkingLevel": "high"}),
    (ir.Reasoning(effort="low"), "gemini-3-pro-preview",
     {"includeThoughts": True, "thinkingLevel": "low"}),
    (ir.Reasoning(budget_tokens=8192), "gemini-3-flash-preview",
     {"includeThoughts": True, "thinkingLevel": "medium"}),
    (ir.Reasoning(adaptive=True), "gemini-3.1-pro-preview", {"includeThoughts": True}),
    (None, "gemini-2.5-flash", None),
])
def test_thinking_budget_for_2x_and_level_for_3x(reasoning, model, want):
    assert thinking_config(reasoning, model) == want


def test_generation_config_cap_stop_and_structured_output():
    req = ir.Request(model="gemini-2.5-flash", messages=[ir.Message("user", [ir.TextBlock("x")])],
                     max_tokens=64000, temperature=0.2, top_p=0.9, top_k=5,
                     stop=["a", "b", "c", "d", "e", "f"],
                     response_format={"type": "json_schema", "name": "r",
                                      "schema": {"type": "object"}})
    config = body(req, max_tokens_cap=8192)["generationConfig"]
    assert config == {"maxOutputTokens": 8192, "temperature": 0.2, "topP": 0.9, "topK": 5,
                      "stopSequences": ["a", "b", "c", "d", "e"],
                      "responseMimeType": "application/json",
                      "responseJsonSchema": {"type": "object"}}


def test_passthrough_keeps_the_client_body_and_caps_max_tokens():
    native = {"contents": [{"role": "user", "parts": [{"text": "x"}]}],
              "generation_config": {"max_output_tokens": 99999}, "safetySettings": []}
    req = ir.Request(model="gemini-2.5-flash", messages=[], native_protocol="gemini",
                     native=native)
    assert body(req) == native
    capped = body(req, max_tokens_cap=1000)
    assert capped["generation_config"] == {"max_output_tokens": 1000}
    assert native["generation_config"]["max_output_tokens"] == 99999


def test_decode_response_text_thought_calls_and_usage():
    raw = orjson.dumps({"candidates": [{"content": {"role": "model", "parts": [
        {"text": "hm", "thought": True},
        {"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "U0lH"},
        {"functionCall": {"id": "x", "name": "g"}}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 100, "cachedContentTokenCount": 40,
                          "candidatesTokenCount": 10, "thoughtsTokenCount": 5},
        "modelVersion": "gemini-2.5-pro", "responseId": "resp1"})
    req = ir.Request(model="gemini-2.5-pro", messages=[])
    resp = adapter().decode_response(raw, req)
    assert resp.content == [ir.ThinkingBlock("hm"), ir.ThinkingBlock(signature="gemini:U0lH"),
                            ir.ToolUseBlock("call_resp1_0", "f", {"a": 1}),
                            ir.ToolUseBlock("x", "g", {})]
    assert resp.stop_reason == ir.TOOL_USE and resp.id == "resp1"
    assert resp.usage == ir.Usage(60, 15, 40, 0)


def test_decode_response_errors():
    a = adapter()
    req = ir.Request(model="m", messages=[])
    bad = orjson.dumps({"candidates": [{"finishReason": "MALFORMED_FUNCTION_CALL"}]})
    with pytest.raises(UpstreamError) as info:
        a.decode_response(bad, req)
    assert info.value.retryable
    with pytest.raises(UpstreamProtocolError):
        a.decode_response(b"{}", req)
    blocked = a.decode_response(orjson.dumps({"promptFeedback": {"blockReason": "SAFETY"}}), req)
    assert blocked.stop_reason == ir.REFUSAL and blocked.content == []
    err = a.decode_error(429, orjson.dumps({"error": {"code": 429, "message": "quota",
                                                      "status": "RESOURCE_EXHAUSTED"}}),
                         {"retry-after": "7"})
    assert (err.status, err.message, err.retry_after) == (429, "quota", 7.0)
    assert a.decode_error(401, b"{}", {}).status == 502


def test_count_tokens_posts_the_whole_request_never_a_generation():
    a = adapter()
    req = ir.Request(model="gemini-2.5-flash", messages=[ir.Message("user", [ir.TextBlock("x")])],
                     system=[ir.TextBlock("s")], max_tokens=10)
    url, raw = a.count_tokens(req)
    assert url.endswith("/v1beta/models/gemini-2.5-flash:countTokens")
    sent = orjson.loads(raw)["generateContentRequest"]
    assert sent["model"] == "models/gemini-2.5-flash" and "generationConfig" not in sent
    assert sent["systemInstruction"] == {"parts": [{"text": "s"}]}
    native = {"contents": [{"parts": [{"text": "y"}]}]}
    req = ir.Request(model="gemini-2.5-pro", messages=[], native_protocol="gemini", native=native)
    assert orjson.loads(a.count_tokens(req)[1]) == native
    assert a.decode_count_tokens(b'{"totalTokens": 12}') == 12
    with pytest.raises(UpstreamProtocolError):
        a.decode_count_tokens(b'{"tokens": 1}')


def test_a_result_whose_call_is_not_in_the_history_still_has_a_name():
    req = ir.Request(model="gemini-2.5-flash", messages=[
        ir.Message("user", [ir.ToolResultBlock("gone", [ir.TextBlock("x")])])])
    part = body(req)["contents"][0]["parts"][0]
    assert part == {"functionResponse": {"id": "gone", "name": "unknown_function",
                                         "response": {"output": "x"}}}
