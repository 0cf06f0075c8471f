"""Throughput of the log: raw file writes vs Log.append, and Log.read + decode.

Run: python -m benchmarks.log_bench [records_total]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from runtime.log import FlushPolicy, Log
from runtime.log.records import decode_batches, encode_batch
from runtime.types import TopicPartition

RECORDS_PER_BATCH = 1000
VALUE_BYTES = 100
READ_MAX_BYTES = 1 << 20
RUNS = 2


def _batch() -> bytes:
    value = b"v" * VALUE_BYTES
    now_ms = int(time.time() * 1000)
    records = [(b"key-%06d" % i, value, now_ms, ()) for i in range(RECORDS_PER_BATCH)]
    return bytes(encode_batch(records))


def _raw_write(path: Path, batch: bytes, batches: int) -> float:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        start = time.perf_counter()
        for _ in range(batches):
            os.write(fd, batch)
        return time.perf_counter() - start
    finally:
        os.close(fd)


def _log_append(log: Log, tp: TopicPartition, batch: bytes, batches: int) -> float:
    start = time.perf_counter()
    for _ in range(batches):
        log.append(tp, batch)
    return time.perf_counter() - start


def _log_read(log: Log, tp: TopicPartition) -> tuple[float, int]:
    start = time.perf_counter()
    offset, end = log.offsets(tp)
    records = 0
    while offset < end:
        decoded = decode_batches(log.read(tp, offset, READ_MAX_BYTES))
        records += len(decoded)
        offset = decoded[-1].offset + 1
    return time.perf_counter() - start, records


def run_log_benchmark(records_total: int = 1_000_000) -> dict[str, float]:
    """Measure raw writes, log appends and log reads of 1000-record batches."""
    batch = _batch()
    batches = max(1, records_total // RECORDS_PER_BATCH)
    records = batches * RECORDS_PER_BATCH
    raw_s = append_s = float("inf")
    with tempfile.TemporaryDirectory(prefix="log-bench-") as tmp:
        with Log.open(Path(tmp) / "log", flush=FlushPolicy("os")) as log:
            for run in range(RUNS):  # alternate, keep the best of each
                raw_path = Path(tmp) / f"raw-{run}.bin"
                raw_s = min(raw_s, _raw_write(raw_path, batch, batches))
                raw_path.unlink()
                tp = TopicPartition(f"bench-{run}", 0)
                log.create_topic(tp.topic, 1, {"retention.ms": "-1"})
                append_s = min(append_s, _log_append(log, tp, batch, batches))
            read_s, read_records = _log_read(log, tp)
        if read_records != records:
            raise RuntimeError(f"read {read_records} records, appended {records}")
    total_bytes = len(batch) * batches
    return {
        "batch_bytes": float(len(batch)),
        "records": float(records),
        "raw_write_bytes_per_s": total_bytes / raw_s,
        "raw_write_records_per_s": records / raw_s,
        "append_bytes_per_s": total_bytes / append_s,
        "append_records_per_s": records / append_s,
        "append_vs_raw": raw_s / append_s,
        "read_records_per_s": records / read_s,
    }


if __name__ == "__main__":
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    for name, value in run_log_benchmark(total).items():
        print(f"{name:>26} {value:,.2f}")
