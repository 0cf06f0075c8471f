"""Catalog writes, topic deletes and offset commits on a disk that fails.

A failed catalog write leaves the old catalog; a delete frees its space before
it needs any and survives a crash at any step (its delete markers are finished
on open); a failed offset commit keeps the previous commit.
"""

from __future__ import annotations

import errno
import os

import pytest
from log_helpers import ManualClock, make_batch, seq_batch

from runtime.errors import StorageError, UnknownTopicError
from runtime.log.catalog import CATALOG_FILE, load_catalog
from runtime.log.data_dir import DELETING_DIR
from runtime.log.faults import DiskFaults
from runtime.log.manager import Log
from runtime.log.offsets import OffsetStore
from runtime.log.records import decode_batches
from runtime.types import TopicPartition


@pytest.fixture
def faults():
    faults = DiskFaults()
    with faults.installed():
        yield faults


def _fill(log: Log, topic: str, partitions: int, batches: int = 5) -> None:
    for p in range(partitions):
        for seq in range(batches):
            log.append(TopicPartition(topic, p), seq_batch(seq))


def _count(log: Log, tp: TopicPartition) -> int:
    start, end = log.offsets(tp)
    return len(decode_batches(log.read(tp, start, 1 << 30))) if end > start else 0


def _fail_catalog_writes(faults: DiskFaults, times: int = 1) -> list[str]:
    """ENOSPC for the next `times` writes of topics.json; returns what the hook saw."""
    seen: list[str] = []
    remaining = [times]

    def hook(path, flags) -> None:
        if os.fspath(path).endswith(CATALOG_FILE + ".tmp") and remaining[0]:
            remaining[0] -= 1
            seen.append(os.fspath(path))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    faults.on_call["open"] = hook
    return seen


class TestCatalog:
    def test_failed_catalog_write_keeps_the_old_catalog(self, tmp_path, faults):
        with Log.open(tmp_path) as log:
            log.create_topic("kept", 2)
            before = (tmp_path / CATALOG_FILE).read_bytes()
            faults.fail("write", errno.ENOSPC)
            with pytest.raises(StorageError) as caught:
                log.create_topic("new", 3)
            assert caught.value.topic == "new" and caught.value.errno == errno.ENOSPC
            assert (tmp_path / CATALOG_FILE).read_bytes() == before
            assert not list(tmp_path.glob("*.tmp"))
            assert sorted(log.topics()) == ["kept"]
            assert not list(tmp_path.glob("new-*"))  # the partitions it opened are gone
            with pytest.raises(UnknownTopicError):
                log.append(TopicPartition("new", 0), seq_batch(0))
            log.create_topic("new", 3)  # works once the disk does
        assert sorted(load_catalog(tmp_path)) == ["kept", "new"]

    def test_failed_rename_of_the_catalog_leaves_no_temporary_file(self, tmp_path, faults):
        with Log.open(tmp_path) as log:
            faults.fail("replace", errno.EIO)
            with pytest.raises(StorageError):
                log.create_topic("t", 1)
            assert not list(tmp_path.glob("*.tmp"))
            assert not (tmp_path / CATALOG_FILE).exists()

    def test_a_catalog_write_cut_short_leaves_no_file_after_open(self, tmp_path):
        with Log.open(tmp_path) as log:
            log.create_topic("t", 1)
        (tmp_path / (CATALOG_FILE + ".tmp")).write_bytes(b'{"version": 1, "top')
        with Log.open(tmp_path) as log:
            assert sorted(log.topics()) == ["t"]
        assert not (tmp_path / (CATALOG_FILE + ".tmp")).exists()


