"""Protobuf schemas (.proto text): parsing (proto-schema-parser) and wire compatibility.

Protobuf data carries field numbers and wire types, not names, so
`can_read(reader, writer)` compares messages by full name and fields by
number. Incompatible, as in Confluent's registry:

- the package changed; a message the writer had is gone;
- a field number's type moved to another wire-compatible group (int32,
  uint32, int64, uint64 and bool share one; sint32/sint64; fixed32/sfixed32;
  fixed64/sfixed64; string/bytes; float; double; an enum reads as int32's
  group; a message type only as the same message);
- a field became repeated or stopped being so (for a length-delimited type);
- a field moved into or out of a oneof that already existed, or several
  fields moved into one new oneof;
- a field number was removed without being reserved is fine for the wire,
  and allowed (new code ignores old data), as is any added field.

A schema comes as .proto text or, as confluent-kafka's Python serializer
sends it, as a base64 serialized FileDescriptorProto; `serialized()` gives the
latter form for either (what the clients ask for with `?format=serialized`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from antlr4.error.ErrorListener import ErrorListener
from proto_schema_parser import ast
from proto_schema_parser.parser import Parser

from runtime.schemas import protobuf_descriptors as descriptors
from runtime.schemas.errors import InvalidSchemaError

_GROUPS = {
    **dict.fromkeys(("int32", "uint32", "int64", "uint64", "bool", "enum"), "varint"),
    **dict.fromkeys(("sint32", "sint64"), "zigzag"),
    **dict.fromkeys(("fixed32", "sfixed32"), "fixed32"),
    **dict.fromkeys(("fixed64", "sfixed64"), "fixed64"),
    **dict.fromkeys(("string", "bytes"), "bytes"),
    "float": "float",
    "double": "double",
}


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: str  # a scalar name, "enum", or the message's full name
    repeated: bool
    oneof: str | None


@dataclass
class Message:
    fields: dict[int, Field] = field(default_factory=dict)
    oneofs: set[str] = field(default_factory=set)


class ProtobufSchema:
    def __init__(self, text: str, references: Mapping[str, str] | None = None) -> None:
        self.text = text
        self._enums: set[str] = set()
        self._message_names: set[str] = set()
        self.messages: dict[str, Message] = {}
        descriptor = descriptors.from_base64(text)
        if descriptor is not None:
            self.package = descriptor.package
            self.descriptor = descriptor
            descriptors.read_into(self, descriptor)
        else:
            parsed = self._parse(text)
            self.package = next(
                (e.name for e in parsed.file_elements if isinstance(e, ast.Package)), ""
            )
            self._collect_names(parsed.file_elements, self.package)
            self._collect_messages(parsed.file_elements, self.package)
            self.descriptor = descriptors.from_ast(self, parsed)
        if not self.messages:
            raise InvalidSchemaError("invalid Protobuf schema: it defines no message")

    def serialized(self) -> str:
        return descriptors.to_base64(self.descriptor)

    def _parse(self, text: str) -> ast.File:
        errors = _Errors()

        def quiet(recognizer: object) -> None:
            recognizer.removeErrorListeners()  # type: ignore[attr-defined]
            recognizer.addErrorListener(errors)  # type: ignore[attr-defined]

        try:
            parsed = Parser(setup_lexer=quiet, setup_parser=quiet).parse(text)
        except Exception as exc:  # the AST builder fails on what the grammar let through
            raise InvalidSchemaError(f"invalid Protobuf schema: {exc}") from None
        if errors.messages:
            raise InvalidSchemaError(f"invalid Protobuf schema: {errors.messages[0]}")
        return parsed

    def canonical(self) -> str:
        # the descriptor, serialized deterministically: text and serialized forms of one
        # schema share it, as do texts that differ only in layout and comments
        return self.descriptor.SerializeToString(deterministic=True).hex()

    def _collect_names(self, elements: list, scope: str) -> None:
        for element in elements:
            if isinstance(element, ast.Message):
                name = _join(scope, element.name)
                self._message_names.add(name)
                self._collect_names(element.elements, name)
            elif isinstance(element, ast.Enum):
                self._enums.add(_join(scope, element.name))

    def _collect_messages(self, elements: list, scope: str) -> None:
        for element in elements:
            if not isinstance(element, ast.Message):
                continue
            name = _join(scope, element.name)
            message = Message()
            for item in element.elements:
                if isinstance(item, ast.Field):
                    self._add_field(message, item, name, None)
                elif isinstance(item, ast.OneOf):
                    message.oneofs.add(item.name)
                    for member in item.elements:
                        if isinstance(member, ast.Field):
                            self._add_field(message, member, name, item.name)
                elif isinstance(item, ast.MapField):
                    key = f"map<{item.key_type},{self._type(item.value_type, name)}>"
                    message.fields[item.number] = Field(item.name, key, True, None)
            self.messages[name] = message
            self._collect_messages(element.elements, name)

    def _add_field(self, message: Message, item: ast.Field, scope: str, oneof: str | None):
        repeated = item.cardinality is ast.FieldCardinality.REPEATED
        message.fields[item.number] = Field(
            item.name, self._type(item.type, scope), repeated, oneof
        )

    def type_of(self, name: str, scope: str) -> str:
        return self._type(name, scope)

    def _type(self, name: str, scope: str) -> str:
        """A field's type: a scalar, "enum", or a message's full name (resolved as protoc
        does: from the innermost scope outwards)."""
        if name in _GROUPS:
            return name
        if name.startswith("."):
            full = name[1:]
            return "enum" if full in self._enums else full
        parts = scope.split(".") if scope else []
        for i in range(len(parts), -1, -1):
            candidate = _join(".".join(parts[:i]), name)
            if candidate in self._enums:
                return "enum"
            if candidate in self._message_names:
                return candidate
        return name  # from an import: compared by its name


class _Errors(ErrorListener):
    """Collects syntax errors (ANTLR's default prints them and parses on)."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def syntaxError(self, recognizer, offending, line, column, msg, e) -> None:
        self.messages.append(f"line {line}:{column}: {msg}"[:300])


def can_read(reader: ProtobufSchema, writer: ProtobufSchema) -> list[str]:
    problems: list[str] = []
    if reader.package != writer.package:
        problems.append(f"package changed from {writer.package!r} to {reader.package!r}")
    for name, old in writer.messages.items():
        new = reader.messages.get(name)
        if new is None:
            problems.append(f"message {name} removed")
            continue
        moved_into_new_oneofs: dict[str, int] = {}
        for number, before in old.fields.items():
            after = new.fields.get(number)
            if after is None:
                continue
            where = f"{name}.{after.name} (field {number})"
            if not _same_group(before.type, after.type):
                problems.append(f"{where}: type {before.type} cannot be read as {after.type}")
            if before.repeated != after.repeated and not _packable(before.type):
                problems.append(f"{where}: repeated changed")
            if before.oneof != after.oneof:
                if after.oneof is not None and after.oneof not in old.oneofs:
                    moved_into_new_oneofs[after.oneof] = (
                        moved_into_new_oneofs.get(after.oneof, 0) + 1
                    )
                else:
                    problems.append(f"{where}: moved into or out of a oneof")
        for oneof, count in moved_into_new_oneofs.items():
            if count > 1:
                problems.append(f"{name}: {count} existing fields moved into the new oneof {oneof}")
    return problems


def _same_group(before: str, after: str) -> bool:
    if before in _GROUPS or after in _GROUPS:
        return _GROUPS.get(before) == _GROUPS.get(after)
    return before == after


def _packable(kind: str) -> bool:
    return _GROUPS.get(kind) not in (None, "bytes")


def _join(scope: str, name: str) -> str:
    return f"{scope}.{name}" if scope else name
