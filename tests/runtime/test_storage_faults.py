"""A failed write, fsync or roll leaves a partition exactly as it was.

Faults come from DiskFaults (a full disk that takes a short write then raises
ENOSPC, or EIO on a chosen call). After each: offsets unchanged, reads return
exactly the acknowledged batches, the next append lands right after them, and a
reopen truncates nothing.
"""

from __future__ import annotations

import errno

import pytest
from log_helpers import ManualClock, seq_batch

from runtime.errors import StorageError
from runtime.log.config import FlushPolicy, TopicConfig
from runtime.log.faults import DiskFaults
from runtime.log.partition import Partition
from runtime.log.records import decode_batches
from runtime.types import TopicPartition

TP = TopicPartition("faulty", 2)


@pytest.fixture
def faults():
    faults = DiskFaults()
    with faults.installed():
        yield faults


def _open(directory, flush="os", **config) -> Partition:
    return Partition.open(TP, directory, TopicConfig(**config), FlushPolicy(flush), ManualClock())


def _values(partition: Partition) -> list[bytes]:
    start, end = partition.offsets()
    records = decode_batches(partition.read(start, 1 << 30)) if end > start else []
    assert [r.offset for r in records] == list(range(start, end))
    return [r.value for r in records]


def _expected(batches: int) -> list[bytes]:
    return [b"%d:%d" % (seq, i) for seq in range(batches) for i in range(3)]


def _file_bytes(partition: Partition) -> int:
    assert partition.directory is not None
    return sum(p.stat().st_size for p in partition.directory.glob("*.log"))


def _assert_intact(partition: Partition, batches: int) -> None:
    """Exactly `batches` acknowledged batches, no stray bytes after them on disk."""
    assert partition.offsets() == (0, 3 * batches)
    assert _values(partition) == _expected(batches)
    assert _file_bytes(partition) == sum(s.size for s in partition.segments)


def _reopen_and_check(partition: Partition, batches: int, **config) -> None:
    partition.close()
    reopened = _open(partition.directory, **config)
    try:
        assert reopened.recovered_bytes == 0
        _assert_intact(reopened, batches)
    finally:
        reopened.close()


def _fill(partition: Partition, batches: int) -> None:
    for seq in range(batches):
        assert partition.append(seq_batch(seq)) == 3 * seq


class TestFailedAppend:
    def test_partial_write_on_a_full_disk_is_cut_off(self, tmp_path, faults):
        partition = _open(tmp_path)
        _fill(partition, 10)
        faults.fill(free_bytes=20)  # part of the next batch fits, then ENOSPC
        with pytest.raises(StorageError) as caught:
            partition.append(seq_batch(10))
        error = caught.value
        assert (error.topic, error.partition, error.errno) == (TP.topic, TP.partition, errno.ENOSPC)
        assert "faulty" in str(error) and "partition 2" in str(error)
        assert faults.free_bytes == 0  # the short write did happen
        _assert_intact(partition, 10)
        faults.free()
        assert partition.append(seq_batch(10)) == 30  # right after the acknowledged ones
        _assert_intact(partition, 11)
        _reopen_and_check(partition, 11)

    def test_every_append_fails_while_the_disk_is_full_then_all_resume(self, tmp_path, faults):
        partition = _open(tmp_path)
        _fill(partition, 3)
        faults.fill(0)
        for seq in range(3, 8):
            with pytest.raises(StorageError):
                partition.append(seq_batch(seq))
        _assert_intact(partition, 3)
        faults.free()
        for seq in range(3, 8):
            assert partition.append(seq_batch(seq)) == 3 * seq
        _reopen_and_check(partition, 8)

    @pytest.mark.parametrize("code", [errno.EIO, errno.ENOSPC])
    def test_failed_fsync_rolls_the_append_back(self, tmp_path, faults, code):
        partition = _open(tmp_path, flush="batch")
        _fill(partition, 4)
        faults.fail("fdatasync", code)
        with pytest.raises(StorageError) as caught:
            partition.append(seq_batch(4))
        assert caught.value.errno == code
        _assert_intact(partition, 4)
        assert partition.append(seq_batch(4)) == 12
        _reopen_and_check(partition, 5)

    def test_failed_cut_off_is_retried_before_the_next_append(self, tmp_path, faults):
        partition = _open(tmp_path)
        _fill(partition, 5)
        faults.fill(30)
        faults.fail("ftruncate", errno.EIO)  # the garbage stays in the file for now
        with pytest.raises(StorageError):
            partition.append(seq_batch(5))
        assert _file_bytes(partition) > partition.segments[-1].size
        assert _values(partition) == _expected(5)  # readers never look past size
        faults.free()
        assert partition.append(seq_batch(5)) == 15
        _assert_intact(partition, 6)
        _reopen_and_check(partition, 6)

    def test_append_refuses_to_write_after_garbage_it_cannot_cut(self, tmp_path, faults):
        partition = _open(tmp_path)
        _fill(partition, 2)
        faults.fill(10)
        faults.fail("ftruncate", errno.EIO, times=2)
        with pytest.raises(StorageError):
            partition.append(seq_batch(2))
        faults.free()
        writes = faults.calls["writev"]
        with pytest.raises(StorageError):
            partition.append(seq_batch(2))
        assert faults.calls["writev"] == writes  # nothing written after the garbage
        assert partition.append(seq_batch(2)) == 6
        _reopen_and_check(partition, 3)

    def test_memory_partition_is_not_touched_by_disk_faults(self, faults):
        partition = _open(None)
        faults.fill(0)
        _fill(partition, 3)
        assert _values(partition) == _expected(3)


