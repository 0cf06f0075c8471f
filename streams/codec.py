"""Codecs: how keys and values become bytes in a topic, and back.

Built in: ``json`` (orjson; Records as their fields, datetimes as ISO 8601
strings), ``raw`` (bytes as they are) and ``str`` (UTF-8 text). Register your own
with `register_codec`. Codecs raise plain exceptions (TypeError on dumps, ValueError
on loads); the framework wraps decode failures in KeyDecodeError/ValueDecodeError
with the record's coordinates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import orjson

from streams.model import Record

__all__ = ["Codec", "JSONCodec", "RawCodec", "StrCodec", "get_codec", "register_codec"]


@runtime_checkable
class Codec(Protocol):
    def dumps(self, obj: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Record):
        return obj.to_dict()
    if isinstance(obj, set | frozenset):
        return list(obj)
    raise TypeError(f"the json codec cannot serialize {type(obj).__name__}")


def _refuse_bytes(obj: Any) -> bytes:
    raise TypeError("the json codec does not take bytes: use the 'raw' codec")


def _dumps_json(obj: Any) -> bytes:
    return _view(orjson.dumps(obj, default=_json_default)).tobytes()


_view = memoryview


# How to encode a value, by its class: None for orjson as it is, an int for a
# flat Record of that many fields (its fields go to orjson as a dict: its
# native path, several times cheaper than `default=`), else a function. One
# dict read per value instead of an isinstance chain.
_encoders: dict[type, Callable[[Any], bytes] | int | None] = {}
_UNKNOWN: Any = object()
_ENCODERS_MAX = 1024  # classes made at run time must not grow it without bound


def _encoder_for(cls: type) -> Callable[[Any], bytes] | int | None:
    encode: Callable[[Any], bytes] | int | None
    if issubclass(cls, bytes | bytearray | memoryview):
        encode = _refuse_bytes
    elif issubclass(cls, Record):
        if not cls.__record_resolved__:
            return _encode_record  # its to_dict is compiled on first use: ask again later
        encode = len(cls.__record_fields__) if _is_flat(cls) else _encode_record
    else:
        encode = None
    if len(_encoders) >= _ENCODERS_MAX:
        _encoders.clear()
    _encoders[cls] = encode
    return encode


def _is_flat(cls: type[Record]) -> bool:
    return getattr(cls.to_dict, "__record_flat__", False) is True


def _encode_record(obj: Record) -> bytes:
    return _dumps_json(obj.to_dict())


class JSONCodec:
    """JSON through orjson. Bytes are refused: send them with the ``raw`` codec.

    dumps returns a copy of orjson's bytes, of their exact size: orjson writes
    into a buffer of at least 1 KiB and shrinks it in place, and a producer
    keeps thousands of encoded values until their batch is encoded. Kept, the
    shrunk buffers leave the heap in pieces no next buffer fits, so every
    dumps touched fresh pages (~3 us a value instead of ~0.2); a small copy
    comes from Python's own allocator and the big buffer is reused at once."""

    __slots__ = ()

    def dumps(self, obj: Any) -> bytes:
        encode = _encoders.get(obj.__class__, _UNKNOWN)
        if encode is _UNKNOWN:
            encode = _encoder_for(obj.__class__)
        if encode is None:
            return _view(orjson.dumps(obj, default=_json_default)).tobytes()
        if encode.__class__ is int:
            fields = obj.__dict__
            # Exactly the fields (nothing set besides them, none deleted): what
            # to_dict returns, as orjson would encode it.
            if len(fields) != encode:
                fields = obj.to_dict()
            return _view(orjson.dumps(fields, default=_json_default)).tobytes()
        return encode(obj)  # type: ignore[operator]

    def loads(self, data: bytes) -> Any:
        return orjson.loads(data)

    def __repr__(self) -> str:
        return "<JSONCodec>"


class RawCodec:
    """Bytes as they are; str is encoded as UTF-8. loads returns bytes."""

    __slots__ = ()

    def dumps(self, obj: Any) -> bytes:
        if obj.__class__ is bytes:
            return obj  # type: ignore[no-any-return]
        if isinstance(obj, bytes | bytearray | memoryview):
            return bytes(obj)
        if isinstance(obj, str):
            return obj.encode()
        raise TypeError(f"the raw codec takes bytes or str, got {type(obj).__name__}")

    def loads(self, data: bytes) -> Any:
        return data if data.__class__ is bytes else bytes(data)

    def __repr__(self) -> str:
        return "<RawCodec>"


class StrCodec:
    """UTF-8 text both ways."""

    __slots__ = ()

    def dumps(self, obj: Any) -> bytes:
        if not isinstance(obj, str):
            raise TypeError(f"the str codec takes str, got {type(obj).__name__}")
        return obj.encode()

    def loads(self, data: bytes) -> Any:
        return bytes(data).decode()

    def __repr__(self) -> str:
        return "<StrCodec>"


_codecs: dict[str, Codec] = {"json": JSONCodec(), "raw": RawCodec(), "str": StrCodec()}


def register_codec(name: str, codec: Codec) -> None:
    """Make `codec` available by `name` (replacing any codec of that name)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a codec needs a non-empty name, got {name!r}")
    if not isinstance(codec, Codec):
        raise TypeError(f"codec {name!r} must have dumps() and loads(), got {codec!r}")
    _codecs[name] = codec


def get_codec(name_or_codec: str | Codec) -> Codec:
    """The codec registered under a name, or the codec given."""
    if isinstance(name_or_codec, str):
        try:
            return _codecs[name_or_codec]
        except KeyError:
            known = ", ".join(repr(name) for name in sorted(_codecs))
            raise ValueError(f"unknown codec {name_or_codec!r}: known codecs are {known}") from None
    if isinstance(name_or_codec, Codec):
        return name_or_codec
    raise TypeError(
        f"expected a codec name or an object with dumps() and loads(), got {name_or_codec!r}"
    )
