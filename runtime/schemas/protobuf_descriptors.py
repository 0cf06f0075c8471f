"""Protobuf schemas as FileDescriptorProto: read from the serialized form, built from .proto text.

confluent-kafka's Python serializers register a schema as a base64 serialized
FileDescriptorProto and ask for it back in that form (`?format=serialized`),
while other clients register .proto text. Both become one descriptor here:
the registry compares, and answers, either way. Building a descriptor from
text covers what messages are made of (packages, nested messages and enums,
scalar, message, enum and map fields, repeated and optional labels, oneofs);
options and services are left out, as they do not change the data.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

from google.protobuf import descriptor_pb2
from google.protobuf.message import DecodeError
from proto_schema_parser import ast

if TYPE_CHECKING:
    from runtime.schemas.protobuf import ProtobufSchema

FDP = descriptor_pb2.FieldDescriptorProto
SCALARS = {
    "double": FDP.TYPE_DOUBLE, "float": FDP.TYPE_FLOAT, "int64": FDP.TYPE_INT64,
    "uint64": FDP.TYPE_UINT64, "int32": FDP.TYPE_INT32, "fixed64": FDP.TYPE_FIXED64,
    "fixed32": FDP.TYPE_FIXED32, "bool": FDP.TYPE_BOOL, "string": FDP.TYPE_STRING,
    "bytes": FDP.TYPE_BYTES, "uint32": FDP.TYPE_UINT32, "sfixed32": FDP.TYPE_SFIXED32,
    "sfixed64": FDP.TYPE_SFIXED64, "sint32": FDP.TYPE_SINT32, "sint64": FDP.TYPE_SINT64,
}  # fmt: skip
NAMES = {number: name for name, number in SCALARS.items()}


def from_base64(text: str) -> descriptor_pb2.FileDescriptorProto | None:
    """The descriptor a base64 serialized form holds; None if `text` is not one."""
    try:
        data = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    descriptor = descriptor_pb2.FileDescriptorProto()
    try:
        descriptor.ParseFromString(data)
    except DecodeError:
        return None
    if not (descriptor.message_type or descriptor.enum_type):
        return None
    return descriptor


def to_base64(descriptor: descriptor_pb2.FileDescriptorProto) -> str:
    return base64.standard_b64encode(descriptor.SerializeToString()).decode("ascii")


def read_into(schema: ProtobufSchema, descriptor: descriptor_pb2.FileDescriptorProto) -> None:
    """Fill `schema`'s messages from a descriptor."""
    from runtime.schemas.protobuf import Field, Message

    def names(messages, enums, scope: str) -> None:
        for enum in enums:
            schema._enums.add(_join(scope, enum.name))
        for message in messages:
            full = _join(scope, message.name)
            schema._message_names.add(full)
            names(message.nested_type, message.enum_type, full)

    def walk(messages, scope: str) -> None:
        for message in messages:
            full = _join(scope, message.name)
            if message.options.map_entry:
                continue
            entries = {n.name: n for n in message.nested_type if n.options.map_entry}
            out = Message()
            for field in message.field:
                oneof = None
                if field.HasField("oneof_index") and not field.proto3_optional:
                    oneof = message.oneof_decl[field.oneof_index].name
                    out.oneofs.add(oneof)
                kind = _kind(field, entries)
                repeated = field.label == FDP.LABEL_REPEATED
                out.fields[field.number] = Field(field.name, kind, repeated, oneof)
            schema.messages[full] = out
            walk(message.nested_type, full)

    names(descriptor.message_type, descriptor.enum_type, descriptor.package)
    walk(descriptor.message_type, descriptor.package)


def _kind(field: descriptor_pb2.FieldDescriptorProto, entries: dict) -> str:
    if field.type == FDP.TYPE_ENUM:
        return "enum"
    if field.type in (FDP.TYPE_MESSAGE, FDP.TYPE_GROUP):
        short = field.type_name.rsplit(".", 1)[-1]
        entry = entries.get(short)
        if entry is not None:
            key, value = entry.field[0], entry.field[1]
            return f"map<{NAMES.get(key.type, key.type_name)},{_kind(value, {})}>"
        return field.type_name.lstrip(".")
    return NAMES[field.type]


