"""Transaction coordinator state, kept in the compacted internal topic __transaction_state.

Record format: key = version int16 (= 0) + the transactional id (UTF-8);
value = UTF-8 JSON of one TxnMetadata (see to_json), or null (tombstone) when a
transactional id is forgotten. All records of an id go to partition
crc32(id) % partitions, so the newest record per id wins when the topic is
replayed on open. A record is appended (and flushed as the log's flush policy
says) before the coordinator acts on the state it describes: after a crash the
replayed state is one the coordinator had reached or was about to act on.
"""

from __future__ import annotations

import enum
import struct
import threading
import zlib
from dataclasses import dataclass, field

import orjson

from runtime.errors import CorruptRecordError
from runtime.log.manager import Log
from runtime.log.offsets import Commit
from runtime.log.records import decode_batches, encode_batch, iter_batches
from runtime.types import TopicPartition

TXN_STATE_TOPIC = "__transaction_state"
_KEY_VERSION = struct.Struct(">h")
_READ_BYTES = 1 << 20

GroupOffsets = dict[TopicPartition, Commit]


class TxnState(enum.Enum):
    """Kafka's transaction states (the names DescribeTransactions reports)."""

    EMPTY = "Empty"
    ONGOING = "Ongoing"
    PREPARE_COMMIT = "PrepareCommit"
    PREPARE_ABORT = "PrepareAbort"
    COMPLETE_COMMIT = "CompleteCommit"
    COMPLETE_ABORT = "CompleteAbort"


@dataclass(slots=True)
class TxnMetadata:
    """One transactional id: its producer, and the transaction it has open, if any."""

    transactional_id: str
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: TxnState = TxnState.EMPTY
    partitions: set[TopicPartition] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)
    offsets: dict[str, GroupOffsets] = field(default_factory=dict)  # TxnOffsetCommits
    start_ms: int = -1
    update_ms: int = -1

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "producer_id": self.producer_id,
                "producer_epoch": self.producer_epoch,
                "timeout_ms": self.timeout_ms,
                "state": self.state.value,
                "partitions": sorted([tp.topic, tp.partition] for tp in self.partitions),
                "groups": sorted(self.groups),
                "offsets": {
                    group: [[tp.topic, tp.partition, *commit] for tp, commit in offsets.items()]
                    for group, offsets in self.offsets.items()
                },
                "start_ms": self.start_ms,
                "update_ms": self.update_ms,
            }
        )

    @classmethod
    def from_json(cls, transactional_id: str, data: bytes) -> TxnMetadata:
        try:
            doc = orjson.loads(data)
            return cls(
                transactional_id,
                int(doc["producer_id"]),
                int(doc["producer_epoch"]),
                int(doc["timeout_ms"]),
                TxnState(doc["state"]),
                {TopicPartition(t, int(p)) for t, p in doc["partitions"]},
                set(doc["groups"]),
                {
                    group: {TopicPartition(row[0], int(row[1])): Commit(*row[2:]) for row in rows}
                    for group, rows in doc["offsets"].items()
                },
                int(doc["start_ms"]),
                int(doc["update_ms"]),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise CorruptRecordError(
                f"bad transaction state for {transactional_id!r}: {exc}"
            ) from None


def encode_key(transactional_id: str) -> bytes:
    return _KEY_VERSION.pack(0) + transactional_id.encode()


def decode_key(key: bytes) -> str:
    if len(key) < _KEY_VERSION.size or _KEY_VERSION.unpack_from(key)[0] != 0:
        raise CorruptRecordError(f"bad transaction state key {key[:16]!r}")
    return key[_KEY_VERSION.size :].decode()


class TransactionStore:
    """Every transactional id's newest metadata, persisted in __transaction_state."""

    def __init__(self, log: Log, partitions: int = 4) -> None:
        self._log = log
        self._lock = threading.Lock()
        topics = log.topics()
        if TXN_STATE_TOPIC in topics:
            self._partitions = topics[TXN_STATE_TOPIC].partitions
        else:
            log.create_topic(TXN_STATE_TOPIC, partitions, {"cleanup.policy": "compact"})
            self._partitions = partitions

    def load(self) -> dict[str, TxnMetadata]:
        """Replay the topic: the newest metadata of every live transactional id."""
        found: dict[str, TxnMetadata] = {}
        for p in range(self._partitions):
            tp = TopicPartition(TXN_STATE_TOPIC, p)
            offset, end = self._log.offsets(tp)
            while offset < end:
                data = self._log.read(tp, offset, _READ_BYTES)
                for record in decode_batches(data):
                    if record.key is None:
                        continue
                    txn_id = decode_key(record.key)
                    if record.value is None:
                        found.pop(txn_id, None)
                    else:
                        found[txn_id] = TxnMetadata.from_json(txn_id, record.value)
                offset = max(offset + 1, *(h.next_offset for _, h in iter_batches(data)))
        return found

    def write(self, metadata: TxnMetadata) -> None:
        """Persist one state; raises (StorageError, OSError) if it could not be stored."""
        record = (encode_key(metadata.transactional_id), metadata.to_json(), self._now_ms(), ())
        with self._lock:
            self._log.append(self._partition_of(metadata.transactional_id), encode_batch([record]))

    def _partition_of(self, transactional_id: str) -> TopicPartition:
        index = zlib.crc32(transactional_id.encode()) % self._partitions
        return TopicPartition(TXN_STATE_TOPIC, index)

    def _now_ms(self) -> int:
        return int(self._log.clock() * 1000)
