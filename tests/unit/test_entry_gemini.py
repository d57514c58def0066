"""protocols/gemini/entry: Gemini client JSON ⇄ IR, and the SSE StreamEncoder."""
from __future__ import annotations

import base64

import orjson
import pytest

from ferryllm import ir
from ferryllm.errors import InvalidRequest, RateLimited, UpstreamError
from ferryllm.protocols.gemini import entry
from ferryllm.protocols.gemini.entry_stream import StreamEncoder
from ferryllm.protocols.gemini.fields import envelope, open_envelope, openapi_to_json_schema


def decode(body: dict, model: str = "gemini-2.5-flash", stream: bool = False) -> ir.Request:
    return entry.decode(body, model, stream=stream)


def user(*parts: dict) -> dict:
    return {"role": "user", "parts": list(parts)}


def model_turn(*parts: dict) -> dict:
    return {"role": "model", "parts": list(parts)}


def bad(body, param: str) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        decode(body)
    assert info.value.param == param, info.value.message
    assert info.value.status == 400
    return info.value


# ---------------------------------------------------------------- requests


def test_text_system_and_generation_config_in_both_spellings():
    camel = {"systemInstruction": {"role": "user", "parts": [{"text": "Be brief."}]},
             "contents": [user({"text": "hi"})],
             "generationConfig": {"maxOutputTokens": 100, "temperature": 0.5, "topP": 0.9,
                                  "topK": 40, "stopSequences": ["END"]}}
    snake = {"system_instruction": {"parts": [{"text": "Be brief."}]},
             "contents": [user({"text": "hi"})],
             "generation_config": {"max_output_tokens": 100, "temperature": 0.5, "top_p": 0.9,
                                   "top_k": 40, "stop_sequences": ["END"]}}
    for body in (camel, snake):
        req = decode(body, "models/gemini-2.5-flash", stream=True)
        assert req.model == "gemini-2.5-flash" and req.stream
        assert [b.text for b in req.system] == ["Be brief."]
        assert req.messages == [ir.Message("user", [ir.TextBlock("hi")])]
        assert (req.max_tokens, req.temperature, req.top_p, req.top_k, req.stop) == \
            (100, 0.5, 0.9, 40, ["END"])
        assert req.native is body and req.native_protocol == "gemini"


def test_function_calls_and_responses_pair_by_id_then_name_then_order():
    body = {"contents": [
        user({"text": "go"}),
        model_turn({"functionCall": {"id": "a1", "name": "read", "args": {"p": 1}}},
                   {"functionCall": {"name": "read", "args": {"p": 2}}},
                   {"functionCall": {"name": "list"}}),
        user({"functionResponse": {"name": "list", "response": {"output": "x y"}}},
             {"functionResponse": {"id": "a1", "name": "read", "response": {"output": "one"}}},
             {"functionResponse": {"name": "read", "response": {"error": "denied"}}}),
    ]}
    req = decode(body)
    calls = req.messages[1].content
    assert [(c.id, c.name, c.input) for c in calls] == [
        ("a1", "read", {"p": 1}), ("call_1_1", "read", {"p": 2}), ("call_1_2", "list", {})]
    results = req.messages[2].content
    assert [(r.tool_use_id, [b.text for b in r.content], r.is_error) for r in results] == [
        ("call_1_2", ["x y"], False), ("a1", ["one"], False), ("call_1_1", ["denied"], True)]


def test_unanswered_calls_get_an_error_result_and_orphans_become_text():
    body = {"contents": [
        user({"text": "go"}),
        model_turn({"functionCall": {"id": "a", "name": "f"}},
                   {"functionCall": {"id": "b", "name": "g"}}),
        user({"functionResponse": {"id": "a", "name": "f", "response": {"k": [1]}}},
             {"functionResponse": {"id": "zz", "name": "h", "response": {"output": "late"}}}),
    ]}
    results = decode(body).messages[2].content
    assert results[0] == ir.ToolResultBlock("b", [ir.TextBlock(entry.NO_RESULT)], True)
    assert results[1].tool_use_id == "a" and results[1].content[0].text == '{"k":[1]}'
    assert results[2] == ir.TextBlock("[result of h]: late")


