"""Avro schema resolution, rule by rule: what a reader can read of a writer's data."""

from __future__ import annotations

import json

import pytest

from runtime.schemas.avro import AvroSchema, can_read
from runtime.schemas.errors import InvalidSchemaError


def avro(schema: object) -> AvroSchema:
    return AvroSchema(json.dumps(schema))


def record(*fields: dict, name: str = "Ride", **extra: object) -> AvroSchema:
    return avro({"type": "record", "name": name, "fields": list(fields), **extra})


ID = {"name": "id", "type": "string"}


@pytest.mark.parametrize(
    ("writer", "reader"),
    [("int", "long"), ("int", "double"), ("long", "float"), ("float", "double"),
     ("string", "bytes"), ("bytes", "string")],
)  # fmt: skip
def test_promotions_are_read(writer, reader):
    assert can_read(avro(reader), avro(writer)) == []


@pytest.mark.parametrize(
    ("writer", "reader"), [("long", "int"), ("double", "float"), ("string", "int")]
)
def test_narrowing_or_unrelated_primitives_are_not(writer, reader):
    assert can_read(avro(reader), avro(writer)) == [
        f"the top level: {writer} cannot be read as {reader}"
    ]


def test_a_field_added_with_a_default_is_read_and_without_one_is_not():
    old = record(ID)
    assert can_read(record(ID, {"name": "fare", "type": "double", "default": 0.0}), old) == []
    assert can_read(record(ID, {"name": "fare", "type": "double"}), old) == [
        "fare: a field without a default that the writer lacks"
    ]


def test_a_removed_field_is_skipped_and_an_alias_matches_a_renamed_one():
    old = record(ID, {"name": "fare", "type": "double"})
    assert can_read(record(ID), old) == []
    renamed = record(ID, {"name": "price", "type": "double", "aliases": ["fare"]})
    assert can_read(renamed, old) == []


def test_records_must_have_the_same_name_or_an_alias():
    assert can_read(record(ID, name="Other"), record(ID)) != []
    assert can_read(record(ID, name="Other", aliases=["Ride"]), record(ID)) == []


def test_enum_symbols_added_are_fine_removed_only_with_a_default():
    def enum(*symbols: str, **extra: object) -> AvroSchema:
        return avro({"type": "enum", "name": "Zone", "symbols": list(symbols), **extra})

    assert can_read(enum("A", "B", "C"), enum("A", "B")) == []
    assert "lacks symbols ['C']" in can_read(enum("A", "B"), enum("A", "B", "C"))[0]
    assert can_read(enum("A", "B", default="A"), enum("A", "B", "C")) == []


def test_unions_each_written_branch_must_be_readable():
    assert can_read(avro(["null", "string", "int"]), avro(["null", "string"])) == []
    assert can_read(avro(["null", "string"]), avro(["null", "string", "int"])) != []
    assert can_read(avro(["null", "long"]), avro("int")) == []  # a branch reads the writer
    assert can_read(avro("long"), avro(["int", "long"])) == []


def test_arrays_maps_and_fixed():
    assert (
        can_read(avro({"type": "array", "items": "long"}), avro({"type": "array", "items": "int"}))
        == []
    )
    assert (
        can_read(avro({"type": "map", "values": "int"}), avro({"type": "map", "values": "long"}))
        != []
    )
    fixed = {"type": "fixed", "name": "H", "size": 16}
    assert can_read(avro(fixed), avro(fixed)) == []
    assert can_read(avro({**fixed, "size": 8}), avro(fixed)) != []


def test_recursive_records_resolve():
    link = {"name": "next", "type": ["null", "Node"], "default": None}
    node = record({"name": "v", "type": "int"}, link, name="Node")
    wider = record({"name": "v", "type": "long"}, link, name="Node")
    assert can_read(wider, node) == []
    assert can_read(node, wider) != []


def test_logical_types_resolve_by_their_underlying_type():
    ts = {"type": "long", "logicalType": "timestamp-millis"}
    assert (
        can_read(record({"name": "at", "type": ts}), record({"name": "at", "type": "long"})) == []
    )


def test_an_unparseable_schema_is_refused():
    with pytest.raises(InvalidSchemaError, match="invalid Avro schema"):
        AvroSchema('{"type": "record", "name": "R", "fields": [{"name": "a", "type": "nope"}]}')
    with pytest.raises(InvalidSchemaError):
        AvroSchema("not json")


def test_layout_does_not_change_the_canonical_form():
    a = AvroSchema('{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}')
    b = AvroSchema('{ "fields": [ {"type": "int", "name": "a"} ], "name": "R", "type": "record" }')
    assert a.canonical() == b.canonical()
