"""The peers benchmark's result checks and table (the benchmark itself is too
slow for the suite: python -m benchmarks.peers)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from benchmarks.peers import checks, report, spec
from benchmarks.peers.probe import Probe

TRUTH = spec.truth(1000)


def test_truth_follows_the_generated_events() -> None:
    events = list(spec.events(1000))
    assert TRUTH.counts == dict(Counter(e.key for e in events))
    assert TRUTH.forwarded == sum(e.amount % 2 == 0 for e in events)
    assert sum(TRUTH.windows.values()) == 1000
    # 1000 events at two per millisecond: all in the first 10-second window
    assert {k.split("|")[1] for k in TRUTH.windows} == {str(spec.BASE_TS_MS // 1000)}
    assert 80 <= len(events[0].encode(1_764_547_200_012_345_678)) <= 100


@pytest.mark.parametrize(
    ("workload", "result", "output", "wrong"),
    [
        ("stateless", {}, TRUTH.forwarded, ""),
        ("stateless", {}, TRUTH.forwarded - 1, "output records"),
        ("join", {}, TRUTH.events, ""),
        ("join", {}, None, "joined records"),
        ("count", {"counts": TRUTH.counts}, None, ""),
        ("count", {"counts": {**TRUTH.counts, "user-00000": -1}}, None, "1 of"),
        ("count", {}, None, "no counts"),
        ("window", {"windows": TRUTH.windows}, None, ""),
        ("window", {"windows": {**TRUTH.windows, "nobody|0": 1}}, None, "1 of"),
    ],
)
def test_a_result_counts_only_when_it_equals_the_truth(
    workload: str, result: dict[str, object], output: int | None, wrong: str
) -> None:
    found = checks.check(workload, {"events": TRUTH.events, **result}, TRUTH, output)
    assert (found == "") if not wrong else (wrong in found)


def test_a_run_that_saw_fewer_events_fails_whatever_it_counted() -> None:
    found = checks.check("count", {"events": 999, "counts": TRUTH.counts}, TRUTH, None)
    assert found == "saw 999 events of 1000"
    # pathway times fewer events than it saw (the first minibatch is not timed)
    assert (
        checks.check("count", {"events": 10, "seen": 1000, "counts": TRUTH.counts}, TRUTH, None)
        == ""
    )


def test_the_probe_times_the_first_to_the_last_event(tmp_path: Path) -> None:
    probe = Probe(3, str(tmp_path / "result.json"))
    assert [probe.tick() for _ in range(4)] == [False, False, True, False]
    probe.done(counts={"a": 3})
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["counts"] == {"a": 3} and result["events"] == 4
    figures = checks.figures({**result, "events": 3})
    assert figures["events"] == 3 and figures["elapsed_s"] >= 0


def test_the_table_shows_ratios_failures_and_skips() -> None:
    runs = [
        {
            "system": "streams-kafka",
            "workload": "count",
            "events": 200,
            "error": "",
            "events_per_s": 300_000.0,
            "cpu_s_per_m": 3.0,
        },
        {
            "system": "streams-log",
            "workload": "count",
            "events": 200,
            "error": "",
            "events_per_s": 400_000.0,
            "cpu_s_per_m": 2.5,
        },
        {
            "system": "quix",
            "workload": "count",
            "events": 200,
            "error": "",
            "events_per_s": 60_000.0,
            "cpu_s_per_m": 30.0,
        },
        {"system": "bytewax", "workload": "count", "events": 200, "error": "3 of 10 counts wrong"},
    ]
    labels = {
        "streams-kafka": "streams, kafka://",
        "streams-log": "streams, log://",
        "quix": "quix",
        "bytewax": "bytewax",
        "faust": "faust",
    }
    skipped = {"faust": {"count": "no venv"}}
    latencies = [{"system": "quix", "error": "", "p99_ms": 9.5, "p50_ms": 2.0}]
    rows = report.rows(runs, latencies, skipped, labels, ("count",))
    by = {r["system"]: r for r in rows}
    assert by["quix"]["kafka:// ÷ it"] == "5.00x" and by["quix"]["log:// ÷ it"] == "6.67x"
    assert by["bytewax"]["events/s"] == "FAILED: 3 of 10 counts wrong"
    assert "kafka:// ÷ it" not in by["bytewax"]
    assert by["faust"]["events/s"] == "not run: no venv"
    assert "p99 ms" not in by["quix"]  # latency shows on the stateless rows only
    table = report.markdown(rows, 10_000).splitlines()
    assert table[0].startswith("| workload | system | events | events/s |")
    assert len(table) == 2 + len(rows)
    assert "| 60,000 | 30.0 |" in table[4]
