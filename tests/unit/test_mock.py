"""The --demo provider's plan: a tool only when the user asks for one, never from a reminder."""
from ferryllm.mock import _plan

BASH = {"type": "function", "function": {"name": "Bash", "parameters": {
    "type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}}
AGENT = {"type": "function", "function": {"name": "Agent", "parameters": {"type": "object"}}}


def test_reminders_mentioning_tools_do_not_start_a_tool_loop():
    text, call = _plan({"tools": [AGENT, BASH], "messages": [
        {"role": "user", "content": "<system-reminder>use a tool when needed</system-reminder>\n\nsay hello"},
        {"role": "user", "content": "# Environment: tools available"}]})
    assert call is None and text.startswith("Hello from the ferryllm demo")


def test_asked_for_a_tool_calls_bash_then_answers_its_result():
    body = {"tools": [AGENT, BASH], "messages": [{"role": "user", "content": "please use a tool"}]}
    _, call = _plan(body)
    assert call["name"] == "Bash" and "echo" in call["arguments"]
    body["messages"] += [{"role": "assistant", "tool_calls": [{"id": call["id"]}]},
                         {"role": "tool", "tool_call_id": call["id"], "content": "hello\n"}]
    text, call = _plan(body)
    assert call is None and text == "The tool returned 6 characters. Done."


def test_a_later_turn_is_answered_afresh_after_a_tool_round_trip():
    body = {"tools": [BASH], "messages": [{"role": "user", "content": "please use a tool"}]}
    _, call = _plan(body)
    body["messages"] += [{"role": "assistant", "tool_calls": [{"id": call["id"]}]},
                         {"role": "tool", "tool_call_id": call["id"], "content": "hello\n"},
                         {"role": "user", "content": "<system-reminder>x</system-reminder>"}]
    text, call = _plan(body)
    assert call is None and text.startswith("The tool returned")
    body["messages"] += [{"role": "assistant", "content": text},
                         {"role": "user", "content": "say hello"}]
    text, call = _plan(body)
    assert call is None and text.startswith("Hello from the ferryllm demo")
    body["messages"] += [{"role": "assistant", "content": text},
                         {"role": "user", "content": "use a tool again"}]
    _, call = _plan(body)
    assert call is not None and call["name"] == "Bash"
