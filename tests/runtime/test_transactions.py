"""The transaction coordinator and the partitions' transaction state, on a real Log.

Named after the failures they guard against: markers missing on some partitions
after a crash mid-EndTxn, a zombie producer writing after it was fenced, a
transaction that never ends holding readers forever, offsets of an aborted
transaction becoming visible.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest
from log_helpers import ManualClock

from runtime.broker.transactions import TransactionCoordinator, TransactionSettings
from runtime.errors import ProducerFencedError
from runtime.log import Log, OffsetStore
from runtime.log.records import encode_batch
from runtime.log.txn_store import TxnState
from runtime.protocol.codes import ErrorCode
from runtime.types import TopicPartition

A0, A1 = TopicPartition("a", 0), TopicPartition("a", 1)


def txn_batch(pid: int, epoch: int, seq: int, *values: bytes) -> bytearray:
    rows = [(None, v, 1_000, ()) for v in values]
    return encode_batch(
        rows, producer_id=pid, producer_epoch=epoch, base_sequence=seq, attributes=0x10
    )


class Harness:
    def __init__(self, path: Path | None) -> None:
        self.clock = ManualClock()
        self.log = Log.open(path, clock=self.clock)
        for name in ("a",):
            if name not in self.log.topics():
                self.log.create_topic(name, 2)
        self.ids = itertools.count(100)
        self.txns = TransactionCoordinator(
            self.log,
            OffsetStore(self.log),
            lambda: next(self.ids),
            settings=TransactionSettings(abort_check_interval_ms=3_600_000),
            clock=self.clock,
        )

    async def __aenter__(self) -> Harness:
        await self.txns.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.txns.stop()
        self.log.close()

    async def begin(self, txn_id: str, *tps: TopicPartition) -> tuple[int, int]:
        code, pid, epoch = await self.txns.init_producer_id(txn_id, 60_000)
        assert code == ErrorCode.NONE
        codes = await self.txns.add_partitions(txn_id, pid, epoch, tps)
        assert set(codes.values()) == {ErrorCode.NONE}
        return pid, epoch


def run(coro) -> None:
    asyncio.run(coro)


def test_commit_and_abort_markers_move_the_last_stable_offset(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Harness(tmp_path) as h:
            pid, epoch = await h.begin("t", A0)
            assert h.txns.check_produce(pid, epoch, A0) == ErrorCode.NONE
            assert h.txns.check_produce(pid, epoch, A1) == ErrorCode.INVALID_TXN_STATE
            h.log.append(A0, txn_batch(pid, epoch, 0, b"x", b"y"))
            assert h.log.last_stable_offset(A0) == 0
            assert h.log.read(A0, 0, 1 << 20, end_offset=0) == b""
            assert await h.txns.end_txn("t", pid, epoch, commit=False) == ErrorCode.NONE
            assert h.log.last_stable_offset(A0) == 3  # 2 records + the marker
            assert h.log.aborted_transactions(A0, 0, 3) == [(pid, 0)]
            assert await h.txns.add_partitions("t", pid, epoch, [A0]) == {A0: ErrorCode.NONE}
            h.log.append(A0, txn_batch(pid, epoch, 2, b"z"))
            assert await h.txns.end_txn("t", pid, epoch, commit=True) == ErrorCode.NONE
            assert h.log.last_stable_offset(A0) == 5
            assert h.log.aborted_transactions(A0, 3, 5) == []
            # a retried EndTxn is answered as the first; one in another direction is not
            assert await h.txns.end_txn("t", pid, epoch, commit=True) == ErrorCode.NONE
            assert await h.txns.end_txn("t", pid, epoch, commit=False) == (
                ErrorCode.INVALID_TXN_STATE
            )

    run(scenario())


def test_end_txn_of_a_transaction_never_begun_is_invalid(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Harness(tmp_path) as h:
            _, pid, epoch = await h.txns.init_producer_id("t", 60_000)
            assert await h.txns.end_txn("t", pid, epoch, commit=True) == (
                ErrorCode.INVALID_TXN_STATE
            )
            assert await h.txns.end_txn("nobody", pid, epoch, commit=True) == (
                ErrorCode.INVALID_PRODUCER_ID_MAPPING
            )
            assert (await h.txns.init_producer_id("t", 10**9))[0] == (
                ErrorCode.INVALID_TRANSACTION_TIMEOUT
            )

    run(scenario())


def test_a_new_instance_fences_the_zombie_at_the_coordinator_and_the_partition(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with Harness(tmp_path) as h:
            pid, old = await h.begin("t", A0)
            h.log.append(A0, txn_batch(pid, old, 0, b"zombie"))
            code, pid2, new = await h.txns.init_producer_id("t", 60_000)
            assert (code, pid2) == (ErrorCode.NONE, pid) and new > old
            assert h.txns.describe("t").state is TxnState.EMPTY
            assert await h.txns.end_txn("t", pid, old, commit=True) == ErrorCode.PRODUCER_FENCED
            assert h.txns.check_produce(pid, old, A0) == ErrorCode.INVALID_PRODUCER_EPOCH
            with pytest.raises(ProducerFencedError):  # the abort marker fenced it here too
                h.log.append(A0, txn_batch(pid, old, 1, b"late"))
            assert h.log.aborted_transactions(A0, 0, 10) == [(pid, 0)]
            assert h.log.last_stable_offset(A0) == 2

    run(scenario())


def test_a_transaction_past_its_timeout_is_aborted_and_its_producer_fenced(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with Harness(tmp_path) as h:
            _, pid, epoch = await h.txns.init_producer_id("slow", 1_000)
            await h.txns.add_partitions("slow", pid, epoch, [A1])
            h.log.append(A1, txn_batch(pid, epoch, 0, b"slow"))
            assert await h.txns.abort_timed_out() == 0
            h.clock.advance_ms(1_001)
            assert await h.txns.abort_timed_out() == 1
            assert h.log.last_stable_offset(A1) == 2
            assert await h.txns.end_txn("slow", pid, epoch, commit=True) == (
                ErrorCode.PRODUCER_FENCED
            )

    run(scenario())


def test_offsets_land_only_with_a_committed_transaction(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Harness(tmp_path) as h:
            for commit, offset in ((False, 5), (True, 7)):
                _, pid, epoch = await h.txns.init_producer_id("ctp", 60_000)
                assert await h.txns.add_offsets("ctp", pid, epoch, "g") == ErrorCode.NONE
                assert (
                    await h.txns.txn_offset_commit("ctp", "g", pid, epoch, {A0: (offset, "")})
                    == ErrorCode.NONE
                )
                await h.txns.end_txn("ctp", pid, epoch, commit=commit)
            assert OffsetStore(h.log).fetch("g") == {A0: (7, "", -1)}

    run(scenario())


def test_a_crash_between_prepare_and_the_last_marker_completes_on_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The coordinator persisted PrepareCommit and wrote the marker of one partition
    when the process died: the restarted coordinator writes the others and the
    offsets, so the transaction is committed everywhere, not half."""

    async def crash() -> None:
        h = Harness(tmp_path)
        await h.txns.start()
        pid, epoch = await h.begin("t", A0, A1)
        await h.txns.add_offsets("t", pid, epoch, "g")
        await h.txns.txn_offset_commit("t", "g", pid, epoch, {A0: (42, "m")})
        for tp in (A0, A1):
            h.log.append(tp, txn_batch(pid, epoch, 0, b"v-%d" % tp.partition))
        real = h.log.append_marker
        calls = []

        def dies_on_the_second(tp, *args, **kwargs):
            calls.append(tp)
            if len(calls) == 2:
                raise OSError(5, "simulated crash")
            return real(tp, *args, **kwargs)

        monkeypatch.setattr(h.log, "append_marker", dies_on_the_second)
        code = await h.txns.end_txn("t", pid, epoch, commit=True)
        assert code == ErrorCode.COORDINATOR_NOT_AVAILABLE
        assert h.txns.describe("t").state is TxnState.PREPARE_COMMIT
        assert h.log.last_stable_offset(A0) == 2 and h.log.last_stable_offset(A1) == 0
        await h.txns.stop()
        h.log.close()

    async def restart() -> None:
        async with Harness(tmp_path) as h:
            assert h.txns.describe("t").state is TxnState.COMPLETE_COMMIT
            assert h.log.last_stable_offset(A0) == h.log.offsets(A0)[1]
            assert h.log.last_stable_offset(A1) == h.log.offsets(A1)[1]
            assert h.log.aborted_transactions(A1, 0, 10) == []
            assert OffsetStore(h.log).fetch("g") == {A0: (42, "m", -1)}

    run(crash())
    monkeypatch.undo()
    run(restart())


def test_open_and_aborted_transactions_survive_a_restart_of_the_log(tmp_path: Path) -> None:
    """The partition's transaction state is rebuilt on open (snapshot or scan)."""
    log = Log.open(tmp_path)
    log.create_topic("a", 1, {"segment.bytes": "200"})
    log.append(A0, txn_batch(7, 0, 0, b"a1"))
    log.append_marker(A0, 7, 0, commit=False)
    for _ in range(5):
        log.append(A0, encode_batch([(None, b"plain", 1_000, ())]))
    log.append(A0, txn_batch(8, 0, 0, b"open"))
    open_at = log.offsets(A0)[1] - 1
    lso, aborted = log.last_stable_offset(A0), log.aborted_transactions(A0, 0, 100)
    assert lso == open_at and aborted == [(7, 0)]
    log.close()
    with Log.open(tmp_path) as again:
        assert again.last_stable_offset(A0) == lso
        assert again.aborted_transactions(A0, 0, 100) == aborted
