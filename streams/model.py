"""Record: typed models for keys and values, built from annotations.

    class Ride(streams.Record):
        zone: str
        rider: str
        fare: float = 0.0

    Ride("a", "b")                      # positional in declaration order, or keywords
    Ride.from_dict({"zone": "a", "rider": "b"})
    Ride.zone                           # a FieldDescriptor: stream.group_by(Ride.zone)

`__init__` trusts its arguments, like a dataclass. `from_dict` (and `loads`) checks
and coerces what decoded JSON holds: nested Records from dicts, datetimes from ISO
strings, ints for float fields; it ignores unknown keys and raises ModelError for a
missing required field or a value of the wrong type (field_coercion.py checks and
coerces each field).

Each subclass gets an `__init__`, a `from_dict` and a `to_dict` compiled for its
fields when the class is created (or, when an annotation names a class defined
later, on first use): decoding is on the per-record hot path.
"""

from __future__ import annotations

import copy
import enum
import inspect
import operator
import reprlib
import sys
import typing
import weakref
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime
from typing import Any, ClassVar, Self

import orjson

from streams.errors import ModelError
from streams.field_coercion import plan, type_name

__all__ = ["FieldDescriptor", "Record", "fields"]

_RESERVED = frozenset({"to_dict", "from_dict", "dumps", "loads"})


class _Sentinel:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


_REQUIRED: Any = _Sentinel("<required>")
_COPIED: Any = _Sentinel("<copy of default>")

_MUTABLE_DEFAULTS = (list, dict, set, bytearray)


class FieldDescriptor:
    """A field of a Record class: `Ride.zone`. Instances read their own value.

    Non-data descriptor (only `__get__`): an instance's `__dict__` holds the value
    and wins the lookup, so reading `ride.zone` costs a plain attribute read.
    """

    __slots__ = ("__weakref__", "default", "getter", "model", "name", "required", "type")

    def __init__(
        self, name: str, model: type[Record], type_: Any, default: Any, required: bool
    ) -> None:
        self.name = name
        self.model = model
        self.type = type_
        self.default = default
        self.required = required
        self.getter: Callable[[Any], Any] = operator.attrgetter(name)

    @typing.overload
    def __get__(self, obj: None, objtype: type | None = None) -> FieldDescriptor: ...
    @typing.overload
    def __get__(self, obj: object, objtype: type | None = None) -> Any: ...
    def __get__(self, obj: object | None, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        raise AttributeError(f"{type(obj).__name__!r} object has no attribute {self.name!r}")

    def __repr__(self) -> str:
        return f"<FieldDescriptor {self.model.__name__}.{self.name}: {type_name(self.type)}>"


def fields(model: type[Record] | Record) -> tuple[FieldDescriptor, ...]:
    """The fields of a Record class or instance, in declaration order."""
    cls = model if isinstance(model, type) else type(model)
    return tuple(cls.__record_fields__.values())


class Record:
    """Base class of typed models; subclass it with annotated fields."""

    __record_fields__: ClassVar[dict[str, FieldDescriptor]] = {}
    __record_resolved__: ClassVar[bool] = True
    __match_args__: ClassVar[tuple[str, ...]] = ()
    __hash__: ClassVar[None] = None  # type: ignore[assignment]  # mutable, like a dataclass

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _prepare(cls)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict; nested Records become dicts."""
        return {}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Build an instance from decoded data, checking and coercing each field."""
        return cls()

    def dumps(self) -> bytes:
        """This record as JSON."""
        return orjson.dumps(self.to_dict(), default=_json_default)

    @classmethod
    def loads(cls, data: bytes | bytearray | memoryview | str) -> Self:
        """An instance from JSON (a JSON object with at least the required fields)."""
        return cls.from_dict(orjson.loads(data))

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__record_fields__)

    @reprlib.recursive_repr()
    def __repr__(self) -> str:
        values = ", ".join(
            f"{name}={getattr(self, name, _REQUIRED)!r}" for name in self.__record_fields__
        )
        return f"{type(self).__qualname__}({values})"


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Record):
        return obj.to_dict()
    if isinstance(obj, set | frozenset):
        return list(obj)
    raise TypeError(f"cannot serialize {type(obj).__name__} to JSON")


# --- building a class --------------------------------------------------------------

# Record classes by name: lets annotations name a model defined in a function body.
_registry: weakref.WeakValueDictionary[str, type[Record]] = weakref.WeakValueDictionary()


