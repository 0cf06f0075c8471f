"""Idempotent producers: a retried batch is stored once, also across restarts.

Named after the failures they guard against: the retry of a batch whose
acknowledgement was lost in a broker crash must be answered with its original
offset, whether the producer state comes from a snapshot, from scanning the
log (no snapshot, a corrupt snapshot) or from the active segment's recovery.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from log_helpers import ManualClock

from runtime.errors import OutOfOrderSequenceError, ProducerFencedError
from runtime.log.config import FlushPolicy, TopicConfig
from runtime.log.partition import Partition
from runtime.log.producer_state import (
    BATCHES_KEPT,
    ProducerStates,
    SnapshotCorruptError,
    Verdict,
)
from runtime.log.records import decode_batches, encode_batch, parse_header
from runtime.types import TopicPartition

TP = TopicPartition("idem", 0)


def idem_batch(pid: int, seq: int, records: int = 2, *, epoch: int = 0) -> bytearray:
    rows = [(None, b"%d:%d:%d" % (pid, seq, i), 1_000 + i, ()) for i in range(records)]
    return encode_batch(rows, producer_id=pid, producer_epoch=epoch, base_sequence=seq)


def open_partition(directory: Path | None, *, segment_bytes: int = 1 << 20) -> Partition:
    config = TopicConfig(segment_bytes=segment_bytes)
    return Partition.open(TP, directory, config, FlushPolicy(), ManualClock())


def values(partition: Partition) -> list[bytes]:
    return [r.value for r in decode_batches(partition.read(0, 1 << 24))]


# --- the state alone --------------------------------------------------------------


def test_duplicate_of_any_of_the_last_batches_kept_is_recognised() -> None:
    states = ProducerStates()
    for i in range(BATCHES_KEPT):
        states.appended(parse_header(idem_batch(7, 2 * i)), 100 + i, now_ms=0)
    for i in range(BATCHES_KEPT):
        assert states.check(parse_header(idem_batch(7, 2 * i))) == (Verdict.DUPLICATE, 100 + i)
    assert states.check(parse_header(idem_batch(7, 2 * BATCHES_KEPT)))[0] is Verdict.APPEND
    assert states.check(parse_header(idem_batch(7, 2 * BATCHES_KEPT + 1)))[0] is (
        Verdict.OUT_OF_ORDER
    )


def test_older_epoch_is_fenced_and_a_newer_one_starts_over() -> None:
    states = ProducerStates()
    states.appended(parse_header(idem_batch(7, 0, epoch=1)), 0, now_ms=0)
    assert states.check(parse_header(idem_batch(7, 2, epoch=0)))[0] is Verdict.FENCED
    assert states.check(parse_header(idem_batch(7, 9, epoch=2)))[0] is Verdict.APPEND


def test_snapshot_round_trips_and_a_damaged_one_is_refused() -> None:
    states = ProducerStates()
    for pid in range(3):
        for seq in range(0, 8, 2):
            states.appended(parse_header(idem_batch(pid, seq)), pid * 100 + seq, now_ms=5)
    data = states.to_bytes()
    again = ProducerStates.from_bytes(data)
    assert again.to_bytes() == data
    assert again.check(parse_header(idem_batch(2, 6))) == (Verdict.DUPLICATE, 206)
    damaged = bytearray(data)
    damaged[-3] ^= 0x40
    with pytest.raises(SnapshotCorruptError, match="CRC"):
        ProducerStates.from_bytes(bytes(damaged))
    with pytest.raises(SnapshotCorruptError):
        ProducerStates.from_bytes(data[:-4])


def test_producers_past_the_cap_and_expired_ones_are_forgotten() -> None:
    states = ProducerStates(producers_max=2)
    for pid in range(3):
        states.appended(parse_header(idem_batch(pid, 0)), pid, now_ms=pid)
    assert states.get(0) is None and states.get(1) is not None and states.get(2) is not None
    assert states.expire(now_ms=10, expiration_ms=8) == 1  # pid 1 appended at 1, pid 2 at 2
    assert states.get(1) is None and states.get(2) is not None


# --- in a partition ---------------------------------------------------------------


def test_retried_batch_is_answered_with_its_offset_and_not_stored_again(
    log_path: Path | None,
) -> None:
    directory = None if log_path is None else log_path / "p"
    partition = open_partition(directory)
    assert partition.append(idem_batch(7, 0)) == 0
    assert partition.append(idem_batch(7, 2)) == 2
    assert partition.append(idem_batch(7, 0)) == 0
    assert partition.offsets() == (0, 4)
    with pytest.raises(OutOfOrderSequenceError, match="out of order"):
        partition.append(idem_batch(7, 9))
    assert partition.append(idem_batch(8, 0, epoch=1)) == 4
    with pytest.raises(ProducerFencedError, match="epoch 0"):
        partition.append(idem_batch(8, 2, epoch=0))
    assert partition.offsets() == (0, 6)
    partition.close()


@pytest.mark.parametrize("snapshot", ["kept", "missing", "corrupt"])
def test_retry_after_a_crash_is_recognised_from_the_log(tmp_path: Path, snapshot: str) -> None:
    directory = tmp_path / "p"
    partition = open_partition(directory, segment_bytes=400)  # rolls every few batches
    offsets = [partition.append(idem_batch(pid, seq)) for seq in range(0, 40, 2) for pid in (1, 2)]
    assert len(partition.segments) > 3
    snapshots = list(directory.glob("*.snapshot"))
    assert [p.stem for p in snapshots] == [f"{partition.segments[-1].base_offset:020d}"]
    if snapshot == "missing":
        snapshots[0].unlink()
    elif snapshot == "corrupt":
        snapshots[0].write_bytes(b"SPS1" + b"\0" * 20)
    # no close(): the process died; a new one opens the same directory
    reopened = open_partition(directory, segment_bytes=400)
    end = reopened.offsets()[1]
    # the last batches of each producer, retried after the restart, are duplicates
    assert reopened.append(idem_batch(1, 38)) == offsets[-2]
    assert reopened.append(idem_batch(2, 38)) == offsets[-1]
    assert reopened.append(idem_batch(2, 34)) == offsets[-5]
    assert reopened.offsets()[1] == end
    with pytest.raises(OutOfOrderSequenceError):
        reopened.append(idem_batch(1, 44))
    assert reopened.append(idem_batch(1, 40)) == end
    assert len(values(reopened)) == 2 * len(offsets) + 2
    reopened.close()
    partition.close()


def test_old_snapshots_are_removed_and_a_new_one_written_per_roll(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    partition = open_partition(directory, segment_bytes=400)
    bases = set()
    for seq in range(0, 60, 2):
        partition.append(idem_batch(1, seq))
        bases.add(partition.segments[-1].base_offset)
        assert len(list(directory.glob("*.snapshot"))) <= 1
    assert len(bases) > 3
    partition.close()


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("send"), st.integers(0, 2)),
            st.tuples(st.just("retry"), st.integers(0, 2), st.integers(1, BATCHES_KEPT)),
            st.just(("crash",)),
        ),
        max_size=40,
    )
)
def test_every_batch_is_stored_once_whatever_the_retries_and_crashes(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple]
) -> None:
    directory = tmp_path_factory.mktemp("prop") / "p"
    partition = open_partition(directory, segment_bytes=300)
    sent: dict[int, list[tuple[int, int]]] = {0: [], 1: [], 2: []}  # pid -> [(seq, offset)]
    opened = [partition]
    for step in steps:
        if step[0] == "send":
            pid = step[1]
            seq = 2 * len(sent[pid])
            sent[pid].append((seq, partition.append(idem_batch(pid, seq))))
        elif step[0] == "retry":
            pid, back = step[1], step[2]
            if len(sent[pid]) >= back:
                seq, offset = sent[pid][-back]
                assert partition.append(idem_batch(pid, seq)) == offset
        else:
            partition = open_partition(directory, segment_bytes=300)
            opened.append(partition)
    stored = values(partition)
    expected = sorted(
        b"%d:%d:%d" % (pid, seq, i) for pid in sent for seq, _ in sent[pid] for i in (0, 1)
    )
    assert sorted(stored) == expected
    for p in opened:
        p.close()
