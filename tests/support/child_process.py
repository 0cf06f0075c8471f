"""A child process for tests: its stderr lines collected by a thread for its
whole life (the pipe never fills), and reaped by pid whatever the test did.
The worker and broker process helpers build on it."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STOP_TIMEOUT_S = 20.0


class ChildProcess:
    def __init__(
        self, command: list[str], env: dict[str, str], ready_line: str | None = None
    ) -> None:
        """Start `command` in the repository with `env` over os.environ; a stderr
        line starting with `ready_line` sets `ready` (so does the end of stderr)."""
        self.log: list[str] = []
        self.ready = threading.Event()
        self._ready_line = ready_line
        self.proc = subprocess.Popen(
            command,
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
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
            if self._ready_line is not None and line.startswith(self._ready_line):
                self.ready.set()
        self.ready.set()

    def text(self) -> str:
        return "".join(self.log)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def reap(self, sig: int, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """Send `sig` (if still running), wait for the exit (SIGKILL past the
        timeout) and the last stderr line; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(timeout_s)
        self._drain.join(timeout_s)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return code
