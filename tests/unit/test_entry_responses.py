"""protocols/openai_responses entry: client bodies (the real Codex CLI's recorded requests
first) → IR; bad input → a 400 naming the field; error bodies; JSON answers."""
from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from ferryllm import ir
from ferryllm.config import ProviderConfig
from ferryllm.errors import InvalidRequest, ModelNotFound, RateLimited, UpstreamError
from ferryllm.protocols.openai_responses.adapter import ResponsesAdapter
from ferryllm.protocols.openai_responses.entry import decode_request, error_body
from ferryllm.protocols.openai_responses.items import NO_RESULT
from ferryllm.protocols.openai_responses.output import encode_response
from tests.responses_rules import check_request

CODEX = Path(__file__).parent.parent / "fixtures" / "codex"
CODEX_BODIES = {p.stem: json.loads(p.read_text("utf-8"))["body"]
                for p in sorted(CODEX.glob("*.json"))}


def codex(name: str) -> ir.Request:
    return decode_request(CODEX_BODIES[name])


def tool_uses(req: ir.Request) -> list[ir.ToolUseBlock]:
    return [b for m in req.messages for b in m.content if b.type == "tool_use"]


# ---------------------------------------------------------------- the real Codex CLI


@pytest.mark.parametrize("name", sorted(CODEX_BODIES))
def test_codex_requests_decode_and_reencode_for_a_responses_provider(name):
    """Every recorded Codex request decodes; encoded from the IR for a Responses provider it
    is a body the real API accepts (the mock's rules): every call answered, no stored ids."""
    req = codex(name)
    assert req.stream and req.tools and req.system and req.messages
    assert req.messages[0].role == "user"
    ir_only = ir.Request(**{**{f: getattr(req, f) for f in req.__slots__},
                            "native_protocol": None, "native": None})
    adapter = ResponsesAdapter(ProviderConfig(name="r", type="openai_responses",
                                              base_url="http://x", api_key="k"))
    body = check_request(adapter.encode_request(ir_only), {"Authorization": "Bearer k"})
    assert body["store"] is False


def test_codex_apply_patch_is_a_freeform_tool():
    req = codex("first_turn.1")
    patch = next(t for t in req.tools if t.name == "apply_patch")
    assert patch.freeform["type"] == "grammar"
    assert patch.input_schema["required"] == ["input"]
    assert "grammar" in patch.input_schema["properties"]["input"]["description"]
    assert req.entry_context.tools.lookup("apply_patch").freeform
    assert req.reasoning.effort == "medium" and req.entry_context.encrypted


def test_codex_apply_patch_round_trip_history():
    req = codex("apply_patch.2")
    (call,) = tool_uses(req)
    assert call.name == "apply_patch" and call.input["input"].startswith("*** Begin Patch")
    result = req.messages[-1].content[0]
    assert result.type == "tool_result" and result.tool_use_id == call.id
    assert "Success" in result.content[0].text


def test_codex_shell_round_trip_keeps_reasoning_and_pairs_the_call():
    req = codex("shell.2")
    turn = next(m for m in req.messages if m.role == "assistant")
    assert [b.type for b in turn.content] == ["thinking", "text", "tool_use"]
    thinking = turn.content[0]
    assert thinking.thinking and thinking.signature.startswith("openai_responses:")
    after = req.messages[req.messages.index(turn) + 1]
    assert after.content[0].tool_use_id == turn.content[2].id


def test_codex_parallel_calls_are_one_turn_answered_together():
    req = codex("parallel.2")
    turns = [m for m in req.messages if any(b.type == "tool_use" for b in m.content)]
    assert len(turns) == 1 and len(tool_uses(req)) == 2
    answers = req.messages[req.messages.index(turns[0]) + 1].content
    assert [a.tool_use_id for a in answers] == [c.id for c in tool_uses(req)]


def test_codex_newest_model_tools_come_from_additional_tools():
    req = codex("newest_model.1")
    assert not CODEX_BODIES["newest_model.1"].get("tools")
    names = [t.name for t in req.tools]
    assert names and all(len(n) <= 64 for n in names)
    flat = [n for n in names if "__" in n]
    assert flat and req.entry_context.tools.lookup(flat[0]).namespace


def test_codex_bare_config_drops_hosted_tools_and_flattens_namespaces():
    req = codex("bare_config.1")
    names = [t.name for t in req.tools]
    assert "web_search" not in names
    assert any(n.startswith("multi_agent_v1__") for n in names)


# ---------------------------------------------------------------- items


def body(*items, **kw) -> dict:
    return {"model": "gpt-5", "input": list(items), **kw}


