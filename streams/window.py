"""Window math for windowed tables: which time windows hold a timestamp. No I/O.

Times are seconds (float). Windows are half-open, ``[start, end)``, and their starts
are aligned to multiples of the step since the epoch (a tumbling window's step is
its size). Window number ``k`` starts at ``k * step_s``.

Invariants, for any finite timestamp ``t``:
- every range returned by ``ranges(t)`` has ``start <= t < end``;
- ``ranges(t)`` is ordered oldest first: ``earliest(t)`` is its first element and
  ``current(t)`` its last;
- a timestamp exactly at a window's start belongs to that window, and when the size
  is a multiple of the step (always, for tumbling windows) windows tile the timeline:
  a window's end is exactly the start of the window ``size / step`` steps later, so
  it does not hold that timestamp.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

__all__ = ["WINDOWS_PER_TIMESTAMP_MAX", "HoppingWindow", "TumblingWindow", "Window", "WindowRange"]

# A hopping window puts each event in about size/step windows, each a table update.
WINDOWS_PER_TIMESTAMP_MAX = 10_000


@dataclass(frozen=True, slots=True)
class WindowRange:
    start: float
    end: float


class Window(Protocol):
    size_s: float
    expires_s: float | None

    def ranges(self, timestamp: float) -> list[WindowRange]:
        """Every window holding `timestamp`, oldest first."""
        ...

    def current(self, timestamp: float) -> WindowRange:
        """The newest window holding `timestamp`."""
        ...

    def earliest(self, timestamp: float) -> WindowRange:
        """The oldest window holding `timestamp`."""
        ...

    def delta(self, timestamp: float, d_s: float) -> WindowRange:
        """The newest window holding `timestamp - d_s`."""
        ...

    def expired(self, window: WindowRange, latest_timestamp: float) -> bool:
        """True once `latest_timestamp` is `expires_s` or more past the window's end."""
        ...

    def steady(self, timestamp: float) -> tuple[float, float] | None:
        """An interval around `timestamp` where `ranges` does not change, if known."""
        ...


def _check_positive(name: str, value: float) -> float:
    value = float(value)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return value


def _check_expires(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    if not (value >= 0 and not math.isnan(value)):
        raise ValueError(f"expires_s must be >= 0 or None, got {value!r}")
    return value


def _newest_index(timestamp: float, step: float) -> int:
    """The largest k with k * step <= timestamp, exact under float rounding."""
    k = math.floor(timestamp / step)
    while k * step > timestamp:
        k -= 1
    while (k + 1) * step <= timestamp:
        k += 1
    return k


class _Grid:
    """Windows of `size` every `step`; shared by tumbling and hopping windows."""

    __slots__ = ()

    size_s: float
    step_s: float
    expires_s: float | None

    def _span(self) -> int:
        """How many steps a window spans when the size is a multiple of the step, else 0."""
        steps = self.size_s / self.step_s
        return int(steps) if steps.is_integer() and steps * self.step_s == self.size_s else 0

    def _range(self, k: int, span: int) -> WindowRange:
        start = k * self.step_s
        end = (k + span) * self.step_s if span else start + self.size_s
        return WindowRange(start, end)

    def _indexes(self, timestamp: float) -> tuple[int, int, int]:
        """(oldest k, newest k, span) of the windows holding `timestamp`."""
        if not math.isfinite(timestamp):
            raise ValueError(f"timestamp must be finite, got {timestamp!r}")
        step = self.step_s
        newest = _newest_index(timestamp, step)
        span = self._span()
        if span:
            return newest - span + 1, newest, span
        size = self.size_s
        oldest = math.floor((timestamp - size) / step) + 1
        while oldest * step + size <= timestamp:
            oldest += 1
        while oldest > newest or (oldest - 1) * step + size > timestamp:
            oldest -= 1
        return oldest, newest, span

    def ranges(self, timestamp: float) -> list[WindowRange]:
        oldest, newest, span = self._indexes(timestamp)
        return [self._range(k, span) for k in range(oldest, newest + 1)]

    def steady(self, timestamp: float) -> tuple[float, float] | None:
        """`[lo, hi)` around `timestamp` where `ranges` gives the same windows,
        when the size is a multiple of the step (else None: no such promise).
        Then the windows depend only on the newest k, and it holds from
        ``k * step`` up to ``(k + 1) * step``."""
        _, newest, span = self._indexes(timestamp)
        if not span:
            return None
        return newest * self.step_s, (newest + 1) * self.step_s

    def current(self, timestamp: float) -> WindowRange:
        _, newest, span = self._indexes(timestamp)
        return self._range(newest, span)

    def earliest(self, timestamp: float) -> WindowRange:
        oldest, _, span = self._indexes(timestamp)
        return self._range(oldest, span)

    def delta(self, timestamp: float, d_s: float) -> WindowRange:
        return self.current(timestamp - d_s)

    def expired(self, window: WindowRange, latest_timestamp: float) -> bool:
        expires = self.expires_s
        return expires is not None and window.end + expires <= latest_timestamp


@dataclass(frozen=True, slots=True)
class TumblingWindow(_Grid):
    """Back-to-back windows of `size_s`: each timestamp falls in exactly one."""

    size_s: float
    expires_s: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "size_s", _check_positive("size_s", self.size_s))
        object.__setattr__(self, "expires_s", _check_expires(self.expires_s))

    @property
    def step_s(self) -> float:  # type: ignore[override]
        return self.size_s

    def _span(self) -> int:
        return 1

    def _indexes(self, timestamp: float) -> tuple[int, int, int]:
        if not math.isfinite(timestamp):
            raise ValueError(f"timestamp must be finite, got {timestamp!r}")
        k = _newest_index(timestamp, self.size_s)
        return k, k, 1


@dataclass(frozen=True, slots=True)
class HoppingWindow(_Grid):
    """Windows of `size_s` starting every `step_s`: they overlap when step < size."""

    size_s: float
    step_s: float
    expires_s: float | None = None

    def __post_init__(self) -> None:
        size = _check_positive("size_s", self.size_s)
        step = _check_positive("step_s", self.step_s)
        if step > size:
            raise ValueError(f"step_s must be <= size_s, got step_s={step!r} size_s={size!r}")
        if size / step > WINDOWS_PER_TIMESTAMP_MAX:
            raise ValueError(
                f"size_s / step_s must be <= {WINDOWS_PER_TIMESTAMP_MAX} (windows per event), "
                f"got size_s={size!r} step_s={step!r}"
            )
        object.__setattr__(self, "size_s", size)
        object.__setattr__(self, "step_s", step)
        object.__setattr__(self, "expires_s", _check_expires(self.expires_s))
