"""A real `streams broker` process for tests: started on free loopback ports,
restartable on the same ports and data, stopped (and reaped) by pid in teardown.

`start_broker` is a fixture: a conftest that imports it offers it to its tests.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from child_process import REPO

READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 20.0
READY_LINE = "broker ready on "


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n: int) -> list[int]:
    """`n` distinct loopback ports nobody listens on right now."""
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(free_port())
    return sorted(ports)


WILDCARD_PORTS = range(20000, 32000)  # below Linux's ephemeral ports (32768-60999)


def free_wildcard_port() -> int:
    """A port free on every interface, outside the ephemeral range.

    A port from free_port() may meanwhile become the local port of some
    client's connection, which is no harm to a broker binding 127.0.0.1 but
    makes binding 0.0.0.0 fail: ports below the ephemeral range are given to
    no connection."""
    for port in random.sample(WILDCARD_PORTS, 100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port below the ephemeral range")


class BrokerProcess:
    """One `python -m streams broker` process, restartable on the same ports and data.

    Its stderr is drained by a thread for the whole life of the process (the pipe
    never fills); `log` holds every line, `ready` is set by the ready line.
    """

    def __init__(
        self,
        data_dir: Path,
        args: tuple[str, ...],
        plaintext_host: str = "127.0.0.1",
        http_scheme: str = "http",
    ) -> None:
        self.data_dir = data_dir
        self.http_scheme = http_scheme  # "https": the broker's args give --tls-cert/--tls-key
        self.plaintext_host = plaintext_host  # where the PLAINTEXT listener binds
        self.port = free_port() if plaintext_host == "127.0.0.1" else free_wildcard_port()
        self.http_port = free_port()
        while self.http_port == self.port:
            self.http_port = free_port()
        self.args = args
        self.log: list[str] = []
        self._proc: subprocess.Popen[str] | None = None
        self._drain: threading.Thread | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def http(self) -> str:
        return f"{self.http_scheme}://127.0.0.1:{self.http_port}"

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_text(self) -> str:
        return "".join(self.log)

    def start(self) -> None:
        assert not self.alive(), "broker already running"
        command = [
            sys.executable,
            "-m",
            "streams",
            "broker",
            "--data",
            str(self.data_dir),
            "--listen",
            f"{self.plaintext_host}:{self.port}",
            "--http",
            f"{self.http_scheme}://127.0.0.1:{self.http_port}",
            *self.args,
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._proc = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        ready = threading.Event()
        self._drain = threading.Thread(
            target=self._read_stderr, args=(self._proc, ready), daemon=True
        )
        self._drain.start()
        if not ready.wait(READY_TIMEOUT_S):
            self._reap(signal.SIGKILL)
            raise AssertionError(f"broker not ready in {READY_TIMEOUT_S}s:\n{self.log_text()}")
        if not self.alive():
            self._reap(signal.SIGKILL)
            raise AssertionError(f"broker exited at start:\n{self.log_text()}")

    def _read_stderr(self, proc: subprocess.Popen[str], ready: threading.Event) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.log.append(line)
            if line.startswith(READY_LINE):
                ready.set()
        ready.set()  # EOF: the process is gone; start() reports it

    def _reap(self, sig: int) -> int:
        proc, self._proc = self._proc, None
        assert proc is not None
        if proc.poll() is None:
            proc.send_signal(sig)
        try:
            code = proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait(STOP_TIMEOUT_S)
        if self._drain is not None:
            self._drain.join(STOP_TIMEOUT_S)
            self._drain = None
        assert proc.stderr is not None
        proc.stderr.close()
        return code

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed beyond what the flush policy did."""
        code = self._reap(signal.SIGKILL)
        assert code == -signal.SIGKILL

    def stop(self) -> None:
        """SIGTERM: a clean shutdown, which must exit 0."""
        code = self._reap(signal.SIGTERM)
        assert code == 0, f"broker exited {code}:\n{self.log_text()}"

    def restart(self) -> None:
        """Stop (if running) and start again on the same ports and data directory."""
        if self.alive():
            self.stop()
        elif self._proc is not None:
            self._reap(signal.SIGKILL)
        self.start()

    def close(self) -> None:
        """Teardown: a running broker must still stop cleanly; a dead one is reaped.
        Whatever clients did, the broker logged no unexpected exception."""
        if self.alive():
            self.stop()
        elif self._proc is not None:
            self._reap(signal.SIGKILL)
        assert "Traceback" not in self.log_text(), self.log_text()


@pytest.fixture
def start_broker(tmp_path: Path) -> Iterator[Callable[..., BrokerProcess]]:
    started: list[BrokerProcess] = []

    def start(
        *args: str, data_dir: Path | None = None, plaintext_host: str = "127.0.0.1"
    ) -> BrokerProcess:
        process = BrokerProcess(data_dir or tmp_path / f"data{len(started)}", args, plaintext_host)
        started.append(process)
        process.start()
        return process

    yield start
    for process in started:
        process.close()
