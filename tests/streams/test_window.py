from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.window import HoppingWindow, TumblingWindow, Window, WindowRange

timestamps = st.floats(min_value=-1e10, max_value=1e10, allow_nan=False)
# Sizes people use: whole seconds and milliseconds.
durations = st.one_of(
    st.integers(min_value=1, max_value=86_400).map(float),
    st.integers(min_value=1, max_value=600_000).map(lambda ms: ms / 1000),
)


def test_tumbling_hand_computed() -> None:
    w = TumblingWindow(60)
    assert w.ranges(125.5) == [WindowRange(120.0, 180.0)]
    assert w.current(125.5) == w.earliest(125.5) == WindowRange(120.0, 180.0)
    assert w.current(0) == WindowRange(0.0, 60.0)
    assert w.current(-0.5) == WindowRange(-60.0, 0.0)
    assert w.delta(125.5, 60) == WindowRange(60.0, 120.0)


def test_hopping_hand_computed() -> None:
    w = HoppingWindow(10, 5)
    assert w.ranges(12) == [WindowRange(5.0, 15.0), WindowRange(10.0, 20.0)]
    assert w.earliest(12) == WindowRange(5.0, 15.0)
    assert w.current(12) == WindowRange(10.0, 20.0)
    assert w.delta(12, 5) == WindowRange(5.0, 15.0)


def test_hopping_size_not_a_multiple_of_step() -> None:
    w = HoppingWindow(10, 3)
    assert w.ranges(12) == [
        WindowRange(3.0, 13.0),
        WindowRange(6.0, 16.0),
        WindowRange(9.0, 19.0),
        WindowRange(12.0, 22.0),
    ]
    assert w.ranges(13) == [WindowRange(6.0, 16.0), WindowRange(9.0, 19.0), WindowRange(12.0, 22.0)]


def test_timestamp_at_start_belongs_to_that_window_not_the_previous() -> None:
    assert TumblingWindow(60).ranges(120) == [WindowRange(120.0, 180.0)]
    assert HoppingWindow(10, 5).ranges(10) == [WindowRange(5.0, 15.0), WindowRange(10.0, 20.0)]
    # 0.3 is not a float multiple of 0.1 (3 * 0.1 > 0.3), yet the windows still tile.
    w = TumblingWindow(0.1)
    (r,) = w.ranges(0.3)
    assert r.start <= 0.3 < r.end


@pytest.mark.parametrize(
    ("size", "step", "count"), [(60, 10, 6), (10, 5, 2), (5, 5, 1), (1, 0.25, 4)]
)
def test_hopping_window_count_when_size_is_a_multiple_of_step(
    size: float, step: float, count: int
) -> None:
    for ts in (0, 0.1, 7, 59.99, 1_700_000_000.123, -3.3):
        assert len(HoppingWindow(size, step).ranges(ts)) == count == math.ceil(size / step)


def test_expired() -> None:
    w = TumblingWindow(60, expires_s=3600)
    window = WindowRange(0.0, 60.0)
    assert not w.expired(window, 3659.9)
    assert w.expired(window, 3660)
    assert not TumblingWindow(60).expired(window, 1e12)


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: TumblingWindow(0), "size_s"),
        (lambda: TumblingWindow(-1), "size_s"),
        (lambda: TumblingWindow(math.inf), "size_s"),
        (lambda: TumblingWindow(1, expires_s=-1), "expires_s"),
        (lambda: HoppingWindow(10, 0), "step_s"),
        (lambda: HoppingWindow(10, 11), "step_s"),
        (lambda: HoppingWindow(0, 0), "size_s"),
        (lambda: HoppingWindow(3600, 0.001), "windows per event"),
    ],
)
def test_invalid_windows(factory: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        factory()  # type: ignore[operator]


def test_non_finite_timestamp_rejected() -> None:
    with pytest.raises(ValueError, match="finite"):
        TumblingWindow(1).current(math.nan)


def test_windows_are_hashable_values() -> None:
    assert TumblingWindow(60) == TumblingWindow(60.0)
    assert len({HoppingWindow(10, 5), HoppingWindow(10.0, 5.0)}) == 1
    assert TumblingWindow(60).step_s == 60.0


def _check(w: Window, ts: float) -> list[WindowRange]:
    ranges = w.ranges(ts)
    assert ranges
    for r in ranges:
        assert r.start <= ts < r.end
    assert ranges == sorted(ranges, key=lambda r: r.start)
    assert ranges[0] == w.earliest(ts)
    assert ranges[-1] == w.current(ts)
    return ranges


@given(durations, timestamps)
def test_tumbling_holds_timestamp_in_exactly_one_window(size: float, ts: float) -> None:
    w = TumblingWindow(size)
    (r,) = _check(w, ts)
    # The neighbours tile: the next window starts where this one ends.
    assert w.current(r.end) == WindowRange(r.end, w.current(r.end).end)


@given(durations, st.integers(min_value=1, max_value=50), timestamps)
def test_hopping_multiple_of_step(step: float, steps: int, ts: float) -> None:
    size = step * steps
    ranges = _check(HoppingWindow(size, step), ts)
    if size / step == steps:
        assert len(ranges) == steps


@given(durations, st.floats(min_value=1, max_value=50), timestamps)
def test_hopping_any_sizes(step: float, ratio: float, ts: float) -> None:
    size = step * ratio
    ranges = _check(HoppingWindow(size, step), ts)
    assert len(ranges) <= math.ceil(size / step) + 1


@given(durations, timestamps)
def test_window_start_belongs_to_its_own_window(size: float, ts: float) -> None:
    w = TumblingWindow(size)
    start = w.current(ts).start
    assert w.ranges(start) == [w.current(ts)]
