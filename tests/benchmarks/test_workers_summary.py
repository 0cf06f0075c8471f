"""The worker benchmark's figures on runs too short to measure them: said so, never
divided by zero (no processes: the functions over recorded samples and results)."""

from __future__ import annotations

import pytest

from benchmarks import workers
from benchmarks.runs import Best
from benchmarks.worker_phases import steady_rate
from benchmarks.workers_report import TOO_SHORT, report


def _count(workers_: int, events_per_s: float, steady: float) -> dict[str, float]:
    return {
        "workers": float(workers_),
        "events": 1000.0,
        "elapsed_s": 2.0,
        "events_per_s": events_per_s,
        "assigned_s": 0.5,
        "first_commit_s": 0.7,
        "settled_s": 0.6,
        "steady_events_per_s": steady,
        "broker_cpu": 0.3,
        "broker_cpu_s_per_m": 1.0,
        "workers_cpu": 0.9,
        "workers_cpu_s_per_m": 2.0,
        "assignments": float(workers_),
        "table_sum": 1000.0,
        "clean_exits": float(workers_),
    }


def _results(steady_1: float, steady_2: float) -> tuple[dict, dict[int, Best]]:
    latency = {
        "events": 100.0,
        "target_rate": 100.0,
        "achieved_rate": 100.0,
        "duration_s": 1.0,
        "p50_ms": 1.0,
        "p99_ms": 2.0,
        "p999_ms": 3.0,
        "max_ms": 4.0,
        "partitions": 1.0,
        "broker_cpu": 0.1,
        "worker_cpu": 0.2,
    }
    results = {
        "machine": {"cpu": "cpu", "cores": "4", "python": "3.11", "platform": "linux"},
        "settings": {"events": 1000, "keys": 10, "partitions": 1, "runs": 1},
        "load_before": 0.5,
        "produce_s": 0.1,
        "latency": latency,
        "broker_log": [],
    }
    counts = {1: Best("events_per_s"), 2: Best("events_per_s")}
    counts[1].add(_count(1, 500.0, steady_1))
    counts[2].add(_count(2, 800.0, steady_2))
    return results, counts


def test_steady_rate_over_the_commits_after_the_last_assignment():
    samples = [(1.0, 0), (2.0, 100), (3.0, 500), (4.0, 950), (5.0, 1000)]
    assert steady_rate(samples, settled=1.5, done=5.0, events=1000) == pytest.approx(425.0)


def test_a_run_whose_last_assignment_came_after_every_commit_has_no_steady_rate():
    # a worker assigned again after the last sample: no commit to measure from
    samples = [(1.0, 0), (2.0, 1000)]
    assert steady_rate(samples, settled=2.5, done=2.0, events=1000) == 0.0


def test_a_run_with_one_commit_after_the_assignment_has_no_steady_rate():
    samples = [(1.0, 0), (2.0, 1000)]
    assert steady_rate(samples, settled=1.5, done=2.0, events=1000) == 0.0


def test_the_report_says_a_steady_rate_was_too_short_to_measure():
    results, counts = _results(steady_1=0.0, steady_2=900.0)
    workers.summarize(results, counts)
    assert results["steady_ratio"] is None
    assert results["ratio"] == pytest.approx(1.6)
    text = report(results)
    assert f"steady rate {TOO_SHORT}" in text
    assert f"(steady rates: {TOO_SHORT};" in text
    assert "1.60x" in text


def test_measured_steady_rates_are_reported_with_their_ratio():
    results, counts = _results(steady_1=600.0, steady_2=900.0)
    workers.summarize(results, counts)
    assert results["steady_ratio"] == pytest.approx(1.5)
    text = report(results)
    assert "steady rate 900 events/s" in text
    assert TOO_SHORT not in text


def test_a_latency_phase_with_no_event_after_the_warm_up_is_refused():
    with pytest.raises(SystemExit):
        workers.main(["--latency-s", "0.1", "--rate", "5"])
