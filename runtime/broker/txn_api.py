"""InitProducerId and the transaction APIs, answered by the transaction coordinator.

Older clients do not know PRODUCER_FENCED (90): below the versions that
introduced it they get INVALID_PRODUCER_EPOCH (47), as Kafka answers them.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

from runtime.broker.coordinator import GroupCoordinator
from runtime.broker.settings import Handler, Peer
from runtime.broker.transactions import TransactionCoordinator
from runtime.log.offsets import Commit
from runtime.log.txn_store import TxnState
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.protocol.frames import RequestHeader
from runtime.types import TopicPartition

# the first version of each API whose clients understand PRODUCER_FENCED
_FENCED_FROM = {
    ApiKey.INIT_PRODUCER_ID: 4,
    ApiKey.ADD_PARTITIONS_TO_TXN: 2,
    ApiKey.ADD_OFFSETS_TO_TXN: 2,
    ApiKey.END_TXN: 2,
    ApiKey.TXN_OFFSET_COMMIT: 2,
}


def producer_ids() -> Callable[[], int]:
    """Producer ids unique across restarts: milliseconds at start, shifted, then counted."""
    counter = itertools.count((int(time.time() * 1000) << 8) + 1)
    return lambda: next(counter)


def _for_version(header: RequestHeader, code: int) -> int:
    if code == ErrorCode.PRODUCER_FENCED and header.api_version < _FENCED_FROM[header.api_key]:
        return ErrorCode.INVALID_PRODUCER_EPOCH
    return code


class TxnApi:
    def __init__(
        self,
        transactions: TransactionCoordinator,
        groups: GroupCoordinator,
        next_producer_id: Callable[[], int],
    ) -> None:
        self._txns = transactions
        self._groups = groups
        self._next_producer_id = next_producer_id
        self.by_key: dict[int, Handler] = {
            ApiKey.INIT_PRODUCER_ID: self.init_producer_id,
            ApiKey.ADD_PARTITIONS_TO_TXN: self.add_partitions_to_txn,
            ApiKey.ADD_OFFSETS_TO_TXN: self.add_offsets_to_txn,
            ApiKey.END_TXN: self.end_txn,
            ApiKey.TXN_OFFSET_COMMIT: self.txn_offset_commit,
            ApiKey.DESCRIBE_TRANSACTIONS: self.describe_transactions,
            ApiKey.LIST_TRANSACTIONS: self.list_transactions,
        }

    async def init_producer_id(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        txn_id = body.get("transactional_id")
        if txn_id is None:  # an idempotent producer
            code, pid, epoch = ErrorCode.NONE, self._next_producer_id(), 0
        else:
            code, pid, epoch = await self._txns.init_producer_id(
                txn_id,
                body["transaction_timeout_ms"],
                body.get("producer_id", -1),
                body.get("producer_epoch", -1),
            )
        return {
            "error_code": _for_version(header, code),
            "producer_id": pid,
            "producer_epoch": epoch,
        }

    async def add_partitions_to_txn(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        tps = [TopicPartition(t["name"], p) for t in body["topics"] for p in t["partitions"]]
        codes = await self._txns.add_partitions(
            body["transactional_id"], body["producer_id"], body["producer_epoch"], tps
        )
        by_topic: dict[str, list[dict]] = {}
        for tp in tps:
            by_topic.setdefault(tp.topic, []).append(
                {
                    "partition_index": tp.partition,
                    "partition_error_code": _for_version(header, codes[tp]),
                }
            )
        return {"results": [{"name": n, "results": r} for n, r in by_topic.items()]}

    async def add_offsets_to_txn(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        code = await self._txns.add_offsets(
            body["transactional_id"], body["producer_id"], body["producer_epoch"], body["group_id"]
        )
        return {"error_code": _for_version(header, code)}

    async def end_txn(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        code = await self._txns.end_txn(
            body["transactional_id"], body["producer_id"], body["producer_epoch"], body["committed"]
        )
        return {"error_code": _for_version(header, code)}

    async def txn_offset_commit(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        offsets = {
            TopicPartition(t["name"], p["partition_index"]): Commit(
                p["committed_offset"],
                p["committed_metadata"] or "",
                p.get("committed_leader_epoch", -1),
            )
            for t in body["topics"]
            for p in t["partitions"]
        }
        group_id = body["group_id"]
        # v3+ (KIP-447) names the consumer's generation: a member a rebalance has
        # replaced cannot commit through a transaction either
        code = None
        if body.get("generation_id", -1) >= 0 or body.get("member_id"):
            code = self._groups.check_member(
                group_id, body["generation_id"], body["member_id"], body.get("group_instance_id")
            )
        if code is None:
            code = await self._txns.txn_offset_commit(
                body["transactional_id"],
                group_id,
                body["producer_id"],
                body["producer_epoch"],
                offsets,
            )
        code = _for_version(header, code)
        by_topic: dict[str, list[dict]] = {}
        for tp in offsets:
            by_topic.setdefault(tp.topic, []).append(
                {"partition_index": tp.partition, "error_code": code}
            )
        return {"topics": [{"name": n, "partitions": p} for n, p in by_topic.items()]}

    async def describe_transactions(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        states = []
        for txn_id in body["transactional_ids"]:
            metadata = self._txns.describe(txn_id)
            if metadata is None:
                states.append(_unknown_transaction(txn_id))
                continue
            topics: dict[str, list[int]] = {}
            for tp in sorted(metadata.partitions):
                topics.setdefault(tp.topic, []).append(tp.partition)
            states.append(
                {
                    "error_code": ErrorCode.NONE,
                    "transactional_id": txn_id,
                    "transaction_state": metadata.state.value,
                    "transaction_timeout_ms": metadata.timeout_ms,
                    "transaction_start_time_ms": metadata.start_ms,
                    "producer_id": metadata.producer_id,
                    "producer_epoch": metadata.producer_epoch,
                    "topics": [{"topic": t, "partitions": p} for t, p in topics.items()],
                }
            )
        return {"transaction_states": states}

    async def list_transactions(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        known = {s.value for s in TxnState}
        wanted = set(body["state_filters"])
        producers = set(body["producer_id_filters"])
        min_duration_ms = body.get("duration_filter", -1)
        now_ms = int(time.time() * 1000)
        listed = [
            {
                "transactional_id": m.transactional_id,
                "producer_id": m.producer_id,
                "transaction_state": m.state.value,
            }
            for m in self._txns.transactions()
            if (not wanted or m.state.value in wanted)
            and (not producers or m.producer_id in producers)
            and (
                min_duration_ms < 0
                or (m.state is TxnState.ONGOING and now_ms - m.start_ms >= min_duration_ms)
            )
        ]
        return {
            "error_code": ErrorCode.NONE,
            "unknown_state_filters": sorted(wanted - known),
            "transaction_states": listed,
        }


def _unknown_transaction(txn_id: str) -> dict:
    return {
        "error_code": ErrorCode.TRANSACTIONAL_ID_NOT_FOUND,
        "transactional_id": txn_id,
        "transaction_state": "",
        "transaction_timeout_ms": 0,
        "transaction_start_time_ms": -1,
        "producer_id": -1,
        "producer_epoch": -1,
        "topics": [],
    }
