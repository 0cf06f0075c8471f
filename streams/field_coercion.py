"""Checking and coercing one field of a Record from decoded JSON.

`plan(type, ...)` reads a field's annotation once, when its class is compiled
(model.py), and returns what the compiled `from_dict` runs per record: the exact
class accepted as is (a class check is cheaper than a call) and a converter for
anything else. Converters coerce what JSON cannot hold (nested Records from
dicts, datetimes and dates from ISO strings, enums from their values, ints for
float fields, tuples and sets from lists) and raise ModelError naming the model
and field for a value of the wrong type.

This module sits below model.py, which imports it: a Record class is told by the
`__record_fields__` every Record class has, not by importing Record.
"""

from __future__ import annotations

import enum
import reprlib
import types
import typing
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from streams.errors import ModelError

Converter = Callable[[Any], Any]


def plan(
    type_: Any, where: str, model: str, field: str
) -> tuple[bool, type | None, Converter | None]:
    """(optional, exact class accepted as is, converter for anything else).

    A converter of None accepts every value unchanged.
    """
    origin = typing.get_origin(type_)
    if origin is typing.Union or origin is types.UnionType:
        args = [arg for arg in typing.get_args(type_) if arg is not type(None)]
        optional = len(args) < len(typing.get_args(type_))
        if len(args) == 1:
            _, exact, convert = plan(args[0], where, model, field)
            return optional, exact, convert
        return optional, None, None
    exact, convert = _converter(type_, where, model, field)
    return False, exact, convert


def is_record_class(type_: type) -> bool:
    """Whether a class is a Record (every Record class has __record_fields__)."""
    return isinstance(getattr(type_, "__record_fields__", None), dict)


def _converter(
    type_: Any, where: str, model: str, field: str
) -> tuple[type | None, Converter | None]:
    def fail(value: Any) -> typing.NoReturn:
        shown = reprlib.repr(value)
        raise ModelError(
            f"{where}: expected {type_name(type_)}, got {type(value).__name__} {shown}",
            model=model,
            field=field,
        )

    if type_ is Any or type_ is object:
        return None, None
    origin = typing.get_origin(type_)
    if origin is not None:
        return _container(type_, origin, where, model, field, fail)
    if not isinstance(type_, type):
        return None, None  # TypeVar, NewType and friends: accept as is
    if type_ is str:
        return str, lambda value: value if isinstance(value, str) else fail(value)
    if type_ is bool:
        return bool, fail
    if type_ is int:
        return int, lambda value: _to_int(value, fail)
    if type_ is float:
        return float, lambda value: _to_float(value, fail)
    if type_ is bytes:
        return bytes, lambda value: bytes(value) if isinstance(value, bytearray) else fail(value)
    if is_record_class(type_):
        return type_, lambda value: _to_record(type_, value, fail)
    if issubclass(type_, datetime):
        return type_, lambda value: _from_iso(type_, datetime, value, fail)
    if issubclass(type_, date):
        return type_, lambda value: _from_iso(type_, date, value, fail)
    if issubclass(type_, enum.Enum):
        return type_, lambda value: _to_enum(type_, value, fail)
    return None, None  # a class we do not know how to coerce: accept as is


def _container(
    type_: Any, origin: Any, where: str, model: str, field: str, fail: Callable[[Any], Any]
) -> tuple[type | None, Converter | None]:
    args = typing.get_args(type_)
    if origin in (list, set, frozenset) or (origin is tuple and len(args) == 2 and args[1] is ...):
        optional, exact, convert = (
            plan(args[0], f"{where}[]", model, field) if args else (False, None, None)
        )
        make = origin
        item = _item_converter(optional, exact, convert)

        def sequence(value: Any) -> Any:
            if not isinstance(value, list | tuple | set | frozenset):
                fail(value)
            if item is None:
                return value if value.__class__ is make else make(value)
            return make(item(element) for element in value)

        return (origin if item is None else None), sequence
    if origin is dict:
        optional, exact, convert = (
            plan(args[1], f"{where}{{}}", model, field) if args else (False, None, None)
        )
        item = _item_converter(optional, exact, convert)

        def mapping(value: Any) -> Any:
            if not isinstance(value, Mapping):
                fail(value)
            if item is None:
                return value if value.__class__ is dict else dict(value)
            return {key: item(element) for key, element in value.items()}

        return (dict if item is None else None), mapping
    if origin is tuple:
        return tuple, lambda value: tuple(value) if isinstance(value, list) else fail(value)
    return None, None  # Literal, Callable, ...: accept as is


def _item_converter(
    optional: bool, exact: type | None, convert: Converter | None
) -> Converter | None:
    if convert is None:
        return None

    def item(value: Any) -> Any:
        if (optional and value is None) or (exact is not None and value.__class__ is exact):
            return value
        return convert(value)

    return item


def _to_int(value: Any, fail: Callable[[Any], Any]) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return fail(value)


def _to_float(value: Any, fail: Callable[[Any], Any]) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return fail(value)


def _to_record(model: Any, value: Any, fail: Callable[[Any], Any]) -> Any:
    if isinstance(value, model):
        return value
    if isinstance(value, Mapping):
        return model.from_dict(value)
    return fail(value)


def _from_iso(type_: type, kind: type, value: Any, fail: Callable[[Any], Any]) -> Any:
    if isinstance(value, str):
        try:
            return type_.fromisoformat(value)  # type: ignore[attr-defined]
        except ValueError:
            return fail(value)
    if isinstance(value, kind) and (kind is datetime or not isinstance(value, datetime)):
        return value
    return fail(value)


def _to_enum(type_: type[enum.Enum], value: Any, fail: Callable[[Any], Any]) -> Any:
    if isinstance(value, type_):
        return value
    try:
        return type_(value)
    except ValueError:
        return fail(value)


def type_name(type_: Any) -> str:
    if isinstance(type_, type) and not typing.get_args(type_):
        return type_.__name__
    return repr(type_).replace("typing.", "")
