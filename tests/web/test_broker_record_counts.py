"""Counting fetched records for the broker's metrics without reading what sendfile sends."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.broker import metrics
from runtime.log import Log
from runtime.log.records import encode_batch
from runtime.log.storage import FileRegion
from runtime.types import TopicPartition

BATCHES, PER_BATCH = 1500, 3  # 200 KiB: sent as file regions


def stored_chunks(tmp_path: Path) -> list:
    log = Log.open(tmp_path)
    log.create_topic("t", 1)
    tp = TopicPartition("t", 0)
    for i in range(BATCHES):
        records = [(f"k{i:03d}".encode(), b"v" * 20, 0, ()) for _ in range(PER_BATCH)]
        log.append(tp, encode_batch(records))
    return log, log.read_chunks(tp, 0, 64 << 20)


def test_file_regions_are_counted_from_their_headers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metrics, "HEADERS_READ_BYTES", 1 << 20)  # the whole region
    log, chunks = stored_chunks(tmp_path)
    assert any(isinstance(c, FileRegion) for c in chunks)
    assert sum(metrics._records_in(c) for c in chunks) == BATCHES * PER_BATCH
    log.close()


def test_past_the_headers_read_the_count_goes_by_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metrics, "HEADERS_READ_BYTES", 2048)
    log, chunks = stored_chunks(tmp_path)
    counted = sum(metrics._records_in(c) for c in chunks)
    assert counted == pytest.approx(BATCHES * PER_BATCH, rel=0.02)  # batches alike in size
    log.close()


def test_in_memory_chunks_are_counted_exactly() -> None:
    batch = encode_batch([(b"k", b"v", 0, ())] * 7)
    assert metrics._records_in(batch + batch) == 14


def test_produced_batches_are_counted_and_unanswered_garbage_is_not() -> None:
    batch = encode_batch([(b"k", b"v", 0, ())] * 4)
    body = {
        "topics": [
            {
                "name": "t",
                "partitions": [
                    {"partition_index": 0, "records": batch},
                    {"partition_index": 1, "records": b"short"},  # acks=0: not answered
                    {"partition_index": 2, "records": None},
                ],
            }
        ]
    }
    m = metrics.BrokerMetrics()
    m._produced(body, None)
    assert (m.records_in, m.bytes_in) == ({"t": 4}, {"t": len(batch)})
