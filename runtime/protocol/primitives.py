"""Kafka protocol primitive types: a bounds-checked Reader and a chunked Writer.

Encodings (big-endian):

    int8 int16 int32 int64 uint32 float64    fixed width; boolean is one byte, non-zero = true
    varint varlong                           zigzag, 7 bits a byte, at most 5 / 10 bytes
    uvarint                                  unsigned, at most 5 bytes (compact lengths)
    string / nullable string                 int16 length (-1 = null), UTF-8
    bytes / nullable bytes                   int32 length (-1 = null)
    compact string / bytes                   uvarint length + 1 (0 = null)
    array / compact array                    int32 count (-1 = null) / uvarint count + 1 (0 = null)
    uuid                                     16 bytes
    tagged fields                            uvarint count, then (uvarint tag, uvarint size, data)

Invariants:
- A Reader never raises anything but ProtocolError: every read is bounds-checked
  and lengths below -1 (or -1 where null is not allowed) are rejected.
- Strings decode as Java does: invalid UTF-8 becomes U+FFFD instead of failing.
- `Reader.records` returns a memoryview into the input (no copy); `bytes_` copies.
- A Writer keeps large buffers (records) as separate chunks, so the final
  `getvalue`/`frame` join is the only copy of them, and `frame_parts` none.
  A chunk that is not a buffer (a file region to be sent with sendfile: any
  object with a length) is kept as it is; only `frame_parts` can pass it on.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterable
from typing import Any

from runtime.protocol.errors import ProtocolError

Buffer = bytes | bytearray | memoryview

INT8 = struct.Struct(">b")
INT16 = struct.Struct(">h")
INT32 = struct.Struct(">i")
INT64 = struct.Struct(">q")
UINT32 = struct.Struct(">I")
FLOAT64 = struct.Struct(">d")
BOOLEAN = struct.Struct(">?")

STRING_BYTES_MAX = 0x7FFF
_CHUNK_MIN = 4096  # buffers at least this large are kept as chunks, not copied
_NULL_TAGS = b"\x00"


class Reader:
    """Reads primitives from a buffer, advancing `pos`."""

    __slots__ = ("buf", "end", "pos")

    def __init__(self, data: Buffer, pos: int = 0) -> None:
        buf = data if isinstance(data, memoryview) else memoryview(data)
        if buf.ndim != 1 or buf.itemsize != 1:
            buf = buf.cast("B")
        self.buf = buf
        self.pos = pos
        self.end = buf.nbytes

    def remaining(self) -> int:
        return self.end - self.pos

    def _short(self, what: str, need: int) -> ProtocolError:
        return ProtocolError(
            f"truncated {what} at offset {self.pos}: need {need} bytes, have {self.end - self.pos}"
        )

    def unpack(self, st: struct.Struct) -> tuple:
        """Several fixed-width values at once."""
        try:
            values = st.unpack_from(self.buf, self.pos)
        except struct.error:
            raise self._short("fixed-width fields", st.size) from None
        self.pos += st.size
        return values

    def int8(self) -> int:
        return self.unpack(INT8)[0]

    def int16(self) -> int:
        return self.unpack(INT16)[0]

    def int32(self) -> int:
        return self.unpack(INT32)[0]

    def int64(self) -> int:
        return self.unpack(INT64)[0]

    def uint32(self) -> int:
        return self.unpack(UINT32)[0]

    def float64(self) -> float:
        return self.unpack(FLOAT64)[0]

    def boolean(self) -> bool:
        return self.unpack(BOOLEAN)[0]

    def uvarint(self, max_bytes: int = 5) -> int:
        buf, pos, end = self.buf, self.pos, self.end
        if pos < end and buf[pos] < 0x80:  # the common one-byte case
            self.pos = pos + 1
            return buf[pos]
        result = shift = 0
        for _ in range(max_bytes):
            if pos >= end:
                raise self._short("varint", 1)
            b = buf[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if b < 0x80:
                self.pos = pos
                return result
            shift += 7
        raise ProtocolError(f"varint longer than {max_bytes} bytes at offset {self.pos}")

    def uvarlong(self) -> int:
        return self.uvarint(10)

    def varint(self) -> int:
        n = self.uvarint(5)
        return (n >> 1) ^ -(n & 1)

    def varlong(self) -> int:
        n = self.uvarint(10)
        return (n >> 1) ^ -(n & 1)

    def take(self, n: int, what: str = "bytes") -> memoryview:
        """The next n bytes as a view into the input."""
        start = self.pos
        stop = start + n
        if stop > self.end:
            raise self._short(what, n)
        self.pos = stop
        return self.buf[start:stop]

    def _utf8(self, n: int) -> str:
        return str(self.take(n, "string"), "utf-8", "replace")

    def _length(self, n: int, nullable: bool, what: str) -> int:
        if n < -1 or (n == -1 and not nullable):
            raise ProtocolError(f"invalid {what} length {n} at offset {self.pos}")
        return n

    def string(self) -> str:
        return self._utf8(self._length(self.int16(), False, "string"))

    def nullable_string(self) -> str | None:
        n = self._length(self.int16(), True, "string")
        return None if n == -1 else self._utf8(n)

    def compact_string(self) -> str:
        return self._utf8(self._length(self.uvarint() - 1, False, "compact string"))

    def compact_nullable_string(self) -> str | None:
        n = self.uvarint() - 1
        return None if n == -1 else self._utf8(n)

    def bytes_(self) -> bytes:
        return bytes(self.take(self._length(self.int32(), False, "bytes")))

    def nullable_bytes(self) -> bytes | None:
        n = self._length(self.int32(), True, "bytes")
        return None if n == -1 else bytes(self.take(n))

    def compact_bytes(self) -> bytes:
        return bytes(self.take(self._length(self.uvarint() - 1, False, "compact bytes")))

    def compact_nullable_bytes(self) -> bytes | None:
        n = self.uvarint() - 1
        return None if n == -1 else bytes(self.take(n))

    def records(self) -> memoryview | None:
        """Nullable bytes (int32 length) as a view: record batches are never copied here."""
        n = self._length(self.int32(), True, "records")
        return None if n == -1 else self.take(n, "records")

    def compact_records(self) -> memoryview | None:
        n = self.uvarint() - 1
        return None if n == -1 else self.take(n, "records")

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(bytes=bytes(self.take(16, "uuid")))

    def array_length(self) -> int:
        """Element count of an array; -1 for null."""
        return self._length(self.int32(), True, "array")

    def compact_array_length(self) -> int:
        return self.uvarint() - 1

    def tagged_fields(self) -> dict[int, memoryview]:
        """Every tagged field as raw bytes, by tag."""
        count = self.uvarint()
        if count > self.end - self.pos:
            raise ProtocolError(f"{count} tagged fields cannot fit in {self.remaining()} bytes")
        fields = {}
        for _ in range(count):
            tag = self.uvarint()
            fields[tag] = self.take(self.uvarint(), "tagged field")
        return fields

    def skip_tagged_fields(self) -> None:
        if self.pos < self.end and self.buf[self.pos] == 0:  # none: the usual case
            self.pos += 1
        else:
            self.tagged_fields()


class Writer:
    """Appends primitives; large buffers are kept as chunks until the final join."""

    __slots__ = ("buf", "chunks")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.chunks: list[Buffer] = []

    def raw(self, data: Buffer) -> None:
        if len(data) < _CHUNK_MIN and isinstance(data, bytes | bytearray | memoryview):
            self.buf += data
        else:
            self.chunks.append(self.buf)
            self.chunks.append(data)
            self.buf = bytearray()

    def size(self) -> int:
        return sum(len(c) for c in self.chunks) + len(self.buf)

    def getvalue(self) -> bytes:
        if not self.chunks:
            return bytes(self.buf)
        return b"".join([*self.chunks, self.buf])

    def frame(self) -> bytes:
        """The written bytes behind an int32 size prefix."""
        return b"".join([INT32.pack(self.size()), *self.chunks, self.buf])

    def frame_parts(self) -> list[Any]:
        """What `frame` returns, as parts to send back to back, none of them copied
        but the small ones, which are joined: buffers, and chunks as they were given."""
        parts: list[Any] = []
        small = bytearray(INT32.pack(self.size()))
        for chunk in [*self.chunks, self.buf]:
            if len(chunk) < _CHUNK_MIN and isinstance(chunk, bytes | bytearray | memoryview):
                small += chunk
                continue
            if small:
                parts.append(bytes(small))
                small = bytearray()
            parts.append(chunk)
        if small:
            parts.append(bytes(small))
        return parts

    def int8(self, v: int) -> None:
        self.buf += INT8.pack(v)

    def int16(self, v: int) -> None:
        self.buf += INT16.pack(v)

    def int32(self, v: int) -> None:
        self.buf += INT32.pack(v)

    def int64(self, v: int) -> None:
        self.buf += INT64.pack(v)

    def uint32(self, v: int) -> None:
        self.buf += UINT32.pack(v)

    def float64(self, v: float) -> None:
        self.buf += FLOAT64.pack(v)

    def boolean(self, v: bool) -> None:
        self.buf += b"\x01" if v else b"\x00"

    def uvarint(self, v: int) -> None:
        if v < 0:
            raise ValueError(f"unsigned varint cannot hold {v}")
        if v < 0x80:
            self.buf.append(v)
            return
        out = bytearray()
        while v >= 0x80:
            out.append((v & 0x7F) | 0x80)
            v >>= 7
        out.append(v)
        self.buf += out

    def varint(self, v: int) -> None:
        if not -(2**31) <= v < 2**31:
            raise ValueError(f"varint out of range: {v}")
        self.uvarint((v << 1) ^ (v >> 31))

    def varlong(self, v: int) -> None:
        if not -(2**63) <= v < 2**63:
            raise ValueError(f"varlong out of range: {v}")
        self.uvarint((v << 1) ^ (v >> 63))

    def _utf8(self, v: str) -> bytes:
        if v is None:
            raise ValueError("null for a non-nullable string")
        data = v.encode("utf-8")
        if len(data) > STRING_BYTES_MAX:
            raise ValueError(f"string of {len(data)} bytes exceeds {STRING_BYTES_MAX}")
        return data

    def string(self, v: str) -> None:
        data = self._utf8(v)
        self.buf += INT16.pack(len(data))
        self.buf += data

    def nullable_string(self, v: str | None) -> None:
        if v is None:
            self.buf += b"\xff\xff"
        else:
            self.string(v)

    def compact_string(self, v: str) -> None:
        data = self._utf8(v)
        self.uvarint(len(data) + 1)
        self.buf += data

    def compact_nullable_string(self, v: str | None) -> None:
        if v is None:
            self.buf.append(0)
        else:
            self.compact_string(v)

    def bytes_(self, v: Buffer) -> None:
        if v is None:
            raise ValueError("null for non-nullable bytes")
        self.buf += INT32.pack(len(v))
        self.raw(v)

    def nullable_bytes(self, v: Buffer | None) -> None:
        if v is None:
            self.buf += b"\xff\xff\xff\xff"
        else:
            self.bytes_(v)

    def compact_bytes(self, v: Buffer) -> None:
        if v is None:
            raise ValueError("null for non-nullable bytes")
        self.uvarint(len(v) + 1)
        self.raw(v)

    def compact_nullable_bytes(self, v: Buffer | None) -> None:
        if v is None:
            self.buf.append(0)
        else:
            self.compact_bytes(v)

    def records(self, v: Buffer | Iterable[Buffer] | None) -> None:
        """Nullable bytes from one buffer or several written back to back."""
        if v is None:
            self.buf += b"\xff\xff\xff\xff"
            return
        parts = _parts(v)
        self.buf += INT32.pack(sum(len(p) for p in parts))
        for p in parts:
            self.raw(p)

    def compact_records(self, v: Buffer | Iterable[Buffer] | None) -> None:
        if v is None:
            self.buf.append(0)
            return
        parts = _parts(v)
        self.uvarint(sum(len(p) for p in parts) + 1)
        for p in parts:
            self.raw(p)

    def uuid(self, v: uuid.UUID) -> None:
        self.buf += v.bytes

    def array_length(self, n: int | None) -> None:
        self.buf += INT32.pack(-1 if n is None else n)

    def compact_array_length(self, n: int | None) -> None:
        self.uvarint(0 if n is None else n + 1)

    def tagged_fields(self, fields: dict[int, bytes] | None = None) -> None:
        """Tagged fields in ascending tag order; none by default."""
        if not fields:
            self.buf += _NULL_TAGS
            return
        self.uvarint(len(fields))
        for tag in sorted(fields):
            self.uvarint(tag)
            self.uvarint(len(fields[tag]))
            self.raw(fields[tag])


def _parts(v: Buffer | Iterable[Buffer]) -> list[Buffer] | tuple[Buffer, ...]:
    if isinstance(v, bytes | bytearray | memoryview):
        return (v,)
    return list(v)
