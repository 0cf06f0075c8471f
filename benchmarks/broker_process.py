"""`python -m streams broker` as a process of its own, for the benchmarks.

`running_broker(flush)` starts one on a free loopback port with a fresh data
directory and stops it (SIGTERM, SIGKILL after STOP_TIMEOUT_S) whatever happened;
`BrokerProcess.cpu_s()` reads its CPU seconds from /proc; with `http=True` the
broker also serves /metrics and `requests_by_api()` reads the requests it has
answered, by API. `create_topic` and
`high_watermarks` are the admin calls the benchmarks make on it.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0
PHASE_TIMEOUT_S = 120.0
READY_LINE = "broker ready on "

CLIENT_CONFIG: dict[str, Any] = {"log_level": 4}  # warnings and worse on stderr
_REQUESTS = re.compile(r'^streams_broker_requests_total\{api="([a-z_]+)"\} ([0-9.e+]+)$', re.M)


class BrokerProcess:
    """`python -m streams broker` on a free loopback port; stderr drained by a thread."""

    def __init__(self, data_dir: Path, flush: str, *, http: bool = False) -> None:
        self.data_dir = data_dir
        self.flush = flush
        self.http_port = _free_port() if http else 0
        self.bootstrap = ""
        self.log: list[str] = []
        self._proc: subprocess.Popen[str] | None = None
        self._ready = threading.Event()
        self._drainer: threading.Thread | None = None

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "streams",
            "broker",
            "--data",
            str(self.data_dir),
            "--listen",
            "127.0.0.1:0",  # the broker binds a free port and names it when ready
            "--flush",
            self.flush,
            "--loglevel",
            "warning",
            *(["--http", f"127.0.0.1:{self.http_port}"] if self.http_port else []),
        ]
        self._proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, cwd=Path(__file__).resolve().parents[1],
        )  # fmt: skip
        self._drainer = threading.Thread(target=self._drain, name="broker-stderr", daemon=True)
        self._drainer.start()
        if not self._ready.wait(READY_TIMEOUT_S) or not self.bootstrap:
            raise RuntimeError(f"broker did not start:\n{''.join(self.log)}")

    def _drain(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for line in self._proc.stderr:
            self.log.append(line)
            if line.startswith(READY_LINE):
                self.bootstrap = line[len(READY_LINE) :].strip()
                self._ready.set()
        self._ready.set()  # exited before it was ready

    def cpu_s(self) -> float:
        """User + system CPU seconds the broker has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def requests_by_api(self) -> dict[str, float]:
        """Requests answered so far, by API name (the broker's /metrics)."""
        url = f"http://127.0.0.1:{self.http_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as answer:
            return requests_by_api(answer.read().decode())

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if self._drainer is not None:
            self._drainer.join(STOP_TIMEOUT_S)
        if proc.stderr is not None:
            proc.stderr.close()


def requests_by_api(metrics_text: str) -> dict[str, float]:
    """streams_broker_requests_total by its api label, from /metrics text."""
    return {api: float(n) for api, n in _REQUESTS.findall(metrics_text)}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_broker(flush: str, *, http: bool = False) -> Iterator[BrokerProcess]:
    with tempfile.TemporaryDirectory(prefix="broker-bench-") as tmp:
        broker = BrokerProcess(Path(tmp) / "data", flush, http=http)
        try:
            broker.start()
            yield broker
        finally:
            broker.stop()


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AdminClient({**CLIENT_CONFIG, "bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=10)
    futures[name].result(timeout=30)


def high_watermarks(bootstrap: str, topic: str, partitions: int) -> int:
    consumer = Consumer(
        {**CLIENT_CONFIG, "bootstrap.servers": bootstrap, "group.id": "benchmark-check"}
    )
    try:
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(partitions)
        )
    finally:
        consumer.close()
