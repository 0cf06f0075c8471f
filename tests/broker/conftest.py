"""Fixtures for the broker's integration tests: a real `streams broker` process.

`broker` is a broker on free loopback ports (Kafka and HTTP) with a fresh data
directory; `start_broker(*args)` starts one with extra command-line options
(`--flush batch`, `--no-auto-create`, `--partitions N`), on `data_dir=` if
given, its PLAINTEXT listener on `plaintext_host=` (default 127.0.0.1).
`secure_broker` (one per test module) adds SASL_SSL, SASL_PLAINTEXT and SSL
listeners, with certificates from `pki` (made once per session) and a users
file tests add their users to. Every process started here is stopped in
teardown, whatever the test did to it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from secure_setup import Listeners, Pki, add_user, broker_args, free_wildcard_port, make_pki

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 20.0
READY_LINE = "broker ready on "


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BrokerProcess:
    """One `python -m streams broker` process, restartable on the same ports and data.

    Its stderr is drained by a thread for the whole life of the process (the pipe
    never fills); `log` holds every line, `ready` is set by the ready line.
    """

    def __init__(
        self, data_dir: Path, args: tuple[str, ...], plaintext_host: str = "127.0.0.1"
    ) -> None:
        self.data_dir = data_dir
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
        return f"http://127.0.0.1:{self.http_port}"

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
            f"127.0.0.1:{self.http_port}",
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


@pytest.fixture
def broker(start_broker: Callable[..., BrokerProcess]) -> BrokerProcess:
    return start_broker()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@dataclass
class SecureBroker:
    process: BrokerProcess
    pki: Pki
    users_file: Path
    listeners: Listeners
    passwords: dict[str, str]

    def add_user(self, name: str) -> str:
        """Add a user (the running broker reads the file again); returns its password."""
        password = f"pässword-of-{name}-{len(self.passwords)}"
        add_user(self.users_file, name, password)
        self.passwords[name] = password
        return password

    def log_lines(self, *texts: str) -> list[str]:
        return [line for line in self.process.log if all(t in line for t in texts)]


@pytest.fixture(scope="module")
def secure_broker(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    directory = tmp_path_factory.mktemp("secure")
    users_file = directory / "users.json"
    add_user(users_file, "admin", "admin-password")
    ports = [free_port() for _ in range(3)]
    while len(set(ports)) < 3:
        ports = [free_port() for _ in range(3)]
    listeners = Listeners(*ports)
    process = BrokerProcess(directory / "data", broker_args(pki, users_file, listeners))
    secure = SecureBroker(process, pki, users_file, listeners, {"admin": "admin-password"})
    process.start()
    try:
        yield secure
    finally:
        process.close()
        log = process.log_text()
        leaked = [p for p in secure.passwords.values() if p in log]
        assert not leaked, f"passwords in the broker's log: {leaked}"
