"""Event batches keep decoded records as columns and build an Event (and its
Message) only on demand: `async for value in stream` builds none, yet
current_event() and table routing still see the record being processed."""

from __future__ import annotations

import asyncio

import pytest

from runtime.log.record_columns import RecordColumns
from streams.channel import Channel
from streams.errors import ValueDecodeError
from streams.event import Event, Message, current_event, current_partition
from streams.event_batch import EventBatch
from streams.stream import Stream, StreamContext
from streams.topic import Topic
from streams.wiring import Wiring

ROWS = [
    (10, 1000, b"a", b'{"n": 1}', ()),
    (11, 1001, None, b'{"n": 2}', (("h", b"v"),)),
    (12, 1002, b"c", None, ()),
]


def _topic(**kwargs: object) -> Topic:
    return Topic(Wiring("app"), "events", key_type=str, partitions=4, **kwargs)  # type: ignore[arg-type]


def test_a_batch_gives_the_events_decode_gives():
    topic = _topic()
    batch = topic.decode_batch(ROWS, 3)
    assert list(batch) == topic.decode(ROWS, 3)
    assert batch.keys == ["a", None, "c"] and batch.values == [{"n": 1}, {"n": 2}, None]
    assert batch[1].message == Message("events", 3, 11, 1001, (("h", b"v"),))
    assert batch[-1].offset == 12 and batch[1:] == list(batch)[1:]
    assert len(topic.decode_batch([], 0)) == 0
    match batch[0]:  # positional patterns, as on the dataclass Event was
        case Event(key, value, message):
            assert (key, value, message.offset) == ("a", {"n": 1}, 10)
    assert repr(batch[2]).startswith("Event(key='c', value=None, message=Message(")


def _columns(rows: list[tuple]) -> RecordColumns:
    return RecordColumns(*(list(column) for column in zip(*rows, strict=True)))


def test_record_columns_give_the_batch_rows_give():
    topic = _topic()
    batch = topic.decode_batch(_columns(ROWS), 3)
    assert list(batch) == list(topic.decode_batch(ROWS, 3))
    assert len(topic.decode_batch(RecordColumns(), 0)) == 0
    with pytest.raises(ValueDecodeError) as info:  # the bad record is named, as from rows
        topic.decode_batch(_columns([*ROWS, (13, 1003, b"d", b"{not json", ())]), 2)
    assert (info.value.partition, info.value.offset) == (2, 13)


def test_columns_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="per offset"):
        EventBatch("t", 0, [1, 2], [0], ["k"], ["v"], [()])


def test_an_undecodable_value_is_named_or_skipped_as_the_app_says():
    rows = [*ROWS, (13, 1003, b"d", b"{not json", ())]
    with pytest.raises(ValueDecodeError) as info:
        _topic().decode_batch(rows, 2)
    assert (info.value.partition, info.value.offset) == (2, 13)
    wiring = Wiring("app")
    wiring.on_decode_error = "skip"
    topic = Topic(wiring, "events", key_type=str, partitions=4)
    batch = topic.decode_batch(rows, 2)
    assert batch.offsets == [10, 11, 12] and batch.keys == ["a", None, "c"]


def test_values_of_a_stream_build_no_event_but_current_event_sees_the_record(monkeypatch):
    def no_events(*args: object) -> None:
        raise AssertionError("an Event was built per record")

    async def main() -> list[tuple[object, int | None, Event | None]]:
        channel = Channel()
        stream = Stream(channel, StreamContext(Wiring("app"), "agent"))
        channel.put_nowait(_topic().decode_batch(ROWS, 3))
        seen = []
        monkeypatch.setattr(EventBatch, "__iter__", no_events)
        monkeypatch.setattr(EventBatch, "__getitem__", no_events)
        async for value in stream:
            seen.append((value, current_partition(), None))
            if len(seen) == len(ROWS):
                break
        monkeypatch.undo()
        channel.put_nowait(_topic().decode_batch(ROWS, 1))
        async for value in stream:
            seen.append((value, current_partition(), current_event()))
            if len(seen) == 2 * len(ROWS):
                break
        return seen

    seen = asyncio.run(main())
    assert [v for v, _, _ in seen] == [{"n": 1}, {"n": 2}, None] * 2
    assert [p for _, p, _ in seen] == [3, 3, 3, 1, 1, 1]
    events = [e for _, _, e in seen[3:]]
    assert [(e.key, e.offset, e.partition) for e in events if e] == [
        ("a", 10, 1),
        (None, 11, 1),
        ("c", 12, 1),
    ]
    assert current_event() is None


def test_items_of_a_stream_build_no_event_and_filters_see_values(monkeypatch):
    def no_events(*args: object) -> None:
        raise AssertionError("an Event was built per record")

    async def main() -> list[tuple[object, object]]:
        channel = Channel()
        stream = Stream(channel, StreamContext(Wiring("app"), "agent"))
        channel.put_nowait(_topic().decode_batch(ROWS, 0))
        monkeypatch.setattr(EventBatch, "__iter__", no_events)
        monkeypatch.setattr(EventBatch, "__getitem__", no_events)
        seen = []
        async for key, value in stream.filter(lambda v: v is not None).items():
            seen.append((key, value))
            if len(seen) == 2:
                break
        return seen

    assert asyncio.run(main()) == [("a", {"n": 1}), (None, {"n": 2})]