def test_a_raw_signature_rides_on_a_carrier_before_its_part():
    body = {"contents": [user({"text": "go"}), model_turn(
        {"text": "plan", "thought": True},
        {"functionCall": {"id": "c", "name": "f", "args": {}}, "thought_signature": "U0lH"},
        {"text": "", "thoughtSignature": "skip_thought_signature_validator"})]}
    blocks = decode(body).messages[1].content
    assert blocks == [ir.ThinkingBlock("plan"), ir.ThinkingBlock(signature="gemini:U0lH"),
                      ir.ToolUseBlock("c", "f", {})]


def test_an_envelope_brings_back_another_providers_thinking_in_any_base64_alphabet():
    anth = ir.ThinkingBlock("I think", "EqQBCkgIARABGAIiQL+/sig")
    redacted = ir.ThinkingBlock(redacted=True, data="opaque")
    sig = envelope([anth, redacted])
    for value in (sig, sig.replace("+", "-").replace("/", "_")):  # google-genai re-encodes
        body = {"contents": [user({"text": "go"}), model_turn(
            {"text": "I think", "thought": True},
            {"functionCall": {"id": "c", "name": "f"}, "thoughtSignature": value})]}
        blocks = decode(body).messages[1].content
        assert blocks == [anth, redacted, ir.ToolUseBlock("c", "f", {})]
    assert open_envelope("U0lH") is None


def test_images_tools_tool_config_thinking_and_structured_output():
    body = {"contents": [user({"inline_data": {"mime_type": "image/png", "data": "iVBO"}},
                              {"inlineData": {"mimeType": "application/pdf", "data": "JVBE"}})],
            "tools": [{"functionDeclarations": [
                {"name": "get", "description": "Get it", "parameters": {
                    "type": "OBJECT", "properties": {
                        "q": {"type": "STRING", "nullable": True},
                        "n": {"type": "INTEGER", "format": "int32", "propertyOrdering": ["a"]}},
                    "required": ["q"]}},
                {"name": "put", "parameters_json_schema": {"type": "OBJECT", "properties": {
                    "v": {"type": "array", "items": {"type": "STRING"}}}}}]},
                {"googleSearch": {}}],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY",
                                                     "allowedFunctionNames": ["put"]}},
            "generationConfig": {"thinkingConfig": {"thinkingBudget": 2048,
                                                    "includeThoughts": True},
                                 "responseMimeType": "application/json",
                                 "responseSchema": {"type": "OBJECT", "properties": {
                                     "x": {"type": "NUMBER"}}}}}
    req = decode(body)
    assert req.messages[0].content == [ir.ImageBlock(media_type="image/png", data="iVBO")]
    assert [t.name for t in req.tools] == ["get", "put"]
    assert req.tools[0].input_schema == {"type": "object", "required": ["q"], "properties": {
        "q": {"type": ["string", "null"]}, "n": {"type": "integer", "format": "int32"}}}
    assert req.tools[1].input_schema == {"type": "object", "properties": {
        "v": {"type": "array", "items": {"type": "string"}}}}
    assert req.tool_choice == ir.ToolChoice("tool", "put")
    assert req.reasoning == ir.Reasoning(budget_tokens=2048)
    assert req.response_format == {"type": "json_schema", "name": "response", "schema": {
        "type": "object", "properties": {"x": {"type": "number"}}}}


@pytest.mark.parametrize("config,want", [
    ({"thinkingBudget": 0}, ir.Reasoning(enabled=False)),
    ({"thinkingBudget": -1}, ir.Reasoning(adaptive=True)),
    ({"thinkingLevel": "HIGH", "includeThoughts": True}, ir.Reasoning(effort="high")),
    ({"thinking_level": "low"}, ir.Reasoning(effort="low")),
    ({"includeThoughts": True}, ir.Reasoning(adaptive=True)),
])
def test_thinking_config(config, want):
    body = {"contents": [user({"text": "x"})], "generationConfig": {"thinkingConfig": config}}
    assert decode(body).reasoning == want


@pytest.mark.parametrize("mode,want", [("AUTO", "auto"), ("any", "any"), ("NONE", "none"),
                                       ("VALIDATED", "auto")])
def test_function_calling_modes(mode, want):
    body = {"contents": [user({"text": "x"})],
            "tool_config": {"function_calling_config": {"mode": mode}}}
    assert decode(body).tool_choice == ir.ToolChoice(want)


