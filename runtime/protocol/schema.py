"""A tiny schema language for Kafka messages, compiled to encoders and decoders.

A message body is a `Struct` of `Field`s; a field's type is a primitive (INT8 ..
FLOAT64, STRING, BYTES, UUID, RECORDS), an `Array` of a type, or a nested `Struct`.
Fields carry the versions they exist in ("0+", "3-7", "5") and may be nullable
in some versions or tagged (flexible versions only, sent only when not default).

`Struct.codec(version, flexible)` compiles (once, then cached) a pair of
closures: `encode(writer, body)` and `decode(reader) -> dict`. Bodies are plain
dicts keyed by field name. Decoding returns every field the struct knows: those
absent at the version (or tagged and not sent) get their defaults. Encoding
takes a missing key's default and ignores keys the version lacks. Consecutive
fixed-width fields are packed and unpacked with one `struct.Struct` call.

In flexible versions strings, bytes, records and arrays use compact encodings,
and every struct ends with its tagged fields: known tags are decoded, unknown
ones skipped.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from runtime.protocol.errors import ProtocolError
from runtime.protocol.primitives import Reader, Writer

Decode = Callable[[Reader], Any]
Encode = Callable[[Writer, Any], None]

_NO_VERSIONS = (1, 0)
_UNSET: Any = object()
_ZERO_UUID = uuid.UUID(int=0)


def parse_versions(spec: str | None) -> tuple[int, int]:
    """ "3+" -> (3, 32767), "2-4" -> (2, 4), "5" -> (5, 5), None -> an empty range."""
    if spec is None:
        return _NO_VERSIONS
    if spec.endswith("+"):
        return int(spec[:-1]), 0x7FFF
    low, _, high = spec.partition("-")
    return int(low), int(high or low)


class Type:
    """A wire type: compiles to a decoder and an encoder for one version."""

    name = "type"
    fmt: str | None = None  # struct format character of a fixed-width type
    size = 1  # fewest bytes one value takes (bounds array counts)

    def default(self) -> Any:
        raise NotImplementedError

    def compile(self, version: int, flexible: bool, nullable: bool) -> tuple[Decode, Encode]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.name


class _Fixed(Type):
    def __init__(self, name: str, fmt: str, default: Any) -> None:
        self.name, self.fmt, self._default = name, fmt, default
        self.size = struct.calcsize(">" + fmt)

    def default(self) -> Any:
        return self._default

    def compile(self, version: int, flexible: bool, nullable: bool) -> tuple[Decode, Encode]:
        st = struct.Struct(">" + self.fmt)
        pack = st.pack

        def decode(r: Reader) -> Any:
            return r.unpack(st)[0]

        def encode(w: Writer, v: Any) -> None:
            w.buf += pack(v)

        return decode, encode


class _Variable(Type):
    """A type read and written by Reader/Writer methods, chosen by flexible/nullable."""

    def __init__(self, name: str, default: Any, size: int, methods: dict) -> None:
        self.name, self._default, self.size, self._methods = name, default, size, methods

    def default(self) -> Any:
        return self._default

    def compile(self, version: int, flexible: bool, nullable: bool) -> tuple[Decode, Encode]:
        method = self._methods[flexible, nullable]
        return getattr(Reader, method), getattr(Writer, method)


def _methods(plain: str, nullable: str, compact: str, compact_nullable: str) -> dict:
    return {
        (False, False): plain,
        (False, True): nullable,
        (True, False): compact,
        (True, True): compact_nullable,
    }


INT8 = _Fixed("int8", "b", 0)
INT16 = _Fixed("int16", "h", 0)
INT32 = _Fixed("int32", "i", 0)
INT64 = _Fixed("int64", "q", 0)
UINT32 = _Fixed("uint32", "I", 0)
FLOAT64 = _Fixed("float64", "d", 0.0)
BOOL = _Fixed("bool", "?", False)
STRING = _Variable(
    "string",
    "",
    1,
    _methods("string", "nullable_string", "compact_string", "compact_nullable_string"),
)
BYTES = _Variable(
    "bytes", b"", 1, _methods("bytes_", "nullable_bytes", "compact_bytes", "compact_nullable_bytes")
)
RECORDS = _Variable(
    "records", None, 1, _methods("records", "records", "compact_records", "compact_records")
)
"""Record batches as raw bytes (a memoryview into the frame when decoded); never decoded here.
Encodes bytes-likes or a list of them written back to back."""
UUID = _Variable("uuid", _ZERO_UUID, 16, _methods("uuid", "uuid", "uuid", "uuid"))


class Array(Type):
    """An array of `elem` (a primitive or a Struct); None when null."""

    def __init__(self, elem: Type) -> None:
        self.elem = elem
        self.name = f"[]{elem.name}"

    def default(self) -> list:
        return []

    def compile(self, version: int, flexible: bool, nullable: bool) -> tuple[Decode, Encode]:
        decode_elem, encode_elem = self.elem.compile(version, flexible, False)
        read_length = Reader.compact_array_length if flexible else Reader.array_length
        write_length = Writer.compact_array_length if flexible else Writer.array_length
        elem_size = self.elem.size
        fmt = self.elem.fmt
        name = self.name

        def decode(r: Reader) -> list | None:
            n = read_length(r)
            if n < 0:
                if nullable:
                    return None
                raise ProtocolError(f"null {name} where the version does not allow it")
            if n * elem_size > r.end - r.pos:
                raise ProtocolError(f"{name} of {n} elements cannot fit in {r.remaining()} bytes")
            if fmt is not None:  # fixed-width elements: one unpack for the whole array
                return list(r.unpack(struct.Struct(f">{n}{fmt}")))
            return [decode_elem(r) for _ in range(n)]

        def encode(w: Writer, v: list | None) -> None:
            if v is None:
                if not nullable:
                    raise ValueError(f"null {name} where the version does not allow it")
                write_length(w, None)
                return
            write_length(w, len(v))
            if fmt is not None:
                w.buf += struct.pack(f">{len(v)}{fmt}", *v)
            else:
                for item in v:
                    encode_elem(w, item)

        return decode, encode


class Field:
    """One field of a Struct.

    `versions` and `nullable_versions` are ranges like "0+", "3-7", "5";
    `default` (immutable; the type's zero value when not given) is what decode fills
    in where the field is absent and encode sends when the body lacks it;
    `tagged` is the tag of a tagged field (sent only in flexible versions)."""

    __slots__ = ("_default", "name", "nullable", "tag", "type", "versions")

    def __init__(
        self,
        name: str,
        type: Type,
        versions: str = "0+",
        nullable_versions: str | None = None,
        default: Any = _UNSET,
        tagged: int | None = None,
    ) -> None:
        self.name = name
        self.type = type
        self.versions = parse_versions(versions)
        self.nullable = parse_versions(nullable_versions)
        self._default = default
        self.tag = tagged

    def present(self, version: int, flexible: bool) -> bool:
        low, high = self.versions
        return low <= version <= high and (self.tag is None or flexible)

    def nullable_at(self, version: int) -> bool:
        return self.nullable[0] <= version <= self.nullable[1]

    def default(self) -> Any:
        """A fresh default value (lists and dicts are new each call)."""
        return self.type.default() if self._default is _UNSET else self._default

    def __repr__(self) -> str:
        return f"Field({self.name!r}, {self.type!r})"


class Struct(Type):
    """An ordered group of fields: a message body or an element of an array."""

    name = "struct"

    def __init__(self, *fields: Field) -> None:
        self.fields = fields
        self._codecs: dict[tuple[int, bool], tuple[Decode, Encode]] = {}
        names = [f.name for f in fields]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate field names in {names}")

    def default(self) -> dict:
        return {f.name: f.default() for f in self.fields}

    def compile(
        self, version: int, flexible: bool, nullable: bool = False
    ) -> tuple[Decode, Encode]:
        return self.codec(version, flexible)

    def codec(self, version: int, flexible: bool) -> tuple[Decode, Encode]:
        """(decode, encode) for one version, compiled once."""
        key = (version, flexible)
        codec = self._codecs.get(key)
        if codec is None:
            codec = self._codecs[key] = _compile_struct(self, version, flexible)
        return codec


_Step = Callable[[Reader, dict], None]
_WStep = Callable[[Writer, Mapping], None]


def _compile_struct(s: Struct, version: int, flexible: bool) -> tuple[Decode, Encode]:
    regular = [f for f in s.fields if f.present(version, flexible) and f.tag is None]
    tagged = sorted(
        (f for f in s.fields if f.present(version, flexible) and f.tag is not None),
        key=lambda f: f.tag,
    )
    absent = [f for f in s.fields if f not in regular]
    template = {f.name: f.default() for f in absent if not isinstance(f.default(), list | dict)}
    factories = [(f.name, f.default) for f in absent if f.name not in template]
    read_steps: list[_Step] = []
    write_steps: list[_WStep] = []
    for group in _runs(regular):
        if group[0].type.fmt is not None:
            _fixed_run(group, read_steps, write_steps)
        else:
            _one_field(group[0], version, flexible, read_steps, write_steps)
    read_tags, write_tags = _tagged(tagged, version) if flexible else (None, None)

    def decode(r: Reader) -> dict:
        d = template.copy()
        for name, make in factories:
            d[name] = make()
        for step in read_steps:
            step(r, d)
        if read_tags is not None:
            read_tags(r, d)
        return d

    def encode(w: Writer, d: Mapping) -> None:
        for step in write_steps:
            step(w, d)
        if write_tags is not None:
            write_tags(w, d)

    return decode, encode


def _runs(fields: list[Field]) -> list[list[Field]]:
    """Consecutive fixed-width fields grouped; every other field alone."""
    groups: list[list[Field]] = []
    for f in fields:
        if f.type.fmt is not None and groups and groups[-1][-1].type.fmt is not None:
            groups[-1].append(f)
        else:
            groups.append([f])
    return groups


def _fixed_run(group: list[Field], read_steps: list, write_steps: list) -> None:
    st = struct.Struct(">" + "".join(f.type.fmt for f in group))  # type: ignore[misc]
    names = tuple(f.name for f in group)
    defaults = tuple(f.default() for f in group)
    pack = st.pack

    def read(r: Reader, d: dict) -> None:
        d.update(zip(names, r.unpack(st), strict=True))

    def write(w: Writer, d: Mapping) -> None:
        try:
            w.buf += pack(*map(d.get, names, defaults))
        except struct.error as e:
            values = dict(zip(names, map(d.get, names, defaults), strict=True))
            raise ValueError(f"cannot encode {values}: {e}") from None

    read_steps.append(read)
    write_steps.append(write)


def _one_field(f: Field, version: int, flexible: bool, read_steps: list, write_steps: list) -> None:
    nullable = f.nullable_at(version)
    decode, encode = f.type.compile(version, flexible, nullable)
    name, default = f.name, f.default()
    if isinstance(default, list | dict):
        default = _encode_default(default)

    def read(r: Reader, d: dict) -> None:
        d[name] = decode(r)

    def write(w: Writer, d: Mapping) -> None:
        value = d.get(name, default)
        if value is None and not nullable:
            raise ValueError(f"field {name!r} is not nullable at version {version}")
        encode(w, value)

    read_steps.append(read)
    write_steps.append(write)


def _encode_default(default: list | dict) -> tuple | dict:
    return () if isinstance(default, list) else default


def _tagged(fields: list[Field], version: int) -> tuple[_Step, _WStep]:
    """Readers and writers of a flexible struct's tagged-field section."""
    by_tag = {}
    for f in fields:
        decode, encode = f.type.compile(version, True, f.nullable_at(version))
        by_tag[f.tag] = (f.name, decode, encode, f.default())

    def read(r: Reader, d: dict) -> None:
        if r.pos < r.end and r.buf[r.pos] == 0:  # no tagged fields: the usual case
            r.pos += 1
            return
        for tag, data in r.tagged_fields().items():
            known = by_tag.get(tag)
            if known is not None:
                d[known[0]] = known[1](Reader(data))

    def write(w: Writer, d: Mapping) -> None:
        out = {}
        for tag, (name, _, encode, default) in by_tag.items():
            value = d.get(name, default)
            if value != default:
                sub = Writer()
                encode(sub, value)
                out[tag] = sub.getvalue()
        w.tagged_fields(out)

    return read, write


@dataclass(frozen=True, slots=True)
class Api:
    """The request and response schemas of one api key, for versions min..max."""

    key: int
    name: str
    min_version: int
    max_version: int
    flexible_from: int  # first flexible version (compact encodings + tagged fields)
    request: Struct
    response: Struct

    def flexible(self, version: int) -> bool:
        return version >= self.flexible_from

    def supports(self, version: int) -> bool:
        return self.min_version <= version <= self.max_version
