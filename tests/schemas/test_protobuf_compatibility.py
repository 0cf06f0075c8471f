"""Protobuf wire compatibility, rule by rule (fields by number, messages by full name)."""

from __future__ import annotations

import pytest

from runtime.schemas.errors import InvalidSchemaError
from runtime.schemas.protobuf import ProtobufSchema, can_read

BASE = """
syntax = "proto3";
package rides;
message Ride {
  string id = 1;
  int32 passengers = 2;
  Zone zone = 3;
  Point from = 4;
  message Point { double lat = 1; double lon = 2; }
}
enum Zone { CENTER = 0; AIRPORT = 1; }
"""


def proto(text: str) -> ProtobufSchema:
    return ProtobufSchema(text)


def test_adding_and_removing_fields_are_compatible():
    added = BASE.replace("Point from = 4;", "Point from = 4; repeated string tags = 5;")
    removed = BASE.replace("int32 passengers = 2;", "reserved 2;")
    assert can_read(proto(added), proto(BASE)) == []
    assert can_read(proto(removed), proto(BASE)) == []


@pytest.mark.parametrize(
    ("change", "compatible"),
    [
        (("int32 passengers", "int64 passengers"), True),
        (("int32 passengers", "uint32 passengers"), True),
        (("int32 passengers", "bool passengers"), True),
        (("int32 passengers", "sint32 passengers"), False),
        (("int32 passengers", "string passengers"), False),
        (("string id", "bytes id"), True),
        (("string id", "int32 id"), False),
        (("Zone zone", "int32 zone"), True),
        (("Point from", "string from"), False),
        (("int32 passengers", "repeated int32 passengers"), True),
        (("string id", "repeated string id"), False),
    ],
)
def test_field_type_changes_by_wire_group(change, compatible):
    changed = BASE.replace(*change)
    assert (can_read(proto(changed), proto(BASE)) == []) is compatible


def test_a_removed_message_and_a_changed_package_break():
    assert "message rides.Ride.Point removed" in can_read(
        proto(BASE.replace("message Point { double lat = 1; double lon = 2; }", "").replace(
            "Point from = 4;", "")),
        proto(BASE),
    )  # fmt: skip
    assert can_read(proto(BASE.replace("package rides;", "package taxis;")), proto(BASE)) != []


def test_oneofs_one_field_may_move_into_a_new_one_several_may_not():
    one = BASE.replace("string id = 1;", "oneof key { string id = 1; }")
    two = BASE.replace("string id = 1;\n  int32 passengers = 2;",
                       "oneof key { string id = 1; int32 passengers = 2; }")  # fmt: skip
    assert can_read(proto(one), proto(BASE)) == []
    assert "2 existing fields moved into the new oneof key" in can_read(proto(two), proto(BASE))[0]


def test_an_unparseable_schema_is_refused():
    with pytest.raises(InvalidSchemaError, match="invalid Protobuf schema: line 1"):
        ProtobufSchema('syntax = "proto3"; message {')
    with pytest.raises(InvalidSchemaError, match="no message"):
        ProtobufSchema('syntax = "proto3"; enum E { A = 0; }')