def test_bad_bodies_name_the_field():
    bad({}, "contents")
    bad({"contents": {}}, "contents")
    bad({"contents": [user({"text": 3})]}, "contents[0].parts[0].text")
    bad({"contents": [{"role": "system", "parts": []}]}, "contents[0].role")
    bad({"contents": [model_turn({"functionCall": {"args": {}}})]},
        "contents[0].parts[0].functionCall.name")
    bad({"contents": [model_turn({"functionCall": {"name": "f", "args": []}})]},
        "contents[0].parts[0].functionCall.args")
    bad({"contents": [user({"text": "x"})], "tools": [{"functionDeclarations": [
        {"name": "f", "parameters": {"type": "OBJECT"}, "parametersJsonSchema": {}}]}]},
        "tools[0].functionDeclarations[0]")
    err = bad({"contents": [user({"text": "x"})], "generationConfig": {"candidateCount": 2}},
              "generationConfig.candidateCount")
    assert "only 1 candidate" in err.message
    bad({"contents": [user({"text": "x"})], "generationConfig": {"maxOutputTokens": "many"}},
        "generationConfig.maxOutputTokens")
    bad({"contents": [user({"text": "x"})], "cachedContent": "cachedContents/1"},
        "cachedContent")
    with pytest.raises(InvalidRequest):
        entry.decode([], "m", stream=False)


def test_count_tokens_takes_contents_or_a_whole_request():
    req = entry.decode_count_tokens({"contents": [user({"text": "a"})]}, "gemini-2.5-flash")
    assert req.messages[0].content == [ir.TextBlock("a")]
    inner = {"model": "models/gemini-2.5-flash", "contents": [user({"text": "b"})],
             "systemInstruction": {"parts": [{"text": "s"}]}}
    req = entry.decode_count_tokens({"generateContentRequest": inner}, "gemini-2.5-flash")
    assert req.system[0].text == "s" and req.native == {"generateContentRequest": inner}


def test_openapi_schema_rejects_what_is_not_a_schema():
    with pytest.raises(ValueError):
        openapi_to_json_schema({"type": "OBJECT", "properties": []})


# ---------------------------------------------------------------- responses


def test_response_parts_signatures_finish_and_usage():
    resp = ir.Response("r1", "claude", [
        ir.ThinkingBlock("hmm", "EqQBsig"), ir.TextBlock("Checking."),
        ir.ToolUseBlock("toolu_1", "get", {"a": 1}), ir.ToolUseBlock("toolu_2", "put", {})],
        ir.TOOL_USE, usage=ir.Usage(10, 7, 90, 5))
    out = entry.encode_response(resp, "gemini-2.5-pro")
    cand = out["candidates"][0]
    parts = cand["content"]["parts"]
    assert parts[0] == {"text": "hmm", "thought": True}
    assert parts[1]["text"] == "Checking."
    assert open_envelope(parts[1]["thoughtSignature"]) == [ir.ThinkingBlock("hmm", "EqQBsig")]
    assert parts[2] == {"functionCall": {"id": "toolu_1", "name": "get", "args": {"a": 1}}}
    assert "thoughtSignature" not in parts[3]
    assert cand["finishReason"] == "STOP" and cand["content"]["role"] == "model"
    assert out["usageMetadata"] == {"promptTokenCount": 105, "candidatesTokenCount": 7,
                                    "totalTokenCount": 112, "cachedContentTokenCount": 90}
    assert out["modelVersion"] == "gemini-2.5-pro" and out["responseId"] == "r1"
    base64.b64decode(parts[1]["thoughtSignature"])  # valid base64, as google-genai requires


@pytest.mark.parametrize("stop,finish", [(ir.END_TURN, "STOP"), (ir.STOP_SEQUENCE, "STOP"),
                                         (ir.MAX_TOKENS, "MAX_TOKENS"), (ir.REFUSAL, "SAFETY")])
def test_finish_reasons(stop, finish):
    out = entry.encode_response(ir.Response("r", "m", [ir.TextBlock("x")], stop), "m")
    assert out["candidates"][0]["finishReason"] == finish


def test_a_gemini_carrier_goes_back_raw_and_a_lone_signature_gets_an_empty_part():
    blocks = [ir.ThinkingBlock(signature="gemini:U0lH"), ir.ToolUseBlock("c", "f", {})]
    assert entry.encode_parts(blocks)[0]["thoughtSignature"] == "U0lH"
    assert entry.encode_parts([ir.TextBlock("x"), ir.ThinkingBlock(signature="gemini:U0lH")]) \
        == [{"text": "x"}, {"text": "", "thoughtSignature": "U0lH"}]


