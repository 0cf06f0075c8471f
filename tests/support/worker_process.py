"""A real `streams -A APP worker` process for tests: its stderr drained by a
thread for its whole life (the pipe never fills), stopped and reaped by pid.

`worker_process` is a fixture (a conftest that imports it offers it): it
starts workers and stops, in teardown, every one still running.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from child_process import ChildProcess
from waiting import wait_until

READY_TIMEOUT_S = 60.0  # two cores shared by several test runs: starts can be slow
STOP_TIMEOUT_S = 30.0


class WorkerProcess(ChildProcess):
    def __init__(self, app: str, app_dir: Path, args: tuple[str, ...], env: dict[str, str]) -> None:
        command = [sys.executable, "-m", "streams", "-A", app, "worker", *args]
        super().__init__(command, {"PYTHONPATH": str(app_dir), **env})

    def wait_log(self, fragment: str, timeout_s: float = READY_TIMEOUT_S) -> str:
        """The first stderr line containing `fragment` (fails if the worker exits)."""

        def found() -> str | None:
            for line in list(self.log):
                if fragment in line:
                    return line
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited {self.proc.returncode}:\n{self.text()}")
            return None

        return wait_until(
            found, timeout_s=timeout_s, what=lambda: f"{fragment!r} in\n{self.text()}"
        )

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send `sig` if it still runs; wait for the exit (SIGKILL after a bound)."""
        return self.reap(sig, STOP_TIMEOUT_S)


@pytest.fixture
def worker_process() -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(
        app: str, app_dir: Path, *args: str, env: dict[str, str] | None = None
    ) -> WorkerProcess:
        worker = WorkerProcess(app, app_dir, args, env or {})
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop(signal.SIGKILL)
