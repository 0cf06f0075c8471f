from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams import codec as codec_module
from streams.codec import Codec, get_codec, register_codec
from streams.model import Record


class Ride(Record):
    zone: str
    fare: float = 0.0


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(json_values)
def test_json_roundtrip(value: Any) -> None:
    codec = get_codec("json")
    assert codec.loads(codec.dumps(value)) == value


def test_json_records_and_datetimes() -> None:
    codec = get_codec("json")
    assert codec.dumps(Ride("a", 1.5)) == b'{"zone":"a","fare":1.5}'
    assert codec.dumps(datetime(2024, 1, 2, 3, 4, tzinfo=UTC)) == b'"2024-01-02T03:04:00+00:00"'
    assert codec.loads(b'{"zone":"a"}') == {"zone": "a"}


@pytest.mark.parametrize("value", [b"x", bytearray(b"x"), memoryview(b"x")])
def test_json_refuses_bytes(value: Any) -> None:
    with pytest.raises(TypeError, match="raw"):
        get_codec("json").dumps(value)


def test_json_unknown_type_and_bad_input() -> None:
    with pytest.raises(TypeError):
        get_codec("json").dumps(object())
    with pytest.raises(ValueError):
        get_codec("json").loads(b"{not json")


def test_raw() -> None:
    codec = get_codec("raw")
    assert codec.dumps(b"\x00\xff") == b"\x00\xff"
    assert codec.dumps(bytearray(b"ab")) == b"ab"
    assert codec.dumps("é") == "é".encode()
    assert codec.loads(b"\x00\xff") == b"\x00\xff"
    assert type(codec.loads(memoryview(b"ab"))) is bytes
    with pytest.raises(TypeError, match="int"):
        codec.dumps(1)


def test_str() -> None:
    codec = get_codec("str")
    assert codec.dumps("é") == b"\xc3\xa9"
    assert codec.loads(b"\xc3\xa9") == "é"
    with pytest.raises(TypeError):
        codec.dumps(b"bytes")
    with pytest.raises(UnicodeDecodeError):
        codec.loads(b"\xff")


class Upper:
    def dumps(self, obj: Any) -> bytes:
        return str(obj).upper().encode()

    def loads(self, data: bytes) -> Any:
        return data.decode().lower()


@pytest.fixture(autouse=True)
def _private_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codec_module, "_codecs", dict(codec_module._codecs))


def test_register_and_get_codec() -> None:
    codec = Upper()
    register_codec("test-upper", codec)
    assert get_codec("test-upper") is codec
    assert get_codec(codec) is codec
    assert isinstance(codec, Codec)


def test_register_codec_needs_a_name_and_a_codec() -> None:
    with pytest.raises(ValueError, match="name"):
        register_codec("", Upper())
    with pytest.raises(TypeError, match="dumps"):
        register_codec("nope", object())  # type: ignore[arg-type]


def test_unknown_codec_lists_known_ones() -> None:
    with pytest.raises(ValueError, match="'yaml'") as info:
        get_codec("yaml")
    for name in ("'json'", "'raw'", "'str'"):
        assert name in str(info.value)
    with pytest.raises(TypeError):
        get_codec(42)  # type: ignore[arg-type]


class _Point(Record):
    x: int
    y: int = 0


class _Line(Record):
    start: _Point
    tags: set[str] = frozenset()  # type: ignore[assignment]


def test_json_record_is_its_fields_whatever_else_the_instance_holds() -> None:
    # A flat Record goes to orjson as its own __dict__: only while that is its fields.
    codec = get_codec("json")
    point = _Point(1, 2)
    assert codec.dumps(point) == b'{"x":1,"y":2}'
    point.note = "not a field"  # type: ignore[attr-defined]
    assert codec.dumps(point) == b'{"x":1,"y":2}'
    del point.note  # type: ignore[attr-defined]
    del point.y
    with pytest.raises(AttributeError):
        codec.dumps(point)  # as to_dict: a field is missing


def test_json_nested_records_sets_and_values_of_other_types() -> None:
    codec = get_codec("json")
    line = _Line(_Point(1), {"a"})
    assert codec.loads(codec.dumps(line)) == {"start": {"x": 1, "y": 0}, "tags": ["a"]}
    point = _Point(_Point(3), {"b"})  # fields are not checked by __init__: encoded as given
    assert codec.loads(codec.dumps(point)) == {"x": {"x": 3, "y": 0}, "y": ["b"]}
    assert codec.dumps([_Point(1, 1), {"p": _Point(2, 2)}]) == (
        b'[{"x":1,"y":1},{"p":{"x":2,"y":2}}]'
    )


def test_json_refuses_bytes_subclasses_and_unknown_types_every_time() -> None:
    class Blob(bytes):
        pass

    codec = get_codec("json")
    for _ in range(2):  # the second time from the per-class cache
        with pytest.raises(TypeError, match="raw"):
            codec.dumps(Blob(b"x"))
        with pytest.raises(TypeError, match="not JSON serializable"):
            codec.dumps(object())