def test_error_body_uses_google_status_names():
    body = orjson.loads(entry.error_body(RateLimited("slow down")))
    assert body == {"error": {"code": 429, "message": "slow down",
                              "status": "RESOURCE_EXHAUSTED"}}
    body = orjson.loads(entry.error_body(UpstreamError("down", status=503)))
    assert body["error"]["status"] == "UNAVAILABLE"
    body = orjson.loads(entry.error_body(InvalidRequest("bad")))
    assert body["error"]["status"] == "INVALID_ARGUMENT"


# ---------------------------------------------------------------- stream encoder


def frames(data: bytes) -> list[dict]:
    assert data.endswith(b"\r\n\r\n") and b"[DONE]" not in data
    out = []
    for frame in data.split(b"\r\n\r\n")[:-1]:
        assert frame.startswith(b"data: ") and b"\n" not in frame
        out.append(orjson.loads(frame[6:]))
    return out


def test_stream_encoder_frames():
    enc = StreamEncoder("gemini-2.5-flash")
    data = enc.encode([
        ir.MessageStart("m1", "x", ir.Usage(5)),
        ir.ThinkingStart(0), ir.ThinkingDelta(0, "hm"), ir.SignatureDelta(0, "EqQ"),
        ir.BlockStop(0),
        ir.TextStart(1), ir.TextDelta(1, "Hé"), ir.TextDelta(1, "llo"), ir.BlockStop(1),
        ir.ToolUseStart(2, "toolu_1", "get"), ir.ToolArgsDelta(2, '{"a":'),
        ir.ToolArgsDelta(2, "1}"), ir.BlockStop(2),
        ir.MessageDelta(ir.TOOL_USE, None, ir.Usage(5, 9)), ir.MessageStop()])
    out = frames(data)
    parts = [f["candidates"][0]["content"]["parts"] for f in out]
    assert parts[0] == [{"text": "hm", "thought": True}]
    assert parts[1][0]["text"] == "Hé"
    assert open_envelope(parts[1][0]["thoughtSignature"]) == [ir.ThinkingBlock("hm", "EqQ")]
    assert parts[2] == [{"text": "llo"}]
    assert parts[3] == [{"functionCall": {"id": "toolu_1", "name": "get", "args": {"a": 1}}}]
    assert parts[4] == []
    last = out[-1]
    assert last["candidates"][0]["finishReason"] == "STOP"
    assert last["usageMetadata"]["totalTokenCount"] == 14
    assert {f["responseId"] for f in out} == {"m1"}
    assert {f["modelVersion"] for f in out} == {"gemini-2.5-flash"}


def test_stream_encoder_error_frame_and_ping():
    enc = StreamEncoder("m")
    err = frames(enc.error(UpstreamError("boom", status=500)))[0]
    assert err == {"error": {"code": 500, "message": "boom", "status": "INTERNAL"}}
    assert StreamEncoder.PING.strip() == b""


def test_stream_encoder_as_one_json_array():
    events = [ir.MessageStart("m1", "x", ir.Usage(5)), ir.TextStart(0), ir.TextDelta(0, "a"),
              ir.TextDelta(0, "b"), ir.BlockStop(0),
              ir.MessageDelta(ir.END_TURN, None, ir.Usage(5, 2)), ir.MessageStop()]
    for cut in range(len(events) + 1):
        enc = StreamEncoder("m", array=True)
        data = b"\r\n" + enc.encode(events[:cut]) + b"\r\n" + enc.encode(events[cut:])
        chunks = orjson.loads(data)  # pings (empty lines) are JSON whitespace
        assert [c["candidates"][0]["content"]["parts"] for c in chunks] == [
            [{"text": "a"}], [{"text": "b"}], []]
    enc = StreamEncoder("m", array=True)
    partial = enc.encode(events[:3])
    error = enc.error(UpstreamError("boom", status=503))
    assert orjson.loads(partial + error)[-1]["error"]["status"] == "UNAVAILABLE"
    assert orjson.loads(StreamEncoder("m", array=True).error(RateLimited("x")))[0]["error"][
        "code"] == 429
