"""Logs a person can read: a worker's banner, topic creation and table recovery
summarised in one line each, a periodic status line (events/s, lag,
rebalances); the per-item detail only at debug."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from waiting import wait_until

from streams.cli import cli

APPS = Path(__file__).parent / "apps"
STATUS = re.compile(r"status app=relay events/s=([\d.]+) lag=(\d+) partitions=2 rebalances=0")


@pytest.mark.slow
def test_a_workers_banner_summaries_and_status_lines(tmp_path, worker_process):
    data = tmp_path / "data"
    args = ("-l", "info", "--status-interval", "0.3")
    worker = worker_process("relay_app", APPS, *args, env={"RELAY_APP_DATA": str(data)})
    worker.wait_log("worker started app=relay")
    for i in range(5):
        r = CliRunner().invoke(cli, ["send", "words", f"w{i}", "--data", str(data)])
        assert r.exit_code == 0, r.output

    def busy_then_caught_up() -> bool:
        rates = [(float(m[1]), int(m[2])) for m in map(STATUS.search, worker.log) if m]
        return any(rate > 0 for rate, _ in rates) and rates[-1] == (0.0, 0)

    wait_until(busy_then_caught_up, timeout_s=60, what=lambda: worker.text())
    assert worker.stop() == 0, worker.text()
    text = worker.text()
    assert "streams 0.1.0 worker" in text and f"data        {data}" in text
    assert "log served  kafka://127.0.0.1:" in text
    assert "topics app=relay in_log=5 created=relay-dead-letters,shouts,words" in text
    for detail in ("topic created", "group coordinator started", "limits open_files"):
        assert detail not in text, text


@pytest.mark.slow
def test_table_recovery_is_one_line_per_table(tmp_path, worker_process, monkeypatch):
    monkeypatch.syspath_prepend(str(APPS))
    env = {"COUNT_APP_DATA": str(tmp_path)}
    tables = ["tables", "-A", "count_app", "--data", str(tmp_path)]
    for _ in range(2):  # the second start recovers what the first wrote
        worker = worker_process("count_app", APPS, "-l", "info", env=env)
        worker.wait_log("worker started app=counter")
        r = CliRunner().invoke(cli, ["send", "events", "1", "--key", "k", "--data", str(tmp_path)])
        assert r.exit_code == 0, r.output
        # `streams tables` reaches the running worker for the changelog's size
        wait_until(
            lambda: "changelog_records=" in CliRunner().invoke(cli, tables).stdout,
            timeout_s=30,
            what="the table's changelog size",
        )
        assert worker.stop() == 0, worker.text()
    r = CliRunner().invoke(cli, tables)  # and, the worker gone, from the log itself
    assert (
        "counts\ttable\tchangelog=counter-counts-changelog\tchangelog_records=2" in r.stdout
    )  # k=1, k=2
    lines = [line for line in worker.log if "recovered table=counts" in line]
    assert len(lines) == 1, worker.text()
    assert " partitions=8 records=0 " in lines[0], lines[0]  # the store kept its write
    assert "detail=0:0:1-1," in lines[0] or ",0:0:1-1" in lines[0], lines[0]
    assert "partition=" not in worker.text()  # the per-partition lines are debug
