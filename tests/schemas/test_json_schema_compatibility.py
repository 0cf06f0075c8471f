"""JSON Schema compatibility, rule by rule: does the reader accept all the writer did?"""

from __future__ import annotations

import json

import pytest

from runtime.schemas.errors import InvalidSchemaError
from runtime.schemas.json_schema import JsonSchema, can_read


def js(schema: object) -> JsonSchema:
    return JsonSchema(json.dumps(schema))


def obj(properties: dict, *, required: tuple = (), closed: bool | None = None) -> JsonSchema:
    schema: dict = {"type": "object", "properties": properties, "required": list(required)}
    if closed is not None:
        schema["additionalProperties"] = not closed
    return js(schema)


INT, NUM, STR = {"type": "integer"}, {"type": "number"}, {"type": "string"}


def test_integer_reads_as_number_not_the_other_way():
    assert can_read(obj({"a": NUM}), obj({"a": INT})) == []
    assert "type number is not read" in can_read(obj({"a": INT}), obj({"a": NUM}))[0]


def test_a_newly_required_property_breaks():
    problems = can_read(obj({"a": INT}, required=("a",), closed=True), obj({"a": INT}, closed=True))
    assert problems == ["#: property 'a' is now required"]


def test_adding_a_property_to_a_closed_model_is_fine_to_an_open_one_is_not():
    assert can_read(obj({"a": INT, "b": STR}, closed=True), obj({"a": INT}, closed=True)) == []
    assert can_read(obj({"a": INT, "b": STR}), obj({"a": INT})) != []
    assert can_read(obj({"a": INT, "b": {}}), obj({"a": INT})) == []  # b accepts anything


def test_removing_a_property_is_fine_unless_the_reader_closes_its_model():
    assert can_read(obj({}), obj({"a": INT})) == []
    assert can_read(obj({}, closed=True), obj({"a": INT})) != []


def test_closing_additional_properties_breaks():
    assert "additionalProperties" in " ".join(
        can_read(obj({"a": INT}, closed=True), obj({"a": INT}))
    )


def test_enums_may_grow_not_shrink():
    assert can_read(js({"enum": ["a", "b", "c"]}), js({"enum": ["a", "b"]})) == []
    assert "enum narrowed" in can_read(js({"enum": ["a"]}), js({"enum": ["a", "b"]}))[0]


@pytest.mark.parametrize(
    ("reader", "writer", "compatible"),
    [
        ({"type": "string", "maxLength": 10}, {"type": "string", "maxLength": 20}, False),
        ({"type": "string", "maxLength": 20}, {"type": "string", "maxLength": 10}, True),
        ({"type": "integer", "minimum": 5}, {"type": "integer", "minimum": 0}, False),
        ({"type": "integer", "minimum": 0}, {"type": "integer", "minimum": 5}, True),
        ({"type": "string", "pattern": "^a"}, {"type": "string"}, False),
        ({"type": "array", "items": NUM}, {"type": "array", "items": INT}, True),
        ({"type": "array", "items": INT}, {"type": "array", "items": NUM}, False),
    ],
)
def test_bounds_patterns_and_items(reader, writer, compatible):
    assert (can_read(js(reader), js(writer)) == []) is compatible


def test_each_written_branch_needs_a_reading_branch():
    assert can_read(js({"oneOf": [INT, STR, {"type": "null"}]}), js({"oneOf": [INT, STR]})) == []
    assert can_read(js({"oneOf": [INT]}), js({"oneOf": [INT, STR]})) != []


def test_refs_are_followed():
    schema = {
        "definitions": {"p": INT},
        "type": "object",
        "properties": {"a": {"$ref": "#/definitions/p"}},
    }
    wider = {
        "definitions": {"p": NUM},
        "type": "object",
        "properties": {"a": {"$ref": "#/definitions/p"}},
    }
    assert can_read(js(wider), js(schema)) == []
    assert can_read(js(schema), js(wider)) != []


def test_an_invalid_schema_is_refused():
    with pytest.raises(InvalidSchemaError, match="invalid JSON schema"):
        js({"type": "no-such-type"})
    with pytest.raises(InvalidSchemaError, match="not JSON"):
        JsonSchema("{")
