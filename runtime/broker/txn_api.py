"""InitProducerId and the transaction APIs, answered by the transaction coordinator.

Older clients do not know PRODUCER_FENCED (90): below the versions that
introduced it they get INVALID_PRODUCER_EPOCH (47), as Kafka answers them.

Authorization (authorize.py): an idempotent InitProducerId needs
IDEMPOTENT_WRITE on the cluster or WRITE on some topic
(CLUSTER_AUTHORIZATION_FAILED); every request naming a transactional id
needs WRITE on it (DESCRIBE to describe or list it), else
TRANSACTIONAL_ID_AUTHORIZATION_FAILED; AddPartitionsToTxn WRITE on each topic
(TOPIC_AUTHORIZATION_FAILED, the others OPERATION_NOT_ATTEMPTED);
AddOffsetsToTxn and TxnOffsetCommit READ on the group
(GROUP_AUTHORIZATION_FAILED), TxnOffsetCommit READ on each topic.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

from runtime.broker.authorize import Access, Operation, ResourceType
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
        access: Access,
    ) -> None:
        self._access = access
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
        denied = self._init_denied(peer, txn_id)
        if denied is not None:
            code, pid, epoch = denied, -1, -1
        elif txn_id is None:  # an idempotent producer
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

    def _init_denied(self, peer: Peer, txn_id: str | None) -> int | None:
        if txn_id is None:
            if self._access.may_write_idempotently(peer):
                return None
            return ErrorCode.CLUSTER_AUTHORIZATION_FAILED
        return self._txn_denied(peer, txn_id)

    def _txn_denied(self, peer: Peer, txn_id: str) -> int | None:
        if self._access.transactional_id(peer, Operation.WRITE, txn_id):
            return None
        return ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED

    def _partitions_denied(self, peer: Peer, body: dict) -> dict[TopicPartition, int] | None:
        """Codes for every partition if the request may not go on, else None."""
        tps = [TopicPartition(t["name"], p) for t in body["topics"] for p in t["partitions"]]
        code = self._txn_denied(peer, body["transactional_id"])
        if code is not None:
            return dict.fromkeys(tps, code)
        refused = {
            t["name"]
            for t in body["topics"]
            if not self._access.topic(peer, Operation.WRITE, t["name"])
        }
        if not refused:
            return None
        return {
            tp: ErrorCode.TOPIC_AUTHORIZATION_FAILED
            if tp.topic in refused
            else ErrorCode.OPERATION_NOT_ATTEMPTED
            for tp in tps
        }

    async def add_partitions_to_txn(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        tps = [TopicPartition(t["name"], p) for t in body["topics"] for p in t["partitions"]]
        codes = self._partitions_denied(peer, body)
        if codes is None:
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
        code = self._txn_denied(peer, body["transactional_id"])
        if code is None and not self._access.group(peer, Operation.READ, body["group_id"]):
            code = ErrorCode.GROUP_AUTHORIZATION_FAILED
        if code is None:
            code = await self._txns.add_offsets(
                body["transactional_id"],
                body["producer_id"],
                body["producer_epoch"],
                body["group_id"],
            )
        return {"error_code": _for_version(header, code)}

    async def end_txn(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        code = self._txn_denied(peer, body["transactional_id"])
        if code is None:
            code = await self._txns.end_txn(
                body["transactional_id"],
                body["producer_id"],
                body["producer_epoch"],
                body["committed"],
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
        code = self._txn_denied(peer, body["transactional_id"])
        if code is None and not self._access.group(peer, Operation.READ, group_id):
            code = ErrorCode.GROUP_AUTHORIZATION_FAILED
        refused = {
            tp.topic
            for tp in offsets
            if code is None and not self._access.topic(peer, Operation.READ, tp.topic)
        }
        if refused:
            return _txn_commit_answer(offsets, refused)
        # v3+ (KIP-447) names the consumer's generation: a member a rebalance has
        # replaced cannot commit through a transaction either
        if code is None and (body.get("generation_id", -1) >= 0 or body.get("member_id")):
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
            if not self._access.transactional_id(peer, Operation.DESCRIBE, txn_id):
                states.append(
                    _unknown_transaction(txn_id, ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
                )
                continue
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
            if self._access.visible(
                peer, Operation.DESCRIBE, ResourceType.TRANSACTIONAL_ID, m.transactional_id
            )
            and (not wanted or m.state.value in wanted)
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


def _txn_commit_answer(offsets: dict, refused: set[str]) -> dict:
    """TxnOffsetCommit refused for some topics: those are TOPIC_AUTHORIZATION_FAILED,
    and nothing of the request is committed (the others: OPERATION_NOT_ATTEMPTED)."""
    by_topic: dict[str, list[dict]] = {}
    for tp in offsets:
        code = ErrorCode.TOPIC_AUTHORIZATION_FAILED
        if tp.topic not in refused:
            code = ErrorCode.OPERATION_NOT_ATTEMPTED
        by_topic.setdefault(tp.topic, []).append(
            {"partition_index": tp.partition, "error_code": code}
        )
    return {"topics": [{"name": n, "partitions": p} for n, p in by_topic.items()]}


def _unknown_transaction(txn_id: str, code: int = ErrorCode.TRANSACTIONAL_ID_NOT_FOUND) -> dict:
    return {
        "error_code": code,
        "transactional_id": txn_id,
        "transaction_state": "",
        "transaction_timeout_ms": 0,
        "transaction_start_time_ms": -1,
        "producer_id": -1,
        "producer_epoch": -1,
        "topics": [],
    }
