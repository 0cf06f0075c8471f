"""A real `streams -A APP worker` process for tests: its stderr drained by a
thread for its whole life (the pipe never fills), stopped and reaped by pid.

`worker_process` is a fixture (a conftest that imports it offers it): it
starts workers and stops, in teardown, every one still running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 60.0  # two cores shared by several test runs: starts can be slow
STOP_TIMEOUT_S = 30.0


class WorkerProcess:
    def __init__(self, app: str, app_dir: Path, args: tuple[str, ...], env: dict[str, str]) -> None:
        self.log: list[str] = []
        command = [sys.executable, "-m", "streams", "-A", app, "worker", *args]
        self.proc = subprocess.Popen(
            command,
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(app_dir), **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._drain = threading.Thread(target=self._read, daemon=True)
        self._drain.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)

    def text(self) -> str:
        return "".join(self.log)

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
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(STOP_TIMEOUT_S)
        self._drain.join(STOP_TIMEOUT_S)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return code


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
