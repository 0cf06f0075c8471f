"""The per-event update of a tumbling table: `table[key] op= x` straight into the
partition's cache, with no store read for a window the partition never held."""

from __future__ import annotations

from typing import Any

import pytest

import streams
from stores.memory import MemoryStore
from streams.event import Event, Message, set_current_event


class Tick(streams.Record):
    at: float


class CountingStore(MemoryStore):
    """A memory store that counts the point reads the table makes."""

    def __init__(self) -> None:
        super().__init__()
        self.gets = 0

    def get(self, key: bytes) -> bytes | None:
        self.gets += 1
        return super().get(key)


def _table(store: MemoryStore, *, recovered: bool = True) -> Any:
    app = streams.App("upd", broker="memory://")
    table = app.Table("t", default=int, key_type=str, partitions=1)
    windowed = table.tumbling(10, expires=100).relative_to_field(Tick.at)
    table.attach(0, store)
    if recovered:
        windowed.on_recovered(0)
    return windowed


def _at(key: str, ts: float) -> None:
    set_current_event(Event(key, Tick(at=ts), Message("t", 0, 0, 0)))


@pytest.fixture(autouse=True)
def _no_event_left() -> Any:
    yield
    set_current_event(None)


def test_a_new_window_in_a_recovered_partition_reads_nothing_from_the_store():
    store = CountingStore()
    windows = _table(store)
    for i in range(50):
        _at(f"k{i % 5}", float(i))  # five windows of ten seconds, five keys
        windows[f"k{i % 5}"] += 1
    assert store.gets == 0
    got = dict(windows.items())
    assert got == {(f"k{k}", float(s)): 2 for k in range(5) for s in range(0, 50, 10)}


def test_a_stored_window_goes_on_from_its_value():
    store = CountingStore()
    first = _table(store)
    _at("a", 3.0)
    first["a"] += 5
    first.table.partitions[0].store.apply(
        {first.table._dump_key(w): first.table._dump_value(v) for w, v in first.items()}, 0
    )
    second = _table(store)  # as after a restart: the store holds ("a", 0.0)
    _at("a", 4.0)
    second["a"] += 1
    _at("b", 4.0)
    second["b"] += 1
    assert dict(second.items()) == {("a", 0.0): 6, ("b", 0.0): 1}


def test_an_unrecovered_partition_still_reads_the_store():
    store = CountingStore()
    store.apply({b'["a",0.0]': b"7"}, 0)
    windows = _table(store, recovered=False)
    _at("a", 1.0)
    windows["a"] += 1
    assert dict(windows.items()) == {("a", 0.0): 8}
    assert store.gets == 1


def test_window_edges_and_out_of_order_events_find_their_windows():
    windows = _table(MemoryStore())
    for ts in (9.999, 10.0, 19.999, 5.0, 20.0, 10.0, -0.5):
        _at("k", ts)
        windows["k"] -= 1
    assert dict(windows.items()) == {
        ("k", -10.0): -1,
        ("k", 0.0): -2,
        ("k", 10.0): -3,
        ("k", 20.0): -1,
    }


def test_an_expired_window_starts_again_from_the_default():
    windows = _table(MemoryStore())
    _at("k", 1.0)
    windows["k"] += 4
    _at("k", 500.0)
    windows["k"] += 1
    assert windows.expire() == 1
    _at("k", 2.0)  # a late event for the deleted window
    windows["k"] += 1
    assert dict(windows.items()) == {("k", 0.0): 1, ("k", 500.0): 1}


def test_a_timestamp_that_is_not_finite_is_refused_and_changes_nothing():
    windows = _table(MemoryStore())
    _at("k", 1.0)
    windows["k"] += 1
    _at("k", float("nan"))
    with pytest.raises(ValueError, match="finite"):
        windows["k"] += 1
    assert dict(windows.items()) == {("k", 0.0): 1}


class Stamp(streams.Record):
    at: int


def test_a_field_view_takes_int_times_and_a_stream_view_the_record_time():
    app = streams.App("upd", broker="memory://")
    table = app.Table("t", default=int, key_type=str, partitions=1)
    by_field = table.tumbling(10, expires=100).relative_to_field(Stamp.at)
    by_record = by_field.relative_to_stream()
    table.attach(0, MemoryStore())
    by_field.on_recovered(0)
    set_current_event(Event("k", Stamp(at=25), Message("t", 0, 0, 3_000)))
    by_field["k"] += 1
    by_record["k"] += 10  # at the record's 3 s
    assert dict(by_field.items()) == {("k", 20.0): 1, ("k", 0.0): 10}
    assert by_field.partition_stream_time(0) == 25.0


def test_with_a_grace_period_new_windows_read_nothing_and_late_events_are_dropped():
    store = CountingStore()
    app = streams.App("upd", broker="memory://")
    table = app.Table("t", default=int, key_type=str, partitions=1)
    windows = table.tumbling(10, expires=100, grace=5).relative_to_field(Tick.at)
    table.attach(0, store)
    windows.on_recovered(0)
    store.gets = 0
    for key, ts in [("a", 1.0), ("b", 2.0), ("a", 12.0), ("a", 16.0), ("b", 4.0), ("a", 9.0)]:
        _at(key, ts)  # at 16 the window [0, 10) closes (end 10 + grace 5 <= 16)
        windows[key] += 1
    assert store.gets == 0
    assert dict(windows.items()) == {("a", 0.0): 1, ("b", 0.0): 1, ("a", 10.0): 2}
    assert windows.late_dropped == 2


@pytest.mark.parametrize(
    ("size", "step"), [(10.0, None), (0.3, None), (1.0, 0.1), (0.9, 0.3), (10.0, 2.5), (1.0, 0.3)]
)
def test_remembered_windows_are_the_windows_of_every_timestamp(size, step):
    import random

    app = streams.App("upd", broker="memory://")
    table = app.Table("t", default=int, key_type=str, partitions=1)
    windows = table.tumbling(size) if step is None else table.hopping(size, step)
    grid = windows.window
    rng = random.Random(14)
    edges = [k * (step or size) for k in range(-50, 50)]
    stamps = [rng.uniform(-20, 20) for _ in range(2000)] + edges
    stamps += [e + d for e in edges for d in (-1e-9, 1e-9)]
    rng.shuffle(stamps)
    for ts in sorted(stamps[:500]) + stamps:  # in order (the memo kept), then not
        assert windows._ranges(ts) == tuple(grid.ranges(ts)), ts


def test_the_steady_interval_is_promised_only_where_the_windows_cannot_change():
    from streams.window import HoppingWindow, TumblingWindow

    assert TumblingWindow(10).steady(15.0) == (10.0, 20.0)
    assert HoppingWindow(10, 5).steady(12.0) == (10.0, 15.0)
    assert HoppingWindow(1.0, 0.3).steady(0.5) is None  # size not a multiple of step


class Zone(streams.Record):
    name: str


@pytest.mark.parametrize(
    "key",
    [
        ("user-00042", 1764547200.0),
        ('zürich "quoted" \\ \n', -10.0),
        (7, 1e16),
        ((1, "a"), 0.5),
        (Zone(name="z"), 20.0),
        ("~stream-time"),
    ],
)
def test_window_keys_are_stored_as_the_json_codec_writes_them(key):
    from streams.codec import get_codec
    from streams.windowed import _dump_window_key

    assert _dump_window_key(key) == get_codec("json").dumps(key)
