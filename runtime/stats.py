"""Plain counters for the hot path: no locks, no labels, no library calls.

The worker and the broker count in these (per batch, not per request
part); their web servers and the metrics topic read them when asked
(streams/web/metrics.py, runtime/broker/metrics.py), so an event costs a
few integer additions whether or not anyone scrapes.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

# Seconds per event: 10 µs (a counter bump) to 5 s (an agent awaiting a service).
LATENCY_BOUNDS_S: tuple[float, ...] = (
    0.00001,
    0.00005,
    0.0001,
    0.0005,
    0.001,
    0.005,
    0.01,
    0.05,
    0.1,
    0.5,
    1.0,
    5.0,
)


class LatencyStats:
    """A histogram of durations in fixed buckets (Prometheus' `le` bounds).

    `observe(seconds, n)` counts `n` events that took `seconds` in total, each
    as the average: a batch is timed once, not each of its events."""

    __slots__ = ("bounds", "buckets", "count", "sum_s")

    def __init__(self, bounds: Sequence[float] = LATENCY_BOUNDS_S) -> None:
        self.bounds = tuple(bounds)
        self.buckets = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.count = 0
        self.sum_s = 0.0

    def observe(self, seconds: float, n: int = 1) -> None:
        if n <= 0:
            return
        self.buckets[bisect.bisect_left(self.bounds, seconds / n)] += n
        self.count += n
        self.sum_s += seconds

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, events at or under it), ending with (+inf, count)."""
        out, running = [], 0
        for bound, n in zip((*self.bounds, float("inf")), self.buckets, strict=True):
            running += n
            out.append((bound, running))
        return out

    def quantile(self, q: float) -> float:
        """The upper bound of the bucket holding quantile `q` (0 with no events);
        the largest finite bound when it falls in +Inf."""
        if not 0 <= q <= 1:
            raise ValueError(f"quantile must be in [0, 1], got {q}")
        if self.count == 0:
            return 0.0
        wanted = q * self.count
        for bound, running in self.cumulative():
            if running >= wanted:
                return bound if bound != float("inf") else self.bounds[-1]
        return self.bounds[-1]
