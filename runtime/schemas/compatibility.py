"""Schema types, parsing, and the compatibility levels of a subject.

    BACKWARD   the new schema reads data written with the latest one (default)
    FORWARD    the latest schema reads data written with the new one
    FULL       both
    *_TRANSITIVE  the same against every live version, not only the latest
    NONE       no check

`parse(schema_type, text, references)` gives a parsed schema (InvalidSchemaError
if it does not parse); `problems(level, new, existing)` why the new one breaks
the level ([] when it keeps it); `existing` is oldest first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from runtime.schemas import avro, json_schema, protobuf
from runtime.schemas.errors import InvalidCompatibilityError, InvalidSchemaError

SCHEMA_TYPES = ("AVRO", "PROTOBUF", "JSON")
LEVELS = (
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
    "NONE",
)
DEFAULT_LEVEL = "BACKWARD"


class Parsed(Protocol):
    text: str

    def canonical(self) -> str: ...


_PARSERS = {
    "AVRO": avro.AvroSchema,
    "PROTOBUF": protobuf.ProtobufSchema,
    "JSON": json_schema.JsonSchema,
}
_READERS = {
    "AVRO": avro.can_read,
    "PROTOBUF": protobuf.can_read,
    "JSON": json_schema.can_read,
}


def check_type(schema_type: str) -> str:
    if schema_type not in SCHEMA_TYPES:
        raise InvalidSchemaError(
            f"unknown schema type {schema_type!r}: one of {', '.join(SCHEMA_TYPES)}"
        )
    return schema_type


def check_level(level: object) -> str:
    if not isinstance(level, str) or level.upper() not in LEVELS:
        raise InvalidCompatibilityError(
            f"invalid compatibility level {level!r}: one of {', '.join(LEVELS)}"
        )
    return level.upper()


def parse(schema_type: str, text: str, references: Mapping[str, str] | None = None) -> Parsed:
    """The parsed schema; `references`: the referenced schemas' texts by reference name."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidSchemaError("the schema is empty")
    return _PARSERS[check_type(schema_type)](text, references)


def problems(level: str, schema_type: str, new: Parsed, existing: Sequence[Parsed]) -> list[str]:
    if level == "NONE" or not existing:
        return []
    against = existing if level.endswith("_TRANSITIVE") else existing[-1:]
    can_read = _READERS[schema_type]
    out: list[str] = []
    for old in reversed(against):
        if level.startswith(("BACKWARD", "FULL")):
            out += [f"reading old data: {p}" for p in can_read(new, old)]  # type: ignore[arg-type]
        if level.startswith(("FORWARD", "FULL")):
            out += [f"old readers: {p}" for p in can_read(old, new)]  # type: ignore[arg-type]
    return out
