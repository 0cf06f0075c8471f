"""A real worker process on log:// whose disk (a tmpfs) fills up mid-stream: it
exits 1 with an error naming the topic or table and the partition, and after
space is freed a restart counts at least the truth."""

from __future__ import annotations

import errno
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from disks import tmpfs
from test_worker_process import (
    EVENTS,
    KEYS,
    WorkerProcess,
    _field,
    committed_at_least,
    nothing_pending,
    produce,
    table_from_changelog,
)

DISK_SIZE = "64m"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path, DISK_SIZE) as mount:
        yield mount


def take_all_space(path: Path) -> None:
    with path.open("ab", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * (1 << 16))
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
        try:  # the last bytes, smaller than a chunk
            while True:
                f.write(b"\0" * 512)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc


@pytest.mark.slow
def test_worker_stops_on_a_full_disk_and_a_restart_counts_at_least_truth(small_disk):
    data = small_disk / "data"
    produce(data)
    filler = small_disk / "filler"
    worker = WorkerProcess(data)
    try:
        line = worker.wait_line(committed_at_least(EVENTS // 4))
        assert _field(line, "processed") < EVENTS  # more of the stream still to come
        take_all_space(filler)
        err = worker.stderr()  # it stops by itself
    finally:
        worker.kill()
    assert worker.proc.returncode == 1, err
    assert "No space left on device" in err, err
    assert "partition" in err and ("topic '" in err or "table '" in err), err
    assert "Traceback" not in err, err
    print("worker stopped with:", [line for line in err.splitlines() if "ERROR" in line][-1])

    filler.unlink()
    worker = WorkerProcess(data)
    try:
        worker.wait_line(nothing_pending)
        worker.terminate()
    finally:
        worker.kill()
    truth = Counter(KEYS)
    counts = table_from_changelog(data)
    assert set(counts) == set(truth)
    short = {k: (counts[k], n) for k, n in truth.items() if counts[k] < n}
    assert not short, f"keys counted fewer times than sent: {short}"
