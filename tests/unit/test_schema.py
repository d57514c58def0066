"""clean_schema: what strict OpenAI-compatible backends reject goes, meaning stays, input untouched."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from ferryllm import schema
from ferryllm.schema import clean_schema

TOOLS = json.loads((Path(__file__).parent.parent / "fixtures" / "tokens" / "tools.json").read_text())

BASH = {  # Claude Code 2.1.x, as sent
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "command": {"description": "The command to execute", "type": "string"},
        "timeout": {"description": "Optional timeout in milliseconds", "type": "number"},
        "run_in_background": {"description": "Run it in the background", "type": "boolean"},
    },
    "required": ["command"],
    "additionalProperties": False,
}


def walk(node):
    yield node
    if isinstance(node, dict):
        for v in node.values():
            yield from walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk(v)


def test_claude_code_schema_loses_only_dollar_schema():
    out = clean_schema(BASH)
    assert out == {k: v for k, v in BASH.items() if k != "$schema"}
    assert out["additionalProperties"] is False
    assert "$schema" in BASH  # the input is untouched


@pytest.mark.parametrize("tool", TOOLS, ids=lambda t: t["name"][:30])
def test_every_fixture_tool_is_clean_and_input_unchanged(tool):
    before = copy.deepcopy(tool["input_schema"])
    out = clean_schema(tool["input_schema"])
    assert tool["input_schema"] == before
    for node in walk(out):
        if isinstance(node, dict):
            assert not ({"$schema", "$id", "$comment", "examples"} & node.keys()) or \
                node is out.get("properties")
    assert out["type"] == "object"
    assert out.get("required") == before.get("required")


def test_meta_and_annotation_keywords_dropped_everywhere_but_property_names_kept():
    s = {"$schema": "x", "$id": "urn:x", "$comment": "c", "type": "object",
         "properties": {
             "examples": {"type": "string", "examples": ["a"], "deprecated": True},
             "$id": {"type": "string", "readOnly": True},
             "blob": {"type": "string", "contentEncoding": "base64",
                      "contentMediaType": "image/png", "writeOnly": True}},
         "required": ["examples"]}
    assert clean_schema(s) == {"type": "object", "properties": {
        "examples": {"type": "string"}, "$id": {"type": "string"}, "blob": {"type": "string"}},
        "required": ["examples"]}


def test_kept_keywords():
    s = {"type": "object", "title": "T", "properties": {
        "url": {"type": "string", "format": "uri", "pattern": "^https?://", "minLength": 8},
        "mode": {"const": "fast", "default": "fast"},
        "n": {"type": ["integer", "null"], "minimum": 0, "exclusiveMaximum": 10},
        "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "number"}]},
        "any": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
        "additionalProperties": {"type": "string"}}
    assert clean_schema(s) is s  # nothing to do: the very same object comes back


def test_local_refs_are_inlined_and_defs_dropped():
    s = {"type": "object",
         "properties": {"where": {"$ref": "#/$defs/Place"},
                        "also": {"$ref": "#/definitions/Place", "description": "second"},
                        "list": {"type": "array", "items": {"$ref": "#/$defs/Place"}}},
         "$defs": {"Place": {"type": "object", "properties": {"city": {"type": "string",
                                                                        "examples": ["Oslo"]}},
                             "required": ["city"]}},
         "definitions": {"Place": {"type": "object", "properties": {"city": {"type": "string"}},
                                   "required": ["city"]}}}
    place = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    out = clean_schema(s)
    assert out == {"type": "object", "properties": {
        "where": place, "also": {**place, "description": "second"},
        "list": {"type": "array", "items": place}}}
    assert "$defs" in s and "examples" in s["$defs"]["Place"]["properties"]["city"]


def test_nested_refs_inline_through_each_other():
    s = {"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}},
         "$defs": {"A": {"type": "object", "properties": {"b": {"$ref": "#/$defs/B"}}},
                   "B": {"type": "integer"}}}
    assert clean_schema(s) == {"type": "object", "properties": {
        "a": {"type": "object", "properties": {"b": {"type": "integer"}}}}}


def test_recursive_schema_keeps_its_refs_and_defs():
    s = {"type": "object", "properties": {"root": {"$ref": "#/$defs/Node"}},
         "$defs": {"Node": {"type": "object", "properties": {
             "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
             "name": {"type": "string", "$comment": "x"}}}}}
    out = clean_schema(s)
    assert out["properties"]["root"] == {"$ref": "#/$defs/Node"}
    assert out["$defs"]["Node"]["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}
    assert "$comment" not in out["$defs"]["Node"]["properties"]["name"]


def test_unresolvable_ref_keeps_the_defs():
    s = {"type": "object", "properties": {"x": {"$ref": "#/$defs/A/properties/y"}},
         "$defs": {"A": {"type": "object", "properties": {"y": {"type": "string"}}}}}
    out = clean_schema(s)
    assert out["properties"]["x"] == {"$ref": "#/$defs/A/properties/y"} and "$defs" in out


def test_unevaluated_properties():
    plain = {"type": "object", "properties": {"a": {"type": "string"}},
             "unevaluatedProperties": False}
    assert clean_schema(plain) == {"type": "object", "properties": {"a": {"type": "string"}},
                                   "additionalProperties": False}
    combined = {"type": "object", "allOf": [{"properties": {"a": {"type": "string"}}}],
                "unevaluatedProperties": False, "unevaluatedItems": False}
    assert clean_schema(combined) == {"type": "object",
                                      "allOf": [{"properties": {"a": {"type": "string"}}}]}


def test_top_level_type_object_added_and_non_dicts():
    assert clean_schema({"properties": {"a": {"type": "string"}}}) == {
        "type": "object", "properties": {"a": {"type": "string"}}}
    assert clean_schema({}) == {"type": "object"}
    assert clean_schema(None) == {"type": "object", "properties": {}}  # type: ignore[arg-type]
    assert clean_schema({"anyOf": [{"type": "object"}]}) == {"anyOf": [{"type": "object"}]}


def test_memoized_by_content():
    schema._memo.clear()
    a = clean_schema(copy.deepcopy(BASH))
    b = clean_schema(copy.deepcopy(BASH))
    assert a is b and len(schema._memo) == 1


def test_memo_is_bounded(monkeypatch):
    monkeypatch.setattr(schema, "_MEMO_MAX", 4)
    schema._memo.clear()
    for i in range(10):
        clean_schema({"type": "object", "properties": {f"p{i}": {"type": "string"}}})
    assert len(schema._memo) <= 4


def test_clean_schema_comes_back_as_itself_even_when_an_equal_one_was_memoized():
    first = {"type": "object", "properties": {}}
    second = {"type": "object", "properties": {}}
    assert clean_schema(first) is first
    assert clean_schema(second) is second