class TestFailedRoll:
    def test_failed_index_write_keeps_the_active_segment(self, tmp_path, faults):
        partition = _open(tmp_path, segment_bytes=400)
        _fill(partition, 3)
        before = [s.base_offset for s in partition.segments]
        faults.fail("write", errno.ENOSPC)  # the first index file of the seal
        with pytest.raises(StorageError):
            for seq in range(3, 20):
                partition.append(seq_batch(seq))
        acked = partition.offsets()[1] // 3
        assert partition.segments[-1].base_offset >= before[-1]
        assert not list(tmp_path.glob("*.tmp"))
        bases = sorted(int(p.stem) for p in tmp_path.glob("*.log"))
        assert bases == [s.base_offset for s in partition.segments]
        _assert_intact(partition, acked)
        for seq in range(acked, acked + 10):
            assert partition.append(seq_batch(seq)) == 3 * seq
        assert len(partition.segments) > len(before)
        _reopen_and_check(partition, acked + 10, segment_bytes=400)

    def test_failed_directory_fsync_leaves_no_new_segment_file(self, tmp_path, faults):
        three = 3 * len(seq_batch(0))
        partition = _open(tmp_path, segment_bytes=three)
        _fill(partition, 3)  # the next append rolls
        # the seal fsyncs two index files, then fsync_dir follows the new segment file
        faults.fail("fsync", errno.EIO, after=2)
        with pytest.raises(StorageError):
            partition.append(seq_batch(3))
        assert len(partition.segments) == 1
        assert [p.name for p in tmp_path.glob("*.log")] == [f"{0:020d}.log"]
        _assert_intact(partition, 3)
        assert partition.append(seq_batch(3)) == 9
        assert [s.base_offset for s in partition.segments] == [0, 9]
        _reopen_and_check(partition, 4, segment_bytes=three)


def test_flush_failure_is_a_storage_error(tmp_path, faults):
    partition = _open(tmp_path)
    _fill(partition, 2)
    faults.fail("fdatasync", errno.EIO)
    with pytest.raises(StorageError):
        partition.flush()
    _reopen_and_check(partition, 2)


def test_close_on_a_full_disk_still_closes(tmp_path, faults):
    partition = _open(tmp_path)
    _fill(partition, 2)
    faults.fill(0)
    partition.close()  # sealing fails: the active segment's indexes are rebuilt on open
    assert partition.closed
    faults.free()
    _reopen_and_check(_open(tmp_path), 2)
