"""toolsearch: the regex and BM25 searches over deferred tools, and earlier searches unfolded
into a call and its result for providers without tool search."""
from __future__ import annotations

from ferryllm import ir, policy, toolsearch


def tool(name: str, description: str, deferred: bool = True, **props) -> ir.Tool:
    return ir.Tool(name, description, {"type": "object", "properties": {
        k: {"type": "string", "description": v} for k, v in props.items()}}, deferred=deferred)


TOOLS = [tool("get_weather", "Current weather for a city", city="The city name"),
         tool("send_email", "Send an email message", to="Recipient address"),
         tool("slack_post", "Post to a Slack channel", channel="Where"),
         tool("Bash", "Run a shell command about weather", deferred=False)] + [
    tool(f"crm_{n}", f"Manage CRM {n}") for n in range(8)]


def test_regex_searches_names_descriptions_and_arguments_of_deferred_tools_only():
    assert toolsearch.search("regex", "weather", TOOLS) == (["get_weather"], None)
    assert toolsearch.search("regex", "(?i)SLACK", TOOLS) == (["slack_post"], None)
    assert toolsearch.search("regex", "Recipient", TOOLS) == (["send_email"], None)
    assert toolsearch.search("regex", "crm_", TOOLS)[0] == [f"crm_{n}" for n in range(5)]


def test_a_catastrophic_pattern_is_cut_off_not_left_to_hold_the_loop():
    """(a|aa)+$ against a long run of "a"s backtracks exponentially: the search gives up within
    its time budget and says so, as Anthropic's tool search does."""
    slow = ir.Tool("slow", "a" * 40 + "!", {"type": "object"}, deferred=True)
    assert toolsearch.search("regex", "(a|aa)+$", [slow]) == ([], "execution_time_exceeded")


def test_regex_errors():
    assert toolsearch.search("regex", "(unclosed", TOOLS) == ([], "invalid_tool_input")
    assert toolsearch.search("regex", "a" * 201, TOOLS) == ([], "invalid_tool_input")
    assert toolsearch.search("regex", 5, TOOLS) == ([], "invalid_tool_input")
    assert toolsearch.search("bm25", "  ", TOOLS) == ([], "invalid_tool_input")


def test_bm25_ranks_by_relevance():
    names, error = toolsearch.search("bm25", "email to a recipient", TOOLS)
    assert error is None and names[0] == "send_email"
    assert toolsearch.search("bm25", "weather in a city", TOOLS)[0][0] == "get_weather"
    assert toolsearch.search("bm25", "zebra", TOOLS) == ([], None)


def test_unfold_turns_server_blocks_into_a_call_and_its_result():
    messages = [
        ir.Message("user", [ir.TextBlock("weather?")]),
        ir.Message("assistant", [
            ir.TextBlock("Let me look."),
            ir.ServerToolUseBlock("srvtoolu_1", "tool_search_tool_regex", {"query": "weather"}),
            ir.ToolSearchResultBlock("srvtoolu_1", ["get_weather"]),
            ir.ToolUseBlock("toolu_2", "get_weather", {"city": "Oslo"})]),
        ir.Message("user", [ir.ToolResultBlock("toolu_2", [ir.TextBlock("rain")])])]
    out = toolsearch.unfold(messages)
    assert [m.role for m in out] == ["user", "assistant", "user", "assistant", "user"]
    assert out[1].content == [ir.TextBlock("Let me look."),
                              ir.ToolUseBlock("srvtoolu_1", "tool_search_tool_regex",
                                              {"query": "weather"})]
    assert out[2].content == [ir.ToolResultBlock("srvtoolu_1",
                                                 [ir.ToolReferenceBlock("get_weather")])]
    assert out[3].content == [ir.ToolUseBlock("toolu_2", "get_weather", {"city": "Oslo"})]
    assert toolsearch.unfold(out) is out  # nothing left to unfold


def test_policy_gives_the_provider_the_search_function_and_the_found_tools():
    req = ir.Request(model="m", tools=TOOLS, tool_search=ir.ServerToolSearch(
        "regex", "tool_search_tool_regex"), messages=[
        ir.Message("user", [ir.TextBlock("weather?")]),
        ir.Message("assistant", [
            ir.ServerToolUseBlock("srvtoolu_1", "tool_search_tool_regex", {"query": "weather"}),
            ir.ToolSearchResultBlock("srvtoolu_1", ["get_weather"])])])
    out = policy.resolve_deferred(req, "openai")
    assert [t.name for t in out.tools] == ["tool_search_tool_regex", "get_weather", "Bash"]
    assert out.tools[0].input_schema["required"] == ["query"]
    result = out.messages[-1].content[0]
    assert result.content[0].text.startswith("<functions>") and "get_weather" in result.content[0].text
    error = ir.ToolSearchResultBlock("srvtoolu_1", error="invalid_tool_input")
    req.messages[1].content[1] = error
    text = policy.resolve_deferred(req).messages[-1].content[0].content[0].text
    assert text == "Tool search failed: invalid_tool_input"
