"""Avro schemas: parsing (fastavro) and the spec's schema resolution as a compatibility check.

`can_read(reader, writer)` answers whether data written with `writer` can be
read with `reader`, by the rules of the Avro specification's "Schema
Resolution" section, and says why not:

- primitives: the same type, or a promotion (int to long, float or double;
  long to float or double; float to double; string to bytes and back);
- records: the same full name (or a reader alias of the writer's name); each
  reader field either matches a writer field (by name or alias) whose type it
  can read, or has a default; writer fields the reader lacks are skipped;
- enums: the same name; every writer symbol is a reader symbol, unless the
  reader has a default symbol;
- arrays and maps: their items and values resolve; fixed: same name and size;
- unions: each branch the writer may have written must be readable (by the
  reader, or by one of the reader's branches if it is a union too).

Logical types do not change resolution (their underlying types decide).
Named types are resolved through the schema's own names and those of its
references; recursive types are compared once per pair (a pair met again
while being compared is assumed to resolve, as it does if everything else does).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import fastavro
from fastavro.schema import SchemaParseException, UnknownType

from runtime.schemas.errors import InvalidSchemaError

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
PROMOTIONS = {
    "int": {"long", "float", "double"},
    "long": {"float", "double"},
    "float": {"double"},
    "string": {"bytes"},
    "bytes": {"string"},
}


class AvroSchema:
    """A parsed Avro schema with its named types (its own and its references')."""

    def __init__(self, text: str, references: Mapping[str, str] | None = None) -> None:
        named: dict[str, Any] = {}
        try:
            for reference in (references or {}).values():
                fastavro.parse_schema(json.loads(reference), named_schemas=named)
            self.parsed = fastavro.parse_schema(json.loads(text), named_schemas=named)
        except (ValueError, TypeError, SchemaParseException, UnknownType) as exc:
            raise InvalidSchemaError(f"invalid Avro schema: {exc}") from exc
        self.named = named
        self.text = text

    def canonical(self) -> str:
        """A normal form: what two schemas that differ only in layout share."""
        return json.dumps(_strip(self.parsed), sort_keys=True, separators=(",", ":"))


def _strip(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if not k.startswith("__")}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def can_read(reader: AvroSchema, writer: AvroSchema) -> list[str]:
    """Why data written with `writer` cannot be read with `reader` ([] if it can)."""
    problems: list[str] = []
    _Resolver(reader.named, writer.named, problems).check(reader.parsed, writer.parsed, "")
    return problems


class _Resolver:
    def __init__(
        self, reader_names: Mapping[str, Any], writer_names: Mapping[str, Any], out: list[str]
    ) -> None:
        self._reader_names, self._writer_names = reader_names, writer_names
        self._out = out
        self._in_progress: set[tuple[str, str]] = set()

    def check(self, reader: Any, writer: Any, path: str) -> bool:
        reader = self._resolve(reader, self._reader_names)
        writer = self._resolve(writer, self._writer_names)
        if isinstance(writer, list):
            return all(self.check(reader, branch, f"{path}|{_kind(branch)}") for branch in writer)
        if isinstance(reader, list):
            for branch in reader:
                if self._quietly(branch, writer):
                    return True
            return self._fail(path, f"no branch of the reader's union reads {_kind(writer)}")
        rkind, wkind = _kind(reader), _kind(writer)
        if wkind in PRIMITIVES or rkind in PRIMITIVES:
            if rkind == wkind or rkind in PROMOTIONS.get(wkind, ()):
                return True
            return self._fail(path, f"{wkind} cannot be read as {rkind}")
        if rkind != wkind:
            return self._fail(path, f"{wkind} cannot be read as {rkind}")
        if rkind in ("record", "enum", "fixed") and not _same_name(reader, writer):
            return self._fail(path, f"{rkind} {writer['name']} cannot be read as {reader['name']}")
        if rkind == "record":
            return self._record(reader, writer, path)
        if rkind == "enum":
            missing = [s for s in writer["symbols"] if s not in reader["symbols"]]
            if missing and "default" not in reader:
                return self._fail(path, f"enum {reader['name']} lacks symbols {missing}")
            return True
        if rkind == "fixed":
            if reader["size"] != writer["size"]:
                return self._fail(path, f"fixed size {writer['size']} read as {reader['size']}")
            return True
        if rkind == "array":
            return self.check(reader["items"], writer["items"], f"{path}[]")
        if rkind == "map":
            return self.check(reader["values"], writer["values"], f"{path}{{}}")
        return self._fail(path, f"unknown type {rkind}")

    def _record(self, reader: dict, writer: dict, path: str) -> bool:
        pair = (reader["name"], writer["name"])
        if pair in self._in_progress:
            return True
        self._in_progress.add(pair)
        try:
            by_name = {f["name"]: f for f in writer["fields"]}
            ok = True
            for field in reader["fields"]:
                names = [field["name"], *field.get("aliases", ())]
                match = next((by_name[n] for n in names if n in by_name), None)
                where = f"{path}.{field['name']}" if path else field["name"]
                if match is None:
                    if "default" not in field:
                        ok = self._fail(where, "a field without a default that the writer lacks")
                    continue
                ok = self.check(field["type"], match["type"], where) and ok
            return ok
        finally:
            self._in_progress.discard(pair)

    def _quietly(self, reader: Any, writer: Any) -> bool:
        scratch: list[str] = []
        saved, self._out = self._out, scratch
        try:
            return self.check(reader, writer, "") and not scratch
        finally:
            self._out = saved

    def _fail(self, path: str, why: str) -> bool:
        self._out.append(f"{path or 'the top level'}: {why}")
        return False

    @staticmethod
    def _resolve(node: Any, names: Mapping[str, Any]) -> Any:
        if isinstance(node, str) and node not in PRIMITIVES:
            return names.get(node, node)
        if isinstance(node, dict) and node.get("type") in PRIMITIVES:
            return node["type"]  # {"type": "long", "logicalType": ...}: the underlying type
        return node


def _kind(node: Any) -> str:
    if isinstance(node, str):
        return node
    if isinstance(node, list):
        return "union"
    kind = node.get("type")
    return kind if isinstance(kind, str) else "union"


def _same_name(reader: dict, writer: dict) -> bool:
    if reader["name"] == writer["name"]:
        return True
    namespace = reader["name"].rpartition(".")[0]
    aliases = {
        a if "." in a or not namespace else f"{namespace}.{a}" for a in reader.get("aliases", ())
    }
    return writer["name"] in aliases
