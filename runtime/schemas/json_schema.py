"""JSON Schema: parsing (jsonschema checks the schema itself) and compatibility.

`can_read(reader, writer)`: whether every document valid under `writer` is
valid under `reader`, judged rule by rule as Confluent's registry does (it
cannot be decided in general; these are the changes that matter in practice):

- `type`: the reader accepts every type the writer allows ("integer" is read
  as "number", not the other way);
- objects: a property the reader requires that the writer did not; a
  property the reader adds to what the writer left open (additionalProperties
  not false: old data may hold anything under that name) unless the reader's
  schema for it accepts anything; a property the reader drops while closing
  its content model (additionalProperties false); additionalProperties
  closed, or narrowed, where the writer's was open; and each shared property's
  schema, recursively;
- arrays: items, recursively; `maxItems` lowered, `minItems` raised;
- enums narrowed (a writer value the reader lacks), `const` changed;
- numbers and strings: `maximum`/`exclusiveMaximum`/`maxLength` lowered,
  `minimum`/`exclusiveMinimum`/`minLength` raised, `multipleOf` changed,
  `pattern` or `format` added or changed;
- `oneOf`/`anyOf`: each writer branch must be read by some reader branch.

`$ref` to `#/definitions/...` or `#/$defs/...` is followed (once per pair, for
recursive schemas); `true`/`{}` accept everything, `false` nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError

from runtime.schemas.errors import InvalidSchemaError

_UPPER = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
_LOWER = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_EXACT = ("multipleOf", "pattern", "format", "const")


class JsonSchema:
    def __init__(self, text: str, references: Mapping[str, str] | None = None) -> None:
        try:
            self.document = json.loads(text)
        except ValueError as exc:
            raise InvalidSchemaError(f"invalid JSON schema: not JSON: {exc}") from None
        if not isinstance(self.document, dict | bool):
            raise InvalidSchemaError("invalid JSON schema: not an object or a boolean")
        try:
            jsonschema.validators.validator_for(self.document).check_schema(self.document)
        except SchemaError as exc:
            raise InvalidSchemaError(f"invalid JSON schema: {exc.message}") from None
        self.text = text
        self.references = dict(references or {})

    def canonical(self) -> str:
        return json.dumps(self.document, sort_keys=True, separators=(",", ":"))


def can_read(reader: JsonSchema, writer: JsonSchema) -> list[str]:
    problems: list[str] = []
    _Checker(reader.document, writer.document, problems).check(
        reader.document, writer.document, "#"
    )
    return problems


class _Checker:
    def __init__(self, reader_root: Any, writer_root: Any, out: list[str]) -> None:
        self._roots = (reader_root, writer_root)
        self._out = out
        self._seen: set[tuple[int, int]] = set()

    def check(self, reader: Any, writer: Any, path: str) -> None:
        reader, writer = self._deref(reader, 0), self._deref(writer, 1)
        if reader is True or reader == {} or writer is False:
            return
        if reader is False:
            self._out.append(f"{path}: the reader accepts nothing")
            return
        if writer is True or writer == {}:
            self._out.append(f"{path}: the writer accepted anything, the reader does not")
            return
        pair = (id(reader), id(writer))
        if pair in self._seen:
            return
        self._seen.add(pair)
        for keyword in ("oneOf", "anyOf"):
            if keyword in writer or keyword in reader:
                self._branches(reader, writer, keyword, path)
                return
        self._types(reader, writer, path)
        self._bounds(reader, writer, path)
        if "enum" in reader:
            missing = [v for v in writer.get("enum", [None]) if v not in reader["enum"]]
            if "enum" not in writer or missing:
                self._out.append(f"{path}: enum narrowed (the reader lacks {missing or 'values'})")
        self._object(reader, writer, path)
        if "items" in reader or "items" in writer:
            self.check(reader.get("items", True), writer.get("items", True), f"{path}/items")

    def _branches(self, reader: dict, writer: dict, keyword: str, path: str) -> None:
        writer_branches = writer.get("oneOf") or writer.get("anyOf") or [writer]
        reader_branches = reader.get("oneOf") or reader.get("anyOf") or [reader]
        for i, branch in enumerate(writer_branches):
            if not any(self._quietly(r, branch) for r in reader_branches):
                self._out.append(f"{path}/{keyword}/{i}: no reader branch reads it")

    def _quietly(self, reader: Any, writer: Any) -> bool:
        scratch: list[str] = []
        saved, self._out = self._out, scratch
        seen = set(self._seen)
        try:
            self.check(reader, writer, "")
            return not scratch
        finally:
            self._out, self._seen = saved, seen

    def _types(self, reader: dict, writer: dict, path: str) -> None:
        if "type" not in reader:
            return
        readable = _types(reader["type"])
        if "number" in readable:
            readable.add("integer")
        written = _types(writer.get("type", ["any"]))
        lost = sorted(written - readable)
        if lost:
            self._out.append(f"{path}: type {', '.join(lost)} is not read by {sorted(readable)}")

    def _bounds(self, reader: dict, writer: dict, path: str) -> None:
        for keyword in _UPPER:
            if keyword in reader and (keyword not in writer or reader[keyword] < writer[keyword]):
                self._out.append(f"{path}: {keyword} lowered to {reader[keyword]}")
        for keyword in _LOWER:
            if keyword in reader and (keyword not in writer or reader[keyword] > writer[keyword]):
                self._out.append(f"{path}: {keyword} raised to {reader[keyword]}")
        for keyword in _EXACT:
            if keyword in reader and reader[keyword] != writer.get(keyword):
                self._out.append(f"{path}: {keyword} changed to {reader[keyword]!r}")

    def _object(self, reader: dict, writer: dict, path: str) -> None:
        reader_props = reader.get("properties", {})
        writer_props = writer.get("properties", {})
        added_required = set(reader.get("required", ())) - set(writer.get("required", ()))
        for name in sorted(added_required):
            self._out.append(f"{path}: property {name!r} is now required")
        writer_extra = writer.get("additionalProperties", True)
        reader_extra = reader.get("additionalProperties", True)
        for name, schema in reader_props.items():
            where = f"{path}/properties/{name}"
            if name in writer_props:
                self.check(schema, writer_props[name], where)
            elif writer_extra is not False:
                # old data may hold anything (or what the writer's additionalProperties
                # allowed) under this name
                self.check(schema, writer_extra, where)
        for name, schema in writer_props.items():
            if name not in reader_props:
                self.check(reader_extra, schema, f"{path}/properties/{name} (removed)")
        if "additionalProperties" in reader:  # closed or narrowed where the writer was not
            self.check(reader_extra, writer_extra, f"{path}/additionalProperties")

    def _deref(self, node: Any, side: int) -> Any:
        hops = 0
        while isinstance(node, dict) and "$ref" in node and hops < 32:
            ref = node["$ref"]
            if not ref.startswith("#"):
                return node  # another document: references are not followed across
            target: Any = self._roots[side]
            for part in [p for p in ref[1:].split("/") if p]:
                part = part.replace("~1", "/").replace("~0", "~")
                if not isinstance(target, dict) or part not in target:
                    return node
                target = target[part]
            node, hops = target, hops + 1
        return node


def _types(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value}
    return set(value)
