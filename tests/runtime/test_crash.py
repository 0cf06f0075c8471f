"""A writer SIGKILLed mid-stream keeps every batch acknowledged under flush-each-batch."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from runtime.log import Log
from runtime.log.records import decode_batch, iter_batches, validate_batch
from runtime.types import TopicPartition

ROOT = Path(__file__).resolve().parents[2]
TP = TopicPartition("crash", 0)
ACKS_BEFORE_KILL = 200
RECORDS_PER_BATCH = 20

WRITER = """
import sys
from runtime.log import FlushPolicy, Log
from runtime.log.records import encode_batch
from runtime.types import TopicPartition

log = Log.open(sys.argv[1], flush=FlushPolicy("batch"))
log.create_topic("crash", 1, {"segment.bytes": "65536"})
tp = TopicPartition("crash", 0)
seq = 0
while True:
    records = [(None, b"%d:%d:" % (seq, i) + b"x" * 100, 1000 + seq, ()) for i in range(20)]
    base = log.append(tp, encode_batch(records))
    sys.stdout.write(f"{base} {seq}\\n")
    sys.stdout.flush()
    seq += 1
"""


def _lines(stream, out: queue.Queue) -> None:
    for line in stream:
        out.put(line)
    out.put(None)


@pytest.mark.slow
def test_sigkilled_writer_keeps_acknowledged_batches(tmp_path):
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    acks: list[tuple[int, int]] = []
    try:
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=_lines, args=(child.stdout, lines), daemon=True).start()
        deadline = time.monotonic() + 60
        while len(acks) < ACKS_BEFORE_KILL:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, "writer exited early"
            base, seq = map(int, line.split())
            acks.append((base, seq))
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=10)
        child.stdout.close()

    with Log.open(tmp_path) as log:
        start, end = log.offsets(TP)
        assert start == 0
        assert end >= acks[-1][0] + RECORDS_PER_BATCH
        data = log.read(TP, 0, max_bytes=1 << 30)
    batches = {}
    for pos, header in iter_batches(data):
        validate_batch(data, pos)
        batches[header.base_offset] = decode_batch(data, pos)
    assert sum(len(records) for records in batches.values()) == end
    for base, seq in acks:
        records = batches[base]
        assert [r.value for r in records] == [
            b"%d:%d:" % (seq, i) + b"x" * 100 for i in range(RECORDS_PER_BATCH)
        ]