def from_ast(schema: ProtobufSchema, parsed: ast.File) -> descriptor_pb2.FileDescriptorProto:
    """The descriptor of parsed .proto text (what protoc would make of its messages)."""
    descriptor = descriptor_pb2.FileDescriptorProto(name="schema.proto", package=schema.package)
    syntax = parsed.syntax or "proto2"
    descriptor.syntax = syntax
    for element in parsed.file_elements:
        if isinstance(element, ast.Import):
            descriptor.dependency.append(element.name)
        elif isinstance(element, ast.Message):
            _message(schema, element, descriptor.message_type.add(), schema.package)
        elif isinstance(element, ast.Enum):
            _enum(element, descriptor.enum_type.add())
    return descriptor


def _message(schema: ProtobufSchema, element: ast.Message, out, scope: str) -> None:
    out.name = element.name
    full = _join(scope, element.name)
    for item in element.elements:
        if isinstance(item, ast.Field):
            _field(schema, item, out.field.add(), full)
        elif isinstance(item, ast.OneOf):
            index = len(out.oneof_decl)
            out.oneof_decl.add(name=item.name)
            for member in item.elements:
                if isinstance(member, ast.Field):
                    field = out.field.add()
                    _field(schema, member, field, full)
                    field.oneof_index = index
        elif isinstance(item, ast.MapField):
            entry = out.nested_type.add(name=_entry_name(item.name))
            entry.options.map_entry = True
            _typed(schema, entry.field.add(name="key", number=1), item.key_type, full)
            _typed(schema, entry.field.add(name="value", number=2), item.value_type, full)
            for f in entry.field:
                f.label = FDP.LABEL_OPTIONAL
            field = out.field.add(name=item.name, number=item.number, label=FDP.LABEL_REPEATED)
            field.type, field.type_name = FDP.TYPE_MESSAGE, f".{full}.{entry.name}"
        elif isinstance(item, ast.Message):
            _message(schema, item, out.nested_type.add(), full)
        elif isinstance(item, ast.Enum):
            _enum(item, out.enum_type.add())
        elif isinstance(item, ast.Reserved):
            for name in item.names:
                out.reserved_name.append(name)


def _field(schema: ProtobufSchema, item: ast.Field, out, scope: str) -> None:
    out.name, out.number = item.name, item.number
    cardinality = item.cardinality
    if cardinality is ast.FieldCardinality.REPEATED:
        out.label = FDP.LABEL_REPEATED
    elif cardinality is ast.FieldCardinality.REQUIRED:
        out.label = FDP.LABEL_REQUIRED
    else:
        out.label = FDP.LABEL_OPTIONAL
    _typed(schema, out, item.type, scope)


def _typed(schema: ProtobufSchema, out, type_name: str, scope: str) -> None:
    if type_name in SCALARS:
        out.type = SCALARS[type_name]
        return
    kind = schema.type_of(type_name, scope)
    out.type = FDP.TYPE_ENUM if kind == "enum" else FDP.TYPE_MESSAGE
    if kind == "enum":
        out.type_name = "." + _enum_full_name(schema, type_name, scope)
    else:
        out.type_name = "." + kind


def _enum_full_name(schema: ProtobufSchema, name: str, scope: str) -> str:
    if name.startswith("."):
        return name[1:]
    parts = scope.split(".") if scope else []
    for i in range(len(parts), -1, -1):
        candidate = _join(".".join(parts[:i]), name)
        if candidate in schema._enums:
            return candidate
    return name


def _enum(element: ast.Enum, out) -> None:
    out.name = element.name
    for value in element.elements:
        if isinstance(value, ast.EnumValue):
            out.value.add(name=value.name, number=value.number)


def _entry_name(field: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in field.split("_")) + "Entry"


def _join(scope: str, name: str) -> str:
    return f"{scope}.{name}" if scope else name