def _prepare(cls: type[Record]) -> None:
    inherited: dict[str, FieldDescriptor] = {}
    for base in reversed(cls.__mro__[1:]):
        inherited.update(base.__dict__.get("__record_fields__", {}))
    own = _own_annotations(cls)
    names = list(inherited) + [name for name in own if name not in inherited]
    found: dict[str, FieldDescriptor] = {}
    for name in names:
        if (name.startswith("__") and name.endswith("__")) or name in _RESERVED:
            raise TypeError(f"{cls.__name__}: {name!r} cannot be a field name")
        parent = inherited.get(name)
        type_ = own.get(name, parent.type if parent is not None else None)
        value = cls.__dict__.get(name, _REQUIRED)
        if isinstance(value, FieldDescriptor):
            value = _REQUIRED
        if value is _REQUIRED and parent is not None:
            value = parent.default  # a subclass keeps the default unless it sets a new one
        found[name] = FieldDescriptor(name, cls, type_, value, value is _REQUIRED)
    for name, field in found.items():
        setattr(cls, name, field)
    cls.__record_fields__ = found
    cls.__match_args__ = tuple(found)
    if "__init__" not in cls.__dict__:
        cls.__init__ = _compile_init(cls, found)  # type: ignore[misc]
    _registry[cls.__name__] = cls
    cls.__record_resolved__ = False
    try:
        _resolve(cls)
    except NameError:  # an annotation names a class not defined yet: resolve on first use
        cls.from_dict = classmethod(_lazy_from_dict)  # type: ignore[assignment]
        cls.to_dict = _lazy_to_dict  # type: ignore[method-assign]


def _own_annotations(cls: type) -> dict[str, Any]:
    """Annotations declared in `cls` itself, without ClassVars, in order."""
    own = inspect.get_annotations(cls)
    out = {}
    for name, annotation in own.items():
        if isinstance(annotation, str):
            head = annotation.split("[", 1)[0].strip()
            if head in ("ClassVar", "typing.ClassVar", "t.ClassVar"):
                continue
        elif annotation is ClassVar or typing.get_origin(annotation) is ClassVar:
            continue
        out[name] = annotation
    return out


class _Names(Mapping[str, Any]):
    """Where an annotation's names resolve: the model's module, then the model
    itself, then every Record class by name."""

    def __init__(self, module: dict[str, Any], cls: type) -> None:
        self._module = module
        self._cls = cls

    def __getitem__(self, name: str) -> Any:
        if name in self._module:
            return self._module[name]
        if name == self._cls.__name__:
            return self._cls
        return _registry[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._module)

    def __len__(self) -> int:
        return len(self._module)


def _resolve(cls: type[Record]) -> None:
    """Evaluate the class's own annotations, then compile from_dict and to_dict."""
    resolved: dict[str, Any] = {}
    for base in reversed(cls.__mro__[1:]):
        inherited = base.__dict__.get("__record_fields__")
        if inherited is None:
            continue
        if not base.__record_resolved__:
            _resolve(base)
        resolved.update((name, field.type) for name, field in inherited.items())
    own = _own_annotations(cls)
    if own:
        module = getattr(sys.modules.get(cls.__module__), "__dict__", {})
        holder = type("_Annotations", (), {"__annotations__": own, "__module__": cls.__module__})
        resolved.update(typing.get_type_hints(holder, localns=_Names(module, cls)))  # type: ignore[arg-type]
    found = cls.__record_fields__
    for name, field in found.items():
        field.type = resolved[name]
    cls.from_dict = classmethod(_compile_from_dict(cls, found))  # type: ignore[assignment]
    cls.to_dict = _compile_to_dict(found)  # type: ignore[method-assign]
    cls.__record_resolved__ = True


def _ensure_resolved(cls: type[Record]) -> None:
    if cls.__record_resolved__:
        return
    try:
        _resolve(cls)
    except NameError as exc:
        raise TypeError(f"model {cls.__name__}: {exc}") from exc


def _lazy_from_dict(cls: type[Record], data: Mapping[str, Any]) -> Any:
    _ensure_resolved(cls)
    return cls.from_dict(data)


def _lazy_to_dict(self: Record) -> dict[str, Any]:
    _ensure_resolved(type(self))
    return self.to_dict()


def _compile(source: str, namespace: dict[str, Any], name: str, cls: type) -> Any:
    exec(source, namespace)
    function = namespace[name]
    function.__qualname__ = f"{cls.__qualname__}.{name}"
    function.__module__ = cls.__module__
    return function


def _compile_init(cls: type[Record], found: dict[str, FieldDescriptor]) -> Any:
    namespace: dict[str, Any] = {
        "__required__": _REQUIRED,
        "__copied__": _COPIED,
        "__copy__": copy.copy,
        "__missing__": _missing_argument,
    }
    params = ["__self__"]
    body = []
    for i, (name, field) in enumerate(found.items()):
        if field.required:
            params.append(f"{name}=__required__")
            body.append(f" if {name} is __required__: __missing__(__self__, {name!r})")
        elif isinstance(field.default, _MUTABLE_DEFAULTS):
            namespace[f"__d{i}__"] = field.default
            params.append(f"{name}=__copied__")
            body.append(f" if {name} is __copied__: {name} = __copy__(__d{i}__)")
        else:
            namespace[f"__d{i}__"] = field.default
            params.append(f"{name}=__d{i}__")
        body.append(f" __self__.{name} = {name}")
    source = f"def __init__({', '.join(params)}):\n" + "\n".join(body or [" pass"])
    return _compile(source, namespace, "__init__", cls)


