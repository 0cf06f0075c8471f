"""LatencyStats: the fixed-bucket histogram the hot path counts in."""

from __future__ import annotations

import pytest

from runtime.stats import LatencyStats


def test_a_batch_counts_each_event_at_the_average() -> None:
    stats = LatencyStats(bounds=(0.001, 0.01, 0.1))
    stats.observe(0.05, 10)  # 5 ms each
    stats.observe(2.0)  # past every bound
    assert stats.count == 11
    assert stats.sum_s == pytest.approx(2.05)
    assert stats.cumulative() == [(0.001, 0), (0.01, 10), (0.1, 10), (float("inf"), 11)]


def test_quantiles_are_bucket_bounds() -> None:
    stats = LatencyStats(bounds=(0.001, 0.01, 0.1))
    assert stats.quantile(0.99) == 0.0  # nothing observed
    for _ in range(98):
        stats.observe(0.0005)
    stats.observe(0.05, 2)
    assert stats.quantile(0.5) == 0.001
    assert stats.quantile(0.99) == 0.1
    stats.observe(9.0, 100)
    assert stats.quantile(0.99) == 0.1  # +Inf is shown as the largest bound


def test_an_empty_batch_or_a_bad_quantile() -> None:
    stats = LatencyStats()
    stats.observe(1.0, 0)
    assert stats.count == 0
    with pytest.raises(ValueError, match="quantile"):
        stats.quantile(1.5)
