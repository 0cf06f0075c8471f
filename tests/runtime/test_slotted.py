"""positional_builder: the same frozen value as the class's own __init__, without it."""

from __future__ import annotations

import dataclasses

import pytest

from runtime.log.batch_header import BatchHeader, iter_batches, parse_header
from runtime.log.records import encode_batch
from runtime.protocol.codes import ApiKey
from runtime.protocol.frames import RequestHeader, decode_request, encode_request
from runtime.slotted import positional_builder


@dataclasses.dataclass(frozen=True, slots=True)
class _Point:
    x: int
    y: str = "default"


def test_built_value_equals_constructed_one() -> None:
    built = positional_builder(_Point)(1, "a")
    assert built == _Point(1, "a")
    assert hash(built) == hash(_Point(1, "a"))
    assert type(built) is _Point and repr(built) == "_Point(x=1, y='a')"
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.x = 2  # type: ignore[misc]


def test_refuses_classes_whose_init_does_more() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        x: int

        def __post_init__(self) -> None:
            pass

    @dataclasses.dataclass(frozen=True)
    class Unslotted:
        x: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Derived:
        x: int
        y: int = dataclasses.field(init=False, default=0)

    for cls in (Checked, Unslotted, Derived):
        with pytest.raises(TypeError):
            positional_builder(cls)


def _no_init(monkeypatch: pytest.MonkeyPatch, cls: type) -> None:
    def refuse(self: object, *args: object) -> None:
        raise AssertionError(f"{cls.__name__}.__init__ ran on a hot path")

    monkeypatch.setattr(cls, "__init__", refuse)


def test_batch_headers_are_built_without_init(monkeypatch: pytest.MonkeyPatch) -> None:
    batch = encode_batch([(b"k", b"v", 5, ())] * 2) * 2
    expected = dataclasses.astuple(parse_header(batch))
    _no_init(monkeypatch, BatchHeader)
    header = parse_header(batch)
    assert dataclasses.astuple(header) == expected and header.record_count == 2
    assert [h.record_count for _, h in iter_batches(batch)] == [2, 2]


def test_request_headers_are_built_without_init(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = encode_request(ApiKey.METADATA, 9, 7, "client-a", {"topics": None})[4:]
    _no_init(monkeypatch, RequestHeader)
    header, _ = decode_request(frame)
    assert (header.api_key, header.api_version, header.correlation_id) == (ApiKey.METADATA, 9, 7)
    assert header.client_id == "client-a"