class TestDeleteTopic:
    def test_delete_on_a_full_disk_frees_space_before_writing_the_catalog(self, tmp_path, faults):
        with Log.open(tmp_path) as log:
            log.create_topic("victim", 2)
            log.create_topic("other", 1)
            _fill(log, "victim", 2)
            _fill(log, "other", 1)
            files_at_catalog_write: list[list[str]] = []

            def hook(path, flags) -> None:
                if os.fspath(path).endswith(CATALOG_FILE + ".tmp"):
                    left = [p.name for p in tmp_path.rglob("*.log") if "victim" in str(p)]
                    files_at_catalog_write.append(left)
                    if not left:  # the unlinks gave the disk its space back
                        faults.free()

            faults.on_call["open"] = hook
            faults.fill(0)  # nothing left: only the unlinks can make room
            log.delete_topic("victim")
            assert files_at_catalog_write == [[]]
            assert sorted(log.topics()) == ["other"]
            assert _count(log, TopicPartition("other", 0)) == 15
        assert sorted(load_catalog(tmp_path)) == ["other"]
        assert list((tmp_path / DELETING_DIR).iterdir()) == []

    def test_delete_with_the_catalog_write_failing_once(self, tmp_path, faults):
        with Log.open(tmp_path) as log:
            log.create_topic("victim", 3)
            log.create_topic("other", 1)
            _fill(log, "victim", 3)
            _fill(log, "other", 1)
            seen = _fail_catalog_writes(faults)
            log.delete_topic("victim")  # committed by its markers: it succeeds
            assert len(seen) == 1
            assert sorted(log.topics()) == ["other"]
            assert "victim" in load_catalog(tmp_path)  # the rewrite is deferred
            markers = sorted(p.name for p in (tmp_path / DELETING_DIR).iterdir())
            assert markers == ["victim-0", "victim-1", "victim-2"]
            assert not any((tmp_path / DELETING_DIR).rglob("*.log"))  # space freed
            assert not list(tmp_path.glob("victim-*"))
            with pytest.raises(UnknownTopicError):
                log.append(TopicPartition("victim", 0), seq_batch(0))
        with Log.open(tmp_path) as log:  # open finishes the delete
            assert sorted(log.topics()) == ["other"]
            assert _count(log, TopicPartition("other", 0)) == 15
        assert sorted(load_catalog(tmp_path)) == ["other"]
        assert list((tmp_path / DELETING_DIR).iterdir()) == []

    def test_next_catalog_write_finishes_a_deferred_delete(self, tmp_path, faults):
        with Log.open(tmp_path) as log:
            log.create_topic("victim", 1)
            _fail_catalog_writes(faults)
            log.delete_topic("victim")
            log.create_topic("later", 1)
            assert sorted(load_catalog(tmp_path)) == ["later"]
            assert list((tmp_path / DELETING_DIR).iterdir()) == []

    def test_recreating_a_name_whose_delete_was_deferred(self, tmp_path, faults):
        with Log.open(tmp_path) as log:
            log.create_topic("again", 2)
            _fill(log, "again", 2)
            _fail_catalog_writes(faults)
            log.delete_topic("again")
            log.create_topic("again", 1)
            log.append(TopicPartition("again", 0), seq_batch(0))
        with Log.open(tmp_path) as log:  # no marker is left to delete the new topic
            assert log.topic("again").partitions == 1
            assert _count(log, TopicPartition("again", 0)) == 3

    def test_failed_first_rename_changes_nothing(self, tmp_path, faults):
        with Log.open(tmp_path) as log:
            log.create_topic("stays", 2)
            _fill(log, "stays", 2)
            faults.fail("rename", errno.EIO)
            with pytest.raises(StorageError) as caught:
                log.delete_topic("stays")
            assert caught.value.topic == "stays"
            assert log.topic("stays").partitions == 2
            log.append(TopicPartition("stays", 1), seq_batch(5))
            assert _count(log, TopicPartition("stays", 1)) == 18
        with Log.open(tmp_path) as log:
            assert _count(log, TopicPartition("stays", 0)) == 15

    def test_delete_cut_short_after_the_first_marker_is_finished_on_open(self, tmp_path):
        with Log.open(tmp_path) as log:
            log.create_topic("cut", 3)
            log.create_topic("other", 1)
            _fill(log, "cut", 3)
            _fill(log, "other", 1)
        # a crash right after step 1's commit point: one partition moved, nothing else
        (tmp_path / DELETING_DIR).mkdir(exist_ok=True)
        os.rename(tmp_path / "cut-0", tmp_path / DELETING_DIR / "cut-0")
        assert "cut" in load_catalog(tmp_path)
        with Log.open(tmp_path) as log:
            assert sorted(log.topics()) == ["other"]
            assert _count(log, TopicPartition("other", 0)) == 15
        assert sorted(load_catalog(tmp_path)) == ["other"]
        assert not list(tmp_path.glob("cut-*"))
        assert list((tmp_path / DELETING_DIR).iterdir()) == []

    def test_markers_of_a_finished_delete_are_removed_on_open(self, tmp_path):
        with Log.open(tmp_path) as log:
            log.create_topic("keep", 1)
        # a crash after the catalog rewrite, before the markers went
        (tmp_path / DELETING_DIR / "gone-0").mkdir(parents=True)
        with Log.open(tmp_path) as log:
            assert sorted(log.topics()) == ["keep"]
        assert list((tmp_path / DELETING_DIR).iterdir()) == []

    def test_open_on_a_full_disk_still_drops_a_marked_topic(self, tmp_path, faults):
        with Log.open(tmp_path) as log:
            log.create_topic("cut", 1)
        (tmp_path / DELETING_DIR).mkdir(exist_ok=True)
        os.rename(tmp_path / "cut-0", tmp_path / DELETING_DIR / "cut-0")
        _fail_catalog_writes(faults)
        with Log.open(tmp_path) as log:
            assert log.topics() == {}
        assert "cut" in load_catalog(tmp_path)  # rewritten by the next open
        with Log.open(tmp_path) as log:
            assert log.topics() == {}
        assert load_catalog(tmp_path) == {}


