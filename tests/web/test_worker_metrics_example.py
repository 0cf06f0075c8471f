"""The worker_metrics example as a user runs it: its worker writes its own metrics
into `streams-metrics`, its agent aggregates them, and the web server answers the
aggregate for that very worker."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from waiting import wait_until
from web_procs import WorkerProcess

pytestmark = pytest.mark.slow

TIMEOUT_S = 60.0


def test_the_example_aggregates_its_own_worker(tmp_path: Path) -> None:
    worker = WorkerProcess(
        "examples.worker_metrics", tmp_path / "data", env={"MONITOR_INTERVAL_S": "0.5"}
    )
    try:
        key = f"monitor/{socket.gethostname()}:{worker.proc.pid}/aggregate"

        def row() -> dict | None:
            status, body = worker.get(f"/tables/agent-health/{key}")
            return body["value"] if status == 200 and body["value"]["events_per_s"] > 0 else None

        # the agent reads the reports, so from the second one on it has events/s
        found = wait_until(row, timeout_s=TIMEOUT_S, what=lambda: f"{key}:\n{worker.text()}")
        assert found["lag"] >= 0 and found["p99_ms"] > 0
    finally:
        code = worker.stop()
    assert code == 0, worker.text()
    assert "Traceback" not in worker.text(), worker.text()
