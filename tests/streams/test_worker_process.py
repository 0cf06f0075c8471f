"""A real worker process: SIGKILL mid-stream and restart (counts >= truth),
clean SIGTERM stops (counts == truth), a second worker on a locked data dir."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest

from runtime.log.config import FlushPolicy
from runtime.log.manager import Log
from runtime.log.records import decode_batches, encode_batch
from runtime.partitioner import partition_for_key
from runtime.types import TopicPartition

APPS = Path(__file__).parent / "apps"
EVENTS = 30_000
KEYS = [f"k{i % 97}" for i in range(EVENTS)]
PARTITIONS = 8
START_TIMEOUT_S = 30


def produce(data: Path) -> None:
    with Log.open(data / "log", flush=FlushPolicy("os")) as log:
        log.create_topic("events", PARTITIONS)
        by_partition: dict[int, list] = {}
        for i, key in enumerate(KEYS):
            kb = key.encode()
            by_partition.setdefault(partition_for_key(kb, PARTITIONS), []).append(
                (kb, b"1", 1_000 + i, ())
            )
        for p, records in by_partition.items():
            for start in range(0, len(records), 1000):
                log.append(TopicPartition("events", p), encode_batch(records[start : start + 1000]))


def table_from_changelog(data: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    with Log.open(data / "log") as log:
        for p in range(PARTITIONS):
            tp = TopicPartition("counter-counts-changelog", p)
            start, end = log.offsets(tp)
            position = start
            while position < end:
                records = decode_batches(log.read(tp, position, 1 << 20))
                for r in records:
                    if r.offset >= position and r.value is not None:
                        counts[orjson.loads(r.key)] = orjson.loads(r.value)
                position = records[-1].offset + 1
    return counts


class WorkerProcess:
    def __init__(self, data: Path) -> None:
        env = {**os.environ, "COUNT_APP_DATA": str(data), "PYTHONPATH": str(APPS)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams", "-A", "count_app", "worker", "-l", "warning"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        self._stderr: str | None = None

    def wait_line(self, predicate, timeout_s: float = START_TIMEOUT_S) -> str:
        """Read stdout until a line satisfies predicate (bounded by timeout)."""
        import selectors
        import time

        deadline = time.monotonic() + timeout_s
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        try:
            while time.monotonic() < deadline:
                if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                    break
                line = self.proc.stdout.readline()
                if not line:
                    break
                if predicate(line):
                    return line
        finally:
            sel.close()
        self.kill()
        raise AssertionError(f"worker never printed the expected line; stderr:\n{self.stderr()}")

    def stderr(self) -> str:
        """Wait for the process to end (kill it after a bound) and return stderr."""
        if self._stderr is None:
            try:
                _, self._stderr = self.proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                _, self._stderr = self.proc.communicate(timeout=10)
        return self._stderr

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.stderr()  # reaps the process and closes its pipes

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        err = self.stderr()
        assert self.proc.returncode == 0, err


def _field(line: str, name: str) -> int:
    parts = line.split()
    return int(parts[parts.index(name) + 1])


def processed_at_least(n: int):
    return lambda line: line.startswith("processed") and _field(line, "processed") >= n


def committed_at_least(n: int):
    return lambda line: line.startswith("processed") and _field(line, "committed") >= n


def nothing_pending(line: str) -> bool:
    return line.startswith("processed") and _field(line, "pending") == 0


@pytest.mark.slow
def test_sigkilled_worker_restarted_counts_at_least_truth(tmp_path):
    produce(tmp_path)
    worker = WorkerProcess(tmp_path)
    try:
        # after some commits, and with more of the stream still to come
        line = worker.wait_line(committed_at_least(EVENTS // 4))
        assert _field(line, "processed") < EVENTS
    finally:
        worker.kill()
    assert worker.proc.returncode == -signal.SIGKILL
    worker = WorkerProcess(tmp_path)
    try:
        worker.wait_line(nothing_pending)
        worker.terminate()
    finally:
        worker.kill()
    truth = Counter(KEYS)
    counts = table_from_changelog(tmp_path)
    assert set(counts) == set(truth)
    short = {k: (counts[k], n) for k, n in truth.items() if counts[k] < n}
    assert not short, f"keys counted fewer times than sent: {short}"


@pytest.mark.slow
def test_clean_stops_and_restarts_count_exactly(tmp_path):
    produce(tmp_path)
    for target in (EVENTS // 4, EVENTS // 2):
        worker = WorkerProcess(tmp_path)
        try:
            worker.wait_line(processed_at_least(target // 2))
            worker.terminate()
        finally:
            worker.kill()
    worker = WorkerProcess(tmp_path)
    try:
        worker.wait_line(nothing_pending)
        worker.terminate()
    finally:
        worker.kill()
    assert table_from_changelog(tmp_path) == dict(Counter(KEYS))


@pytest.mark.slow
def test_second_worker_on_locked_data_dir_fails_clearly(tmp_path):
    produce(tmp_path)
    first = WorkerProcess(tmp_path)
    try:
        first.wait_line(lambda line: line.startswith("processed"))
        second = WorkerProcess(tmp_path)
        try:
            err = second.stderr()
            assert second.proc.returncode == 1, err
        finally:
            second.kill()
        assert "locked" in err and str(first.proc.pid) in err, err
    finally:
        first.kill()