def _missing_argument(obj: Record, name: str) -> None:
    raise TypeError(f"{type(obj).__name__}() missing required field {name!r}")


def _compile_from_dict(cls: type[Record], found: dict[str, FieldDescriptor]) -> Any:
    namespace: dict[str, Any] = {
        "_M": _REQUIRED,
        "_new": object.__new__,
        "_copy": copy.copy,
        "_Mapping": Mapping,
        "_not_mapping": _not_mapping,
        "_missing": _missing_key,
    }
    lines = [
        "def from_dict(cls, data):",
        " if data.__class__ is not dict and not isinstance(data, _Mapping):",
        "  _not_mapping(cls, data)",
    ]
    required = [(i, name) for i, (name, field) in enumerate(found.items()) if field.required]
    if required:  # one try block: subscripts are the fastest reads of a dict
        lines.append(" try:")
        lines.extend(f"  v{i} = data[{name!r}]" for i, name in required)
        lines.append(" except KeyError:")
        lines.append(f"  _missing(cls, data, {tuple(name for _, name in required)!r})")
    if len(required) < len(found):
        lines.append(" get = data.get")
    for i, (name, field) in enumerate(found.items()):
        v = f"v{i}"
        if not field.required:
            namespace[f"_d{i}"] = field.default
            copied = isinstance(field.default, _MUTABLE_DEFAULTS)
            lines.append(f" {v} = get({name!r}, _M)")
            lines.append(f" if {v} is _M:")
            lines.append(f"  {v} = _copy(_d{i})" if copied else f"  {v} = _d{i}")
        optional, exact, convert = plan(field.type, f"{cls.__name__}.{name}", cls.__name__, name)
        if convert is None:
            continue
        namespace[f"_c{i}"] = convert
        conditions = [f"{v} is not None"] if optional else []
        if exact is not None:
            namespace[f"_x{i}"] = exact
            conditions.append(f"{v}.__class__ is not _x{i}")
        if conditions:
            keyword = "if" if field.required else "elif"
            lines.append(f" {keyword} {' and '.join(conditions)}:")
        elif not field.required:
            lines.append(" else:")
        lines.append(
            f"  {v} = _c{i}({v})" if conditions or not field.required else f" {v} = _c{i}({v})"
        )
    lines.append(" self = _new(cls)")
    items = ", ".join(f"{name!r}: v{i}" for i, name in enumerate(found))
    lines.append(f" self.__dict__ = {{{items}}}")
    lines.append(" return self")
    return _compile("\n".join(lines), namespace, "from_dict", cls)


def _not_mapping(cls: type, data: Any) -> None:
    raise ModelError(
        f"{cls.__name__}: expected a mapping of fields, got {type(data).__name__}",
        model=cls.__name__,
    )


def _missing_key(cls: type, data: Mapping[str, Any], required: tuple[str, ...]) -> None:
    name = next((name for name in required if name not in data), None)
    if name is None:  # a Mapping whose __getitem__ raised KeyError for a key it holds
        raise ModelError(f"{cls.__name__}: cannot read the fields of {data!r}", model=cls.__name__)
    raise ModelError(
        f"{cls.__name__}: missing required field {name!r}", model=cls.__name__, field=name
    )


def _compile_to_dict(found: dict[str, FieldDescriptor]) -> Any:
    namespace: dict[str, Any] = {"_plain": _plain}
    items = []
    for name, field in found.items():
        if _may_hold_record(field.type):
            items.append(f"{name!r}: _plain(self.{name})")
        else:
            items.append(f"{name!r}: self.{name}")
    source = f"def to_dict(self):\n return {{{', '.join(items)}}}"
    exec(source, namespace)
    to_dict = namespace["to_dict"]
    # The dict is the instance's own fields, as they are: the JSON codec may
    # encode the instance's __dict__ instead (streams.codec).
    to_dict.__record_flat__ = not any(_may_hold_record(f.type) for f in found.values())
    return to_dict


def _plain(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


_SCALARS = (str, int, float, bool, bytes, datetime, date, type(None))


def _may_hold_record(type_: Any) -> bool:
    if isinstance(type_, type):
        return issubclass(type_, Record) or not issubclass(type_, (*_SCALARS, enum.Enum))
    args = typing.get_args(type_)
    if typing.get_origin(type_) is typing.Literal:
        return False
    return not args or any(_may_hold_record(arg) for arg in args if arg is not Ellipsis)
