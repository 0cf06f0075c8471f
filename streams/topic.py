"""Topics: a named log with key and value types, and how to send to it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import orjson

from runtime.compression import codec_id
from runtime.log.config import validate_topic_name
from runtime.log.record_columns import RecordColumns
from runtime.log.records import Header, RecordRow
from runtime.partitioner import partition_for_key
from runtime.types import TopicPartition
from streams.codec import Codec, JSONCodec, RawCodec, StrCodec, get_codec
from streams.errors import KeyDecodeError, ValueDecodeError
from streams.event import Event, Message, current_event
from streams.event_batch import EventBatch
from streams.model import Record as Model
from streams.pending_send import PendingSend
from streams.schema_codecs import FORMATS as SCHEMA_FORMATS
from streams.schema_codecs import schema_codec

if TYPE_CHECKING:
    from streams.wiring import Wiring

logger = logging.getLogger(__name__)

# Bounds the str-key cache of a topic (see Topic._cache_key): keys up to
# _CACHED_KEY_MAX characters, _KEY_CACHE_MAX of them.
_CACHED_KEY_MAX = 64
_KEY_CACHE_MAX = 32_768


@dataclass(frozen=True, slots=True)
class RecordMetadata:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int


def codec_for_type(typ: Any, explicit: str | Codec | None) -> Codec:
    if explicit is not None:
        return get_codec(explicit)
    if typ is bytes:
        return get_codec("raw")
    if typ is str:
        return get_codec("str")
    return get_codec("json")


def loader_for(typ: Any, codec: Codec) -> Callable[[bytes], Any]:
    """bytes -> value, building a model instance when the type is a Record."""
    if isinstance(typ, type) and issubclass(typ, Model):
        from_dict = typ.from_dict
        loads = codec.loads
        return lambda data: from_dict(loads(data))
    return codec.loads


def row_loader_for(typ: Any, codec: Codec) -> Callable[[bytes], Any]:
    """loader_for, for the exact `bytes` of decoded rows: the built-in codecs'
    own work is called directly (their conversions of other types are no-ops)."""
    if isinstance(typ, type) and issubclass(typ, Model):
        return loader_for(typ, codec)
    kind = type(codec)
    if kind is JSONCodec:
        return orjson.loads
    if kind is StrCodec:
        return bytes.decode
    if kind is RawCodec:
        return _same
    return codec.loads


def _headers(headers: Sequence[Header] | Mapping[str, bytes]) -> tuple[Header, ...]:
    if isinstance(headers, Mapping):
        return tuple(headers.items())
    return tuple(headers)


def _same(data: bytes) -> bytes:
    return data


def _load_column(load: Callable[[bytes], Any], raw: Sequence[bytes | None]) -> list[Any]:
    if load is _same:
        return list(raw)
    if None in raw:
        return [None if b is None else load(b) for b in raw]
    return list(map(load, raw))


def column_loader_for(typ: Any, codec: Codec) -> Callable[[Sequence[bytes | None]], list[Any]]:
    """row_loader_for, a column at a time: a Record through the built-in JSON
    codec is built by two maps, with no call of a loader per value between them."""
    if isinstance(typ, type) and issubclass(typ, Model) and type(codec) is JSONCodec:
        from_dict = typ.from_dict

        def load_records(raw: Sequence[bytes | None]) -> list[Any]:
            if None in raw:
                return [None if b is None else from_dict(orjson.loads(b)) for b in raw]
            return list(map(from_dict, map(orjson.loads, raw)))  # type: ignore[arg-type]

        return load_records
    return partial(_load_column, row_loader_for(typ, codec))


class Topic:
    """A topic of the app's log. Create with `app.topic(...)`.

    `send()` buffers a record in the worker's producer and returns a future
    of its RecordMetadata; the record is stored within the producer's linger
    time, and before the worker commits the offset of the event that sent it.
    """

    def __init__(
        self,
        wiring: Wiring,
        name: str,
        *,
        key_type: Any = None,
        value_type: Any = None,
        key_serializer: str | Codec | None = None,
        value_serializer: str | Codec | None = None,
        partitions: int | None = None,
        config: Mapping[str, str] | None = None,
        internal: bool = False,
        compression: str | None = None,
    ) -> None:
        validate_topic_name(name)
        self.codec = codec_id(compression if compression is not None else wiring.compression)
        self.compression = compression  # None: the app's
        if partitions is not None and partitions < 1:
            raise ValueError(f"topic {name!r}: partitions must be >= 1, got {partitions}")
        self._wiring = wiring
        self.name = name
        self.key_type = key_type
        self.value_type = value_type
        self.key_codec = self._codec(key_type, key_serializer, "key")
        self.value_codec = self._codec(value_type, value_serializer, "value")
        self._load_key = loader_for(key_type, self.key_codec)
        self._load_value = loader_for(value_type, self.value_codec)
        self._load_key_row = row_loader_for(key_type, self.key_codec)
        self._load_value_row = row_loader_for(value_type, self.value_codec)
        self._load_key_column = column_loader_for(key_type, self.key_codec)
        self._load_value_column = column_loader_for(value_type, self.value_codec)
        self._declared_partitions = partitions
        self.config = dict(config or {})
        self.internal = internal
        self.partitions: int = partitions or wiring.default_partitions
        self._tps: dict[int, TopicPartition] = {}  # one per partition, not one per record
        # A built-in codec's bytes of a str key depend on the key alone: cacheable.
        self._str_keys = type(self.key_codec) in (StrCodec, JSONCodec, RawCodec)
        self._key_cache: dict[str, tuple[bytes, TopicPartition]] = {}
        self._key_cache_partitions = self.partitions
        self._dump_value = self.value_codec.dumps

    def __repr__(self) -> str:
        return f"<Topic {self.name} partitions={self.partitions}>"

    def _codec(self, typ: Any, explicit: str | Codec | None, part: str) -> Codec:
        if isinstance(explicit, str) and explicit in SCHEMA_FORMATS:
            # through the schema registry, under the subject <topic>-key / <topic>-value
            return schema_codec(explicit, typ, f"{self.name}-{part}", self._wiring.schema_registry)
        return codec_for_type(typ, explicit)

    # --- encoding ------------------------------------------------------------

    def encode_key(self, key: Any) -> bytes | None:
        return None if key is None else self.key_codec.dumps(key)

    def encode_value(self, value: Any) -> bytes | None:
        return None if value is None else self.value_codec.dumps(value)

    def decode_batch(self, rows: Sequence[RecordRow] | RecordColumns, partition: int) -> EventBatch:
        """Decode rows (or columns) of one partition into columns, one codec call
        per column where the codecs allow (see `decode` for undecodable records)."""
        if not rows:
            return EventBatch(self.name, partition, [], [], [], [], [])
        if isinstance(rows, RecordColumns):  # no tuple per record to take apart
            offsets, timestamps, raw_keys, raw_values, headers = (
                rows.offsets, rows.timestamps, rows.keys, rows.values, rows.headers
            )  # fmt: skip
        else:
            offsets, timestamps, raw_keys, raw_values, headers = zip(*rows, strict=True)
        try:
            keys = self._load_key_column(raw_keys)
            values = self._load_value_column(raw_values)
        except Exception:
            if isinstance(rows, RecordColumns):
                rows = rows.rows()
            events = self.decode(rows, partition)  # names or skips the bad records
            return EventBatch(
                self.name,
                partition,
                [e.message.offset for e in events],
                [e.message.timestamp_ms for e in events],
                [e.key for e in events],
                [e.value for e in events],
                [e.message.headers for e in events],
            )
        return EventBatch(self.name, partition, offsets, timestamps, keys, values, headers)

    def decode(self, rows: Sequence[RecordRow], partition: int) -> list[Event]:
        """Decode stored records (rows of one partition) into events, a batch at a time.

        An undecodable key or value raises KeyDecodeError/ValueDecodeError with
        its coordinates, or is logged and skipped, as the app's
        `on_decode_error` says."""
        name = self.name
        load_key, load_value = self._load_key_row, self._load_value_row
        try:
            return [
                Event(
                    None if k is None else load_key(k),
                    None if v is None else load_value(v),
                    Message(name, partition, offset, ts, headers),
                )
                for offset, ts, k, v, headers in rows
            ]
        except Exception:
            pass  # some record does not decode: go again one by one to name it
        events: list[Event] = []
        append = events.append
        for row in rows:
            offset, ts, k, v, headers = row
            try:
                key = None if k is None else load_key(k)
            except Exception as exc:
                if self._decode_failed(KeyDecodeError, partition, row, exc):
                    continue
            try:
                value = None if v is None else load_value(v)
            except Exception as exc:
                if self._decode_failed(ValueDecodeError, partition, row, exc):
                    continue
            append(Event(key, value, Message(name, partition, offset, ts, headers)))
        return events

    def _decode_failed(
        self, error_type: type, partition: int, row: RecordRow, exc: Exception
    ) -> bool:
        offset = row[0]
        what = "key" if error_type is KeyDecodeError else "value"
        error = error_type(
            f"cannot decode {what} topic={self.name} partition={partition} offset={offset}: {exc}",
            topic=self.name,
            partition=partition,
            offset=offset,
        )
        policy = self._wiring.on_decode_error
        if policy == "dead-letter" and self._dead_letter(partition, row, exc):
            logger.error("undecodable record copied to the dead letters: %s", error)
            return True
        if policy in ("skip", "dead-letter"):
            logger.error("skipping undecodable record: %s", error)
            return True
        raise error from exc

    def _dead_letter(self, partition: int, row: RecordRow, exc: Exception) -> bool:
        """Copy the record as it is to the app's dead-letter topic (with Kafka
        Streams' `__streams.errors.*` headers); False if there is none to write to."""
        target = self._wiring.dead_letters
        if target is None or target is self or self._wiring.producer is None:
            return False
        offset, ts, k, v, headers = row
        why: tuple[Header, ...] = (
            ("__streams.errors.exception", type(exc).__name__.encode()),
            ("__streams.errors.message", str(exc).encode(errors="replace")),
            ("__streams.errors.topic", self.name.encode()),
            ("__streams.errors.partition", str(partition).encode()),
            ("__streams.errors.offset", str(offset).encode()),
        )
        self._wiring.producer.send_nowait(
            TopicPartition(target.name, 0), k, v, ts, (*headers, *why)
        )
        return True

    # --- sending -------------------------------------------------------------

    def partition_for(self, key_bytes: bytes | None) -> int:
        if key_bytes is None:
            event = current_event()
            if event is not None:
                batch = event._batch  # its topic and partition without building the Message
                source = event.message if batch is None else batch
                if source.topic == self.name:
                    return source.partition
            return self._wiring.round_robin(self.name, self.partitions)
        return partition_for_key(key_bytes, self.partitions)

    def send_soon(
        self,
        key: Any = None,
        value: Any = None,
        *,
        partition: int | None = None,
        timestamp: float | None = None,
        headers: Sequence[Header] | Mapping[str, bytes] | None = None,
    ) -> PendingSend:
        """Buffer a record without waiting; returns a future of its metadata
        (a PendingSend: an asyncio future is made only if it is awaited)."""
        # _prepare, inlined: this runs once per record an agent forwards.
        if partition is None and key.__class__ is str and self._str_keys:
            hit = self._key_cache.get(key)
            if hit is None or self._key_cache_partitions != self.partitions:
                hit = self._cache_key(key)
            key_bytes, tp = hit
        else:
            key_bytes = None if key is None else self.key_codec.dumps(key)
            tp = self._tp(self._partition(key_bytes, partition))
        value_bytes = None if value is None else self._dump_value(value)
        ts_ms = int((time.time() if timestamp is None else timestamp) * 1000)
        hdrs = _headers(headers) if headers else ()
        producer = self._wiring.producer
        if producer is None:
            producer = self._wiring.producer_for(self)  # raises: not running
        outcome, index = producer.send_batched(tp, key_bytes, value_bytes, ts_ms, hdrs)
        return PendingSend(outcome, index, ts_ms)

    def _cache_key(self, key: str) -> tuple[bytes, TopicPartition]:
        """A str key's bytes and partition, remembered: an agent forwards many
        records of the same keys, and the pair costs two calls to find again."""
        cache = self._key_cache
        if self._key_cache_partitions != self.partitions or len(cache) >= _KEY_CACHE_MAX:
            cache.clear()  # all at once: cheaper per record than tracking recency
            self._key_cache_partitions = self.partitions
        key_bytes = self.key_codec.dumps(key)
        hit = (key_bytes, self._tp(partition_for_key(key_bytes, self.partitions)))
        if len(key) <= _CACHED_KEY_MAX:
            cache[key] = hit
        return hit

    def _partition(self, key_bytes: bytes | None, partition: int | None) -> int:
        if partition is None:
            if key_bytes is None:
                return self.partition_for(None)
            return partition_for_key(key_bytes, self.partitions)
        if not 0 <= partition < self.partitions:
            raise ValueError(
                f"topic {self.name!r} has {self.partitions} partitions, no partition {partition}"
            )
        return partition

    def send_nowait(
        self,
        key: Any = None,
        value: Any = None,
        *,
        partition: int | None = None,
        timestamp: float | None = None,
        headers: Sequence[Header] | Mapping[str, bytes] | None = None,
    ) -> None:
        """Buffer a record and ask for no result: no future per record. A batch
        that fails still fails the worker's next flush, so an offset is never
        committed past it (what agent sinks and group_by forwarders use)."""
        key_bytes, value_bytes, partition, ts_ms, hdrs = self._prepare(
            key, value, partition, timestamp, headers
        )
        self._wiring.producer_for(self).send_nowait(
            self._tp(partition),
            key_bytes,
            value_bytes,
            ts_ms,
            hdrs,
            want_future=False,
        )

    def _tp(self, partition: int) -> TopicPartition:
        tp = self._tps.get(partition)
        if tp is None:
            tp = self._tps[partition] = TopicPartition(self.name, partition)
        return tp

    def _prepare(
        self,
        key: Any,
        value: Any,
        partition: int | None,
        timestamp: float | None,
        headers: Sequence[Header] | Mapping[str, bytes] | None,
    ) -> tuple[bytes | None, bytes | None, int, int, Sequence[Header]]:
        key_bytes = None if key is None else self.key_codec.dumps(key)
        value_bytes = None if value is None else self._dump_value(value)
        partition = self._partition(key_bytes, partition)
        ts_ms = int((time.time() if timestamp is None else timestamp) * 1000)
        hdrs = _headers(headers) if headers else ()
        return key_bytes, value_bytes, partition, ts_ms, hdrs

    async def send(
        self,
        key: Any = None,
        value: Any = None,
        *,
        partition: int | None = None,
        timestamp: float | None = None,
        headers: Sequence[Header] | Mapping[str, bytes] | None = None,
    ) -> PendingSend:
        """Buffer a record; `await` the returned future to wait until stored."""
        future = self.send_soon(
            key, value, partition=partition, timestamp=timestamp, headers=headers
        )
        await asyncio.sleep(0)  # let the producer run between sends in tight loops
        return future

    async def send_and_wait(
        self,
        key: Any = None,
        value: Any = None,
        *,
        partition: int | None = None,
        timestamp: float | None = None,
        headers: Sequence[Header] | Mapping[str, bytes] | None = None,
    ) -> RecordMetadata:
        return await self.send_soon(
            key, value, partition=partition, timestamp=timestamp, headers=headers
        )

    def tps(self) -> list[TopicPartition]:
        return [TopicPartition(self.name, p) for p in range(self.partitions)]