def test_string_input_and_instructions():
    req = decode_request({"model": "m", "input": "hello", "instructions": "Be brief."})
    assert req.system == [ir.TextBlock("Be brief.")]
    assert req.messages == [ir.Message("user", [ir.TextBlock("hello")])]


def test_later_system_messages_stay_in_place():
    req = decode_request(body({"role": "system", "content": "lead"},
                              {"role": "user", "content": "u"},
                              {"role": "developer", "content": [
                                  {"type": "input_text", "text": "mid"}]},
                              {"role": "user", "content": "v"}))
    assert req.system == [ir.TextBlock("lead")]
    assert [m.role for m in req.messages] == ["user", "system", "user"]


def test_parts_images_refusal_and_unknown_parts():
    req = decode_request(body(
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "see"},
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
            {"type": "input_image", "image_url": "https://x/cat.png", "detail": "high"},
            {"type": "input_file", "file_id": "file_1"}]},
        {"type": "message", "role": "assistant", "id": "msg_1", "phase": "final_answer",
         "status": "completed", "content": [{"type": "output_text", "text": "a"},
                                            {"type": "refusal", "refusal": "no"}]},
        {"role": "user", "content": "again"}))
    user, assistant, _ = req.messages
    assert user.content == [ir.TextBlock("see"), ir.ImageBlock("image/png", "AAAA"),
                            ir.ImageBlock(url="https://x/cat.png")]
    assert assistant.content == [ir.TextBlock("a"), ir.TextBlock("no")]


def test_unanswered_call_gets_no_result_and_orphan_output_is_user_text():
    req = decode_request(body(
        {"role": "user", "content": "go"},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "f", "arguments": "not json"},
        {"type": "function_call_output", "call_id": "c2", "output": [
            {"type": "input_text", "text": "two"},
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]},
        {"type": "function_call_output", "call_id": "zz", "output": "stray"},
        {"type": "item_reference", "id": "msg_9"},
        {"type": "web_search_call", "id": "ws_1"},
        {"type": "tool_search_call", "id": "ts_1", "arguments": {}},
        {"type": "something_new"}))
    user, calls, answers = req.messages
    assert [b.input for b in calls.content] == [{}, {"_raw": "not json"}]
    first, second, orphan = answers.content
    assert (first.tool_use_id, first.content) == ("c1", [ir.TextBlock(NO_RESULT)])
    assert second.tool_use_id == "c2" and second.content[1].type == "image"
    assert orphan == ir.TextBlock("Output of tool call zz:\nstray")


def test_reasoning_signatures_by_kind():
    def thinking(secret):
        req = decode_request(body({"role": "user", "content": "x"}, {
            "type": "reasoning", "summary": [{"type": "summary_text", "text": "t"}],
            "encrypted_content": secret}, {"role": "assistant", "content": "a"}))
        return req.messages[1].content[0]
    assert thinking("anthropic:EqQB").signature == "EqQB"
    assert thinking("gemini:abc").signature == "gemini:abc"
    assert thinking("gAAAAB==").signature == "openai_responses:gAAAAB=="
    red = thinking("anthropic_redacted:DATA")
    assert red.redacted and red.data == "DATA"


def test_options():
    req = decode_request(body(
        {"role": "user", "content": "x"},
        tools=[{"type": "function", "name": "f"}, {"type": "custom", "name": "g"}],
        tool_choice={"type": "custom", "name": "g"}, parallel_tool_calls=False,
        reasoning={"effort": "high", "summary": "detailed"}, max_output_tokens=500,
        temperature=0.3, top_p=0.9, prompt_cache_key="pk", user="u1",
        text={"format": {"type": "json_schema", "name": "out", "strict": True,
                         "schema": {"type": "object"}}}))
    assert req.tool_choice == ir.ToolChoice("tool", "g", disable_parallel=True)
    assert req.reasoning == ir.Reasoning(effort="high")
    assert (req.max_tokens, req.temperature, req.top_p, req.prompt_cache_key, req.user) == (
        500, 0.3, 0.9, "pk", "u1")
    assert req.response_format == {"type": "json_schema", "name": "out", "strict": True,
                                   "schema": {"type": "object"}}
    allowed = decode_request(body({"role": "user", "content": "x"},
                                  tools=[{"type": "function", "name": "f"},
                                         {"type": "function", "name": "h"}],
                                  tool_choice={"type": "allowed_tools", "mode": "required",
                                               "tools": [{"type": "function", "name": "h"}]}))
    assert [t.name for t in allowed.tools] == ["h"] and allowed.tool_choice.type == "any"
    off = decode_request(body({"role": "user", "content": "x"}, reasoning={"effort": "none"}))
    assert off.reasoning == ir.Reasoning(enabled=False)


