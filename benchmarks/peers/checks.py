"""Checking a run's result against the truth, and turning it into figures.

A run's figure counts only if its result is right: the events the probe saw,
and the output records, counts per key or window counts, each equal to the
truth (benchmarks.peers.spec). Pure functions, so a unit test pins them.
"""

from __future__ import annotations

from typing import Any

from benchmarks.peers.spec import Truth


def check(workload: str, result: dict[str, Any], truth: Truth, output_records: int | None) -> str:
    """'' when the result is right, else what is wrong (shown instead of a figure)."""
    seen = result.get("seen", result.get("events"))  # "events": those timed
    if seen != truth.events:
        return f"saw {seen} events of {truth.events}"
    if workload == "stateless":
        return _same_count("output records", output_records, truth.forwarded)
    if workload == "join":
        return _same_count("joined records", output_records, truth.events)
    if workload == "count":
        return _same_table("count", result.get("counts"), truth.counts)
    if workload == "window":
        return _same_table("window count", result.get("windows"), truth.windows)
    raise ValueError(f"unknown workload {workload!r}")


def _same_count(what: str, found: int | None, expected: int) -> str:
    return "" if found == expected else f"{found} {what}, expected {expected}"


def _same_table(what: str, found: dict[str, int] | None, expected: dict[str, int]) -> str:
    if found is None:
        return f"no {what}s reported"
    wrong = [k for k in expected.keys() | found.keys() if found.get(k) != expected.get(k)]
    if not wrong:
        return ""
    k = sorted(wrong)[0]
    return (
        f"{len(wrong)} of {len(expected)} {what}s wrong "
        f"(e.g. {k}: {found.get(k)}, expected {expected.get(k)})"
    )


def figures(result: dict[str, Any]) -> dict[str, float]:
    """events/s from the first to the last event, and CPU seconds per 1M events."""
    events = float(result["events"])
    elapsed_s = (result["last_ns"] - result["first_ns"]) / 1e9
    return {
        "events": events,
        "elapsed_s": elapsed_s,
        "events_per_s": events / elapsed_s if elapsed_s > 0 else 0.0,
        "cpu_s_per_m": float(result["cpu_s"]) * 1e6 / events if events else 0.0,
    }


def percentile(sorted_values: list[float], share: float) -> float:
    if not sorted_values:
        raise ValueError("percentile of no values")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * share))]
