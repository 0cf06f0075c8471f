"""A Record's schema, derived from its annotations: Avro and JSON Schema.

    class Ride(streams.Record):
        id: str
        passengers: int = 1
        fare: float | None = None
        at: datetime

    avro_schema(Ride)   {"type": "record", "name": "Ride", "namespace": "<module>", "fields": [...]}
    json_schema(Ride)   {"type": "object", "properties": {...}, "required": ["id", "at"], ...}

Types: str, int (Avro long), float (double), bool, bytes, datetime (Avro
timestamp-millis; JSON date-time string), date, Enum subclasses (their values,
which for Avro must be names),
nested Records, `X | None` (a union with null, default null when the field has
no other), list[X], set[X], dict[str, X]. A field with a default gets it in the
Avro schema (so adding it later keeps BACKWARD compatibility); the JSON
Schema lists fields without defaults as required and closes the object
(additionalProperties false), so that adding optional fields stays compatible.
Anything else is a TypeError naming the field.

An Avro record is named after its class, in its module's namespace; set
`__avro_name__ = "rides.Ride"` on the class to name it otherwise (to match
the schema other producers registered, since Avro resolves records by name).
"""

from __future__ import annotations

import contextlib
import enum
import re
import types
import typing
from datetime import date, datetime
from typing import Any

from streams.model import Record, fields

_AVRO_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_AVRO_PRIMITIVES: dict[Any, Any] = {
    str: "string",
    int: "long",
    float: "double",
    bool: "boolean",
    bytes: "bytes",
    datetime: {"type": "long", "logicalType": "timestamp-millis"},
    date: {"type": "int", "logicalType": "date"},
}
_JSON_PRIMITIVES: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    bytes: {"type": "string", "contentEncoding": "base64"},
    datetime: {"type": "string", "format": "date-time"},
    date: {"type": "string", "format": "date"},
}


def avro_schema(model: type[Record]) -> dict[str, Any]:
    return _Avro().record(model)


def json_schema(model: type[Record]) -> dict[str, Any]:
    schema = _json_record(model)
    return {"$schema": "http://json-schema.org/draft-07/schema#", "title": model.__name__, **schema}


def _hints(model: type[Record]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(model)
    except (NameError, TypeError):
        return {f.name: f.type for f in fields(model)}


def _optional(typ: Any) -> tuple[Any, bool]:
    """(the type without None, whether None was allowed)."""
    if typing.get_origin(typ) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if len(args) == 1 and len(args) < len(typing.get_args(typ)):
            return args[0], True
    return typ, False


def _default_json(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value if isinstance(value.value, str) else value.name
    if isinstance(value, list | tuple | set | frozenset):
        return [_default_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _default_json(v) for k, v in value.items()}
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    raise TypeError(f"a default of {type(value).__name__} has no Avro form")


class _Avro:
    def __init__(self) -> None:
        self._named: set[str] = set()

    def record(self, model: type[Record]) -> Any:
        name = getattr(model, "__avro_name__", None) or _full_name(model)
        if name in self._named:
            return name
        self._named.add(name)
        hints = _hints(model)
        out = []
        for field in fields(model):
            inner, nullable = _optional(hints.get(field.name, field.type))
            kind = self.type(inner, f"{model.__name__}.{field.name}")
            entry: dict[str, Any] = {
                "name": field.name,
                "type": ["null", kind] if nullable else kind,
            }
            if not field.required:
                default = field.default
                if nullable and default is not None:
                    entry["type"] = [kind, "null"]  # a union's default is of its first branch
                # a default Avro cannot state leaves the field required for readers
                with contextlib.suppress(TypeError):
                    entry["default"] = _default_json(default)
            elif nullable:
                entry["default"] = None
            out.append(entry)
        namespace, _, short = name.rpartition(".")
        return {"type": "record", "name": short, "namespace": namespace, "fields": out}

    def type(self, typ: Any, where: str) -> Any:
        if typ in _AVRO_PRIMITIVES:
            return _AVRO_PRIMITIVES[typ]
        if isinstance(typ, type) and issubclass(typ, Record):
            return self.record(typ)
        if isinstance(typ, type) and issubclass(typ, enum.Enum):
            name = _full_name(typ)
            if name in self._named:
                return name
            self._named.add(name)
            namespace, _, short = name.rpartition(".")
            symbols = [m.value for m in typ]
            if not all(isinstance(s, str) and _AVRO_NAME.fullmatch(s) for s in symbols):
                raise TypeError(
                    f"{where}: Avro enum symbols are {typ.__name__}'s values, which "
                    "must be names ([A-Za-z_][A-Za-z0-9_]*)"
                )
            return {"type": "enum", "name": short, "namespace": namespace, "symbols": symbols}
        origin, args = typing.get_origin(typ), typing.get_args(typ)
        if origin in (list, set, frozenset, tuple) and args:
            return {"type": "array", "items": self.type(args[0], f"{where}[]")}
        if origin is dict and len(args) == 2 and args[0] is str:
            return {"type": "map", "values": self.type(args[1], f"{where}{{}}")}
        raise TypeError(f"{where}: {typ!r} has no Avro form")


def _full_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}".replace("<locals>.", "")


def _json_record(model: type[Record]) -> dict[str, Any]:
    hints = _hints(model)
    properties: dict[str, Any] = {}
    required = []
    for field in fields(model):
        inner, nullable = _optional(hints.get(field.name, field.type))
        schema = _json_type(inner, f"{model.__name__}.{field.name}")
        properties[field.name] = {"oneOf": [{"type": "null"}, schema]} if nullable else schema
        if field.required and not nullable:
            required.append(field.name)
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _json_type(typ: Any, where: str) -> dict[str, Any]:
    if typ in _JSON_PRIMITIVES:
        return dict(_JSON_PRIMITIVES[typ])
    if isinstance(typ, type) and issubclass(typ, Record):
        return _json_record(typ)
    if isinstance(typ, type) and issubclass(typ, enum.Enum):
        return {"enum": [m.value for m in typ]}
    origin, args = typing.get_origin(typ), typing.get_args(typ)
    if origin in (list, set, frozenset, tuple) and args:
        return {"type": "array", "items": _json_type(args[0], f"{where}[]")}
    if origin is dict and len(args) == 2 and args[0] is str:
        return {"type": "object", "additionalProperties": _json_type(args[1], f"{where}{{}}")}
    raise TypeError(f"{where}: {typ!r} has no JSON Schema form")