class TestCompaction:
    @pytest.mark.parametrize("free_bytes", [0, 100])
    def test_failed_rewrite_leaves_no_cleaned_files(self, tmp_path, faults, free_bytes):
        now_ms = 10_000_000
        tp = TopicPartition("c", 0)
        with Log.open(tmp_path, clock=ManualClock(now_s=now_ms / 1000)) as log:
            log.create_topic("c", 1, {"cleanup.policy": "compact", "segment.bytes": "300"})
            for i in range(30):
                log.append(tp, make_batch([b"v%d" % i], keys=[b"k%d" % (i % 3)], timestamp_ms=1))
            faults.fill(free_bytes)  # 100: a segment or a part of one fits
            with pytest.raises(StorageError) as caught:
                log.compact()
            assert (caught.value.topic, caught.value.partition) == ("c", 0)
            assert not list(tmp_path.rglob("*.cleaned"))
            # segments emptied by cleaning are dropped without a write: that may happen
            latest = {r.key: r.value for r in decode_batches(log.read(tp, 0, 1 << 30))}
            assert latest == {b"k0": b"v27", b"k1": b"v28", b"k2": b"v29"}
            assert log.offsets(tp) == (0, 30)
            faults.free()
            assert log.compact() > 0


class TestOffsetStore:
    def test_failed_commit_keeps_the_previous_commit(self, tmp_path, faults):
        tp = TopicPartition("t", 0)
        with Log.open(tmp_path) as log:
            store = OffsetStore(log, partitions=1)
            store.commit("g", {tp: (5, "five")})
            faults.fill(0)
            with pytest.raises(StorageError) as caught:
                store.commit("g", {tp: (9, "nine")})
            assert caught.value.topic == "__consumer_offsets"
            assert store.fetch("g") == {tp: (5, "five", -1)}
            with pytest.raises(StorageError):
                store.delete_group("g")
            assert store.groups() == ["g"]
            faults.free()
            store.commit("g", {tp: (7, "seven")})
        with Log.open(tmp_path) as log:
            assert OffsetStore(log, partitions=1).fetch("g") == {tp: (7, "seven", -1)}
