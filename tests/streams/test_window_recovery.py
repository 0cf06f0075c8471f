"""A crash mid-window and recovery from the changelogs give the results of an
uninterrupted run, for every window kind (tumbling with grace, hopping, session,
sliding) in one app (tests/streams/apps/windows_app.py), through the test driver."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from typing import Any

import pytest

import streams
from runtime.client.errors import TransactionAbortableError
from streams.driver import TestDriver

APPS = Path(__file__).parent / "apps"
_spec = importlib.util.spec_from_file_location("windows_app", APPS / "windows_app.py")
assert _spec is not None and _spec.loader is not None
windows_app = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(windows_app)
KINDS, KEYS, events = windows_app.KINDS, windows_app.KEYS, windows_app.events


def window_app(tmp_path, guarantee: str = "exactly_once") -> tuple[streams.App, Any, Any]:
    app = streams.App("wrec", broker="memory://", data_dir=str(tmp_path))
    app.set_processing_guarantee(guarantee)
    clicks, finals = windows_app.define(app)
    return app, clicks, finals


async def run(
    tmp_path, sent: list[tuple[float, str, int]], plan: dict[int, str], guarantee: str
) -> tuple[dict[str, Any], list[Any], dict[str, int]]:
    """Send `sent`; after event i, do plan[i] ("commit" or "crash"); close every
    window at the end. The tables (before that), the final results, the late drops."""
    app, clicks, finals = window_app(tmp_path, guarantee)
    async with TestDriver(app) as driver:
        for i, (ts, key, n) in enumerate(sent):
            await driver.send(clicks, n, key=key, timestamp=ts)
            if plan.get(i) == "commit":
                await driver.commit()
            elif plan.get(i) == "crash":
                await driver.crash()
            elif plan.get(i) == "abort":
                await abort_a_commit(driver)
        tables = {kind: sorted(app.tables[kind].items()) for kind in KINDS}
        await driver.advance_stream_time(by=100)  # closes every window
        await driver.commit()
        emitted = driver.read(finals)
    results = sorted((r.key, r.value["start"], r.value["end"], r.value["value"]) for r in emitted)
    drops = {kind: app.tables[kind].windowed.late_dropped for kind in KINDS}
    return tables, results, drops


def partition_of(tmp_path) -> dict[str, int]:
    """The partition of each key's clicks (and so of its windows)."""
    _, clicks, _ = window_app(tmp_path)
    return {key: clicks.partition_for(clicks.encode_key(key)) for key in KEYS}


def tumbling_model(
    sent: list[tuple[float, str, int]], partitions: dict[str, int]
) -> dict[tuple[str, float], int]:
    out: dict[tuple[str, float], int] = {}
    stream_time: dict[int, float] = {}
    for t, key, n in sent:
        p = partitions[key]
        now = stream_time[p] = max(stream_time.get(p, t), t)
        start = (t // 10) * 10
        if start + 10 + 5 > now:
            out[(key, start)] = out.get((key, start), 0) + n
    return out


PLANS = {
    "crash right after a commit": {9: "commit", 10: "crash", 25: "commit"},
    "crash long after a commit": {5: "commit", 17: "crash", 30: "commit", 36: "crash"},
    "crash before any commit": {12: "crash", 20: "commit"},
    "aborted transactions": {6: "commit", 14: "abort", 22: "abort", 30: "commit"},
}


async def abort_a_commit(driver: TestDriver) -> None:
    """A commit whose transaction the broker refuses: the worker aborts it and
    processes again, in the same process, what followed the last commit."""
    commits = driver.worker.transactions
    assert commits is not None
    writer = commits.writer
    real_commit, aborts = writer.commit, commits.aborts

    async def refuse(offsets, group):
        raise TransactionAbortableError("injected by the test")

    writer.commit = refuse  # type: ignore[method-assign]
    try:
        await driver.commit()
    finally:
        writer.commit = real_commit  # type: ignore[method-assign]
    assert commits.aborts == aborts + 1
    await driver.settle()


@pytest.mark.parametrize("plan", list(PLANS), ids=list(PLANS))
def test_exactly_once_crash_mid_window_gives_the_uninterrupted_results(tmp_path, plan):
    sent = events(7)
    expected = asyncio.run(run(tmp_path / "whole", sent, {}, "exactly_once"))
    tables, results, drops = expected
    assert all(tables[kind] for kind in KINDS) and len(results) > 40
    assert sum(drops.values()) > 0  # the input has late events, and they count
    # the uninterrupted run itself, against a model of tumbling windows with grace
    # (stream time per partition: the partition of each key, as the driver put it)
    partitions = partition_of(tmp_path / "model")
    assert len(set(partitions.values())) == 2
    assert dict(tables["tumbling"]) == tumbling_model(sent, partitions)
    crashed = asyncio.run(run(tmp_path / "crashed", sent, PLANS[plan], "exactly_once"))
    # late_dropped is a metric of this process: events dropped, then processed again
    # after the crash, count twice
    assert crashed[:2] == expected[:2]


def test_at_least_once_crash_gives_the_same_tables_and_repeats_only_finals(tmp_path):
    sent = events(11)
    plan = PLANS["crash long after a commit"]
    tables, results, _ = asyncio.run(run(tmp_path / "whole", sent, {}, "at_least_once"))
    crashed = asyncio.run(run(tmp_path / "crashed", sent, plan, "at_least_once"))
    assert crashed[0] == tables
    assert set(crashed[1]) == set(results) and len(crashed[1]) >= len(results)