@pytest.mark.parametrize("bad,param", [
    ({"input": "x"}, "model"),
    ({"model": "m"}, "input"),
    ({"model": "m", "input": 5}, "input"),
    ({"model": "m", "input": []}, "input"),
    ({"model": "m", "input": [5]}, "input[0]"),
    ({"model": "m", "input": [{"role": "boss", "content": "x"}]}, "input[0].role"),
    ({"model": "m", "input": ["x", {"type": "function_call", "name": "f"}]}, "input[0]"),
    ({"model": "m", "input": [{"role": "user", "content": "x"}, {"role": "user", "content": "y"},
                              {"role": "user", "content": "z"},
                              {"type": "function_call", "name": "f", "arguments": "{}"}]},
     "input[3].call_id"),
    ({"model": "m", "input": [{"type": "function_call", "call_id": "c"}]}, "input[0].name"),
    ({"model": "m", "input": [{"type": "function_call_output", "call_id": "c", "output": 3}]},
     "input[0].output"),
    ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_text"}]}]},
     "input[0].content[0].text"),
    ({"model": "m", "input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
    ({"model": "m", "input": "x", "tools": [{"type": "namespace", "name": "n", "tools": [
        {"type": "function", "name": "f", "parameters": 3}]}]}, "tools[0].tools[0].parameters"),
    ({"model": "m", "input": "x", "tool_choice": "sometimes"}, "tool_choice"),
    ({"model": "m", "input": "x", "max_output_tokens": 0}, "max_output_tokens"),
    ({"model": "m", "input": "x", "temperature": "hot"}, "temperature"),
    ({"model": "m", "input": "x", "reasoning": {"effort": "extreme"}}, "reasoning.effort"),
    ({"model": "m", "input": "x", "include": [1]}, "include[0]"),
    ({"model": "m", "input": "x", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
    ({"model": "m", "input": "x", "conversation": "conv_1"}, "conversation"),
    ({"model": "m", "input": "x", "background": True}, "background"),
    ({"model": "m", "input": "x", "prompt": {"id": "pmpt_1"}}, "prompt"),
])
def test_bad_input_names_the_field(bad, param):
    with pytest.raises(InvalidRequest) as info:
        decode_request(bad)
    assert info.value.param == param and info.value.status == 400


def test_previous_response_id_is_openais_own_error():
    with pytest.raises(InvalidRequest) as info:
        decode_request({"model": "m", "input": "x", "previous_response_id": "resp_123"})
    err = orjson.loads(error_body(info.value))["error"]
    assert err["code"] == "previous_response_not_found"
    assert err["param"] == "previous_response_id" and err["type"] == "invalid_request_error"
    assert "resp_123" in err["message"]


@pytest.mark.parametrize("err,etype,code", [
    (RateLimited("slow"), "rate_limit_error", "rate_limit_exceeded"),
    (UpstreamError("prompt is too long: 1 tokens > 0 maximum", status=400),
     "invalid_request_error", "context_length_exceeded"),
    (UpstreamError("boom", status=500), "server_error", "server_error"),
    (ModelNotFound("no route"), "invalid_request_error", "model_not_found")])
def test_error_bodies(err, etype, code):
    out = orjson.loads(error_body(err))["error"]
    assert (out["type"], out["code"]) == (etype, code)


# ---------------------------------------------------------------- JSON answers


def test_json_answer_items_and_echo():
    req = decode_request(body({"role": "user", "content": "x"}, store=False,
                              include=["reasoning.encrypted_content"],
                              tools=[{"type": "custom", "name": "apply_patch"}]))
    resp = ir.Response("msg_01", "b", [
        ir.ThinkingBlock("plan", signature="SIG"), ir.TextBlock("done"),
        ir.ToolUseBlock("call_1", "apply_patch", {"input": "*** Begin Patch"})],
        ir.MAX_TOKENS, usage=ir.Usage(10, 5, 3, 2))
    out = orjson.loads(encode_response(resp, "gpt-5", req, created=7))
    assert out["id"] == "resp_msg01" and out["created_at"] == 7 and out["store"] is False
    assert out["status"] == "incomplete"
    assert out["incomplete_details"] == {"reason": "max_output_tokens"}
    reasoning, message, call = out["output"]
    assert reasoning["encrypted_content"] == "anthropic:SIG"
    assert reasoning["summary"] == [{"type": "summary_text", "text": "plan"}]
    assert message["content"][0]["text"] == "done"
    assert call["type"] == "custom_tool_call" and call["input"] == "*** Begin Patch"
    assert out["usage"] == {"input_tokens": 15, "input_tokens_details": {
        "cached_tokens": 3, "cache_write_tokens": 2}, "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 20}
