"""Worker processes of benchmarks.count_app for the worker benchmarks.

Each worker is `python -m streams -A benchmarks.count_app worker --broker
kafka://...` with its own data directory; its stderr is drained by a thread
that notes when each assignment is logged. `running_workers` stops every
worker it started (SIGTERM, SIGKILL after STOP_TIMEOUT_S), whatever happened.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from benchmarks.broker_process import STOP_TIMEOUT_S

ASSIGNED_LINE = "INFO streams.worker: assigned app="  # a worker has its partitions
REPO = Path(__file__).resolve().parents[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class WorkerProcess:
    """A worker of benchmarks.count_app; stderr drained by a thread, which notes
    when each assignment is logged."""

    def __init__(self, bootstrap: str, data_dir: Path, env: dict[str, str]) -> None:
        self.log: list[str] = []
        self.assigned_at: list[float] = []  # time.monotonic() of each "assigned" line
        self.started_at = time.monotonic()
        self.exit_code: int | None = None
        self._cpu_s = 0.0
        command = [sys.executable, "-m", "streams", "-A", "benchmarks.count_app", "worker"]
        command += ["--broker", f"kafka://{bootstrap}", "--data", str(data_dir), "-l", "info"]
        self._proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, cwd=REPO, env={**os.environ, **env},
        )  # fmt: skip
        self._drain = threading.Thread(target=self._read, name="worker-stderr", daemon=True)
        self._drain.start()

    def _read(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            self.log.append(line)
            if ASSIGNED_LINE in line:
                self.assigned_at.append(time.monotonic())

    def alive(self) -> bool:
        return self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll()

    def cpu_s(self) -> float:
        """CPU seconds used so far (the last reading once the process is gone)."""
        if self.alive():
            with suppress(OSError):  # it exited just now
                self._cpu_s = cpu_seconds(self._proc.pid)
        return self._cpu_s

    def terminate(self) -> None:
        if self._proc.poll() is None:
            self.cpu_s()
            self._proc.send_signal(signal.SIGTERM)

    def wait(self) -> int:
        """Wait for the exit after terminate() (SIGKILL after STOP_TIMEOUT_S)."""
        try:
            self.exit_code = self._proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self.exit_code = self._proc.wait()
        self._drain.join(STOP_TIMEOUT_S)
        if self._proc.stderr is not None:
            self._proc.stderr.close()
        return self.exit_code

    def tail(self, lines: int = 20) -> str:
        return "".join(self.log[-lines:])


@contextmanager
def running_workers(
    bootstrap: str, count: int, tmp: Path, env: dict[str, str]
) -> Iterator[list[WorkerProcess]]:
    """`count` workers, each with its own data directory; all stopped on exit."""
    workers: list[WorkerProcess] = []
    try:
        for i in range(count):
            workers.append(WorkerProcess(bootstrap, tmp / f"worker-{i}", env))
        yield workers
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait()


def check_alive(workers: list[WorkerProcess]) -> None:
    for w in workers:
        if not w.alive():
            raise RuntimeError(f"a worker exited ({w.returncode}):\n{w.tail()}")
