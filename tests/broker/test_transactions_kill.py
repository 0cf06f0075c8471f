"""Exactly once through crashes: a transactional consume-transform-produce loop
(confluent-kafka, its own process) is SIGKILLed at random moments and
restarted; then the broker itself is SIGKILLed mid-run and restarted. Every
input record ends up in the output exactly once for read_committed readers.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Producer
from test_confluent_client import create_topic
from test_transactions_confluent import read_all

pytestmark = pytest.mark.slow

TIMEOUT_S = 60.0
RECORDS = 2000
PARTITIONS = 2
APP = Path(__file__).with_name("ctp_app.py")


class LoopProcess:
    def __init__(self, bootstrap: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(APP), bootstrap, "ctp-in", "ctp-out", "ctp-app", "0.02"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.committed = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("committed "):
                self.committed = int(line.split()[1])

    def wait_for_commits(self, n: int) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while self.committed < n:
            assert self.proc.poll() is None, f"loop exited {self.proc.returncode}"
            assert time.monotonic() < deadline, f"only {self.committed} committed"
            time.sleep(0.02)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._reader.join(10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def test_every_input_once_in_the_output_through_loop_and_broker_kills(start_broker) -> None:
    broker = start_broker("--flush", "batch")
    create_topic(broker.bootstrap, "ctp-in", PARTITIONS)
    create_topic(broker.bootstrap, "ctp-out", PARTITIONS)
    with Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True}) as p:
        for i in range(RECORDS):
            p.produce("ctp-in", str(i).encode(), partition=i % PARTITIONS)
        assert p.flush(30) == 0

    rng = random.Random(7)
    loops = []
    try:
        for _ in range(5):  # kill the loop mid-run, at a random moment after some progress
            loop = LoopProcess(broker.bootstrap)
            loops.append(loop)
            loop.wait_for_commits(rng.randint(25, 100))
            time.sleep(rng.uniform(0, 0.3))  # land the kill anywhere in a transaction
            loop.kill()
        loop = LoopProcess(broker.bootstrap)
        loops.append(loop)
        loop.wait_for_commits(50)
        broker.kill()  # with transactions open, or half-ended
        broker.start()
        out = read_all(
            broker.bootstrap,
            "ctp-out",
            PARTITIONS,
            "read_committed",
            expect=RECORDS,
            timeout_s=120,
        )
    finally:
        for loop in loops:
            loop.kill()

    values = sorted(int(v.removeprefix("out-")) for v in out)
    duplicates = len(values) - len(set(values))
    missing = set(range(RECORDS)) - set(values)
    print(
        f"\nloop kills 5, broker kills 1: outputs {len(values)}, duplicated {duplicates}, "
        f"missing {len(missing)}"
    )
    assert duplicates == 0 and not missing, (duplicates, sorted(missing)[:20])
