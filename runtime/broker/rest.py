"""The REST proxy: the log over HTTP/JSON.

    GET  /topics                                        names, partitions, policy
    GET  /topics/{topic}                                configs, per-partition offsets
    POST /topics/{topic}        {"records": [{"key", "value", "partition"?, "headers"?}]}
    GET  /topics/{topic}/partitions/{p}/records?offset=N[&max_bytes=][&timeout_ms=]
    GET  /groups                                        committed offsets and lag

Values are stored as JSON (UTF-8), string keys as UTF-8 and other keys as
JSON, which is what the framework's default codecs read. Records read back
give `value` as JSON when the stored bytes are JSON, else (binary, or text that
is not JSON) the bytes base64-encoded in `value_b64` and no `value`: a client
never takes them for a JSON string. Keys come back as JSON when they parse,
else as text, else base64 in `key_b64`.

A POST to a topic that does not exist creates it (with the broker's default
partition count, within its limits) when the broker auto-creates topics, as a
Kafka producer's would be; else it is a 404. Partition numbers, in bodies,
paths and query strings, are integers written in ASCII digits: JSON booleans
and other digits are refused. A client that goes away mid-request is no
internal error: it is logged at debug.
Errors are JSON objects {"error": ..., "message": ...} with a fitting status
(507 storage_error when the disk refused a write: retry once it has room).
A POST is checked whole (partitions, headers of strings or null, batch sizes)
before anything is appended, so a refused one has written nothing (but the
disk may refuse a later partition's write after an earlier one was stored).

Whoever asks (http_auth.py's principal, else User:ANONYMOUS) is held to the
broker's ACLs, as over the Kafka APIs: listing and describing need DESCRIBE
on the topic (a listing leaves out the others), POST WRITE, reading READ;
/groups lists the groups and topics the principal may DESCRIBE. A refusal
is 403 topic_authorization_failed, whether or not the topic exists.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
from aiohttp import ClientPayloadError, web

from runtime.broker.authorize import Access, Operation, ResourceType, allow_everything
from runtime.broker.http_auth import PRINCIPAL
from runtime.broker.settings import ANONYMOUS, Peer
from runtime.broker.topic_creation import TopicCreator, TopicLimitError
from runtime.errors import (
    CorruptRecordError,
    InvalidTopicError,
    OffsetOutOfRangeError,
    RecordTooLargeError,
    StorageError,
    UnknownTopicError,
)
from runtime.log.config import validate_topic_name
from runtime.log.records import decode_batches, encode_batch
from runtime.logs import RateLimitedLog
from runtime.partitioner import partition_for_key
from runtime.transport import EmbeddedTransport
from runtime.types import TopicPartition

logger = logging.getLogger(__name__)
_storage_errors = RateLimitedLog(logger)

RECORDS_PER_POST_MAX = 10_000
BODY_BYTES_MAX = 16 << 20
FETCH_BYTES_MAX = 4 << 20
FETCH_WAIT_MAX_MS = 30_000

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


def _error(status: int, error: str, message: str) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps({"error": error, "message": message}),
        content_type="application/json",
    )


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        return _error(exc.status, exc.reason.lower().replace(" ", "_"), exc.text or exc.reason)
    except UnknownTopicError as exc:
        return _error(404, "unknown_topic", str(exc))
    except InvalidTopicError as exc:
        return _error(400, "invalid_topic", str(exc))
    except RecordTooLargeError as exc:
        return _error(413, "record_too_large", str(exc))
    except OffsetOutOfRangeError as exc:
        return _error(416, "offset_out_of_range", str(exc))
    except CorruptRecordError as exc:
        return _error(400, "corrupt_record", str(exc))
    except StorageError as exc:  # a full disk: records of earlier partitions may be stored
        _storage_errors.warning(
            ("rest", exc.errno), "REST request failed path=%s error=%s", request.path, exc
        )
        return _error(507, "storage_error", str(exc))
    except _BadRequest as exc:
        return _error(400, "bad_request", str(exc))
    except _Denied as exc:
        return _error(403, "topic_authorization_failed", str(exc))
    except TopicLimitError as exc:
        return _error(403, "policy_violation", str(exc))
    except (ConnectionError, asyncio.IncompleteReadError, ClientPayloadError) as exc:
        # the client went away: nobody reads this answer (nginx's 499), and
        # raising would make aiohttp log a traceback
        logger.debug("REST client went away path=%s error=%r", request.path, exc)
        return _error(499, "client_closed_request", str(exc))
    except Exception:
        logger.exception("REST request failed path=%s", request.path)
        return _error(500, "internal_error", "the broker failed to answer; see its log")


class _BadRequest(Exception):
    pass


class _Denied(Exception):
    pass


def _peer(request: web.Request) -> Peer:
    return Peer("rest", request.remote or "", request.get(PRINCIPAL, ANONYMOUS))


_INTEGER = re.compile(r"-?[0-9]+")  # int() also takes " 7", "+7", "1_0" and non-ASCII digits


def _strict_int(raw: str, what: str) -> int:
    if not _INTEGER.fullmatch(raw):
        raise _BadRequest(f"{what} must be an integer, got {raw!r}")
    return int(raw)


def _int_param(request: web.Request, name: str, default: int | None, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        if default is None:
            raise _BadRequest(f"query parameter {name!r} is required")
        return default
    value = _strict_int(raw, f"query parameter {name!r}")
    if not lo <= value <= hi:
        raise _BadRequest(f"query parameter {name!r} must be in [{lo}, {hi}], got {value}")
    return value


def _encode_key(key: Any) -> bytes | None:
    if key is None:
        return None
    if isinstance(key, str):
        return key.encode()
    return orjson.dumps(key)


def _show_key(data: bytes | None) -> dict[str, Any]:
    if data is None:
        return {"key": None}
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return {"key_b64": base64.b64encode(data).decode()}
    try:
        return {"key": orjson.loads(data)}
    except orjson.JSONDecodeError:
        return {"key": text}


def _show_value(data: bytes | None) -> dict[str, Any]:
    if data is None:
        return {"value": None}
    try:
        return {"value": orjson.loads(data)}
    except orjson.JSONDecodeError:
        return {"value_b64": base64.b64encode(data).decode()}


_Row = tuple[bytes | None, bytes | None, int, list[tuple[str, bytes | None]]]


def _by_partition(
    records: list[Any], partitions: int, topic: str
) -> tuple[dict[int, list[_Row]], list[tuple[int, int]]]:
    """The records as rows per partition, and each record's (partition, index)."""
    by_partition: dict[int, list[_Row]] = {}
    order: list[tuple[int, int]] = []
    now_ms = int(time.time() * 1000)
    for i, record in enumerate(records):
        if not isinstance(record, dict) or "value" not in record:
            raise _BadRequest(f"record {i} must be an object with a 'value'")
        key = _encode_key(record.get("key"))
        value = None if record["value"] is None else orjson.dumps(record["value"])
        partition = record.get("partition")
        if partition is None:
            partition = partition_for_key(key, partitions) if key else i % partitions
        # bool is an int in Python, not a partition number in JSON
        if isinstance(partition, bool) or not isinstance(partition, int):
            raise _BadRequest(f"record {i}: partition must be an integer, got {partition!r}")
        if not 0 <= partition < partitions:
            raise _BadRequest(f"record {i}: topic {topic!r} has no partition {partition}")
        headers = record.get("headers") or {}
        if not isinstance(headers, dict) or not all(
            v is None or isinstance(v, str) for v in headers.values()
        ):
            raise _BadRequest(f"record {i}: headers must be an object of strings (or null)")
        hdrs = [(k, None if v is None else v.encode()) for k, v in headers.items()]
        rows = by_partition.setdefault(partition, [])
        order.append((partition, len(rows)))
        rows.append((key, value, now_ms, hdrs))
    return by_partition, order


class RestProxy:
    """The proxy over `transport`'s log, holding callers to `access` (the broker's
    ACLs). `auto_create_topics` and `default_partitions` are the broker's
    settings; `creator` (the broker's) keeps auto-created topics within its limits."""

    def __init__(
        self,
        transport: EmbeddedTransport,
        access: Access | None = None,
        *,
        auto_create_topics: bool = False,
        default_partitions: int = 1,
        creator: TopicCreator | None = None,
    ) -> None:
        self._transport = transport
        self._access = access or allow_everything()
        self._auto_create = auto_create_topics
        self._default_partitions = default_partitions
        self._creator = creator

    def app(self, *, before: Sequence[Middleware] = ()) -> web.Application:
        """The aiohttp application; `before`: middlewares run ahead of the handlers'
        error mapping (authentication)."""
        app = web.Application(middlewares=[*before, _errors], client_max_size=BODY_BYTES_MAX)
        app.router.add_get("/topics", self.list_topics)
        app.router.add_get("/topics/{topic}", self.describe_topic)
        app.router.add_post("/topics/{topic}", self.produce)
        app.router.add_get("/topics/{topic}/partitions/{partition}/records", self.consume)
        app.router.add_get("/groups", self.list_groups)
        return app

    def _visible(self, request: web.Request, rtype: ResourceType, name: str) -> bool:
        return self._access.visible(_peer(request), Operation.DESCRIBE, rtype, name)

    async def _topic(
        self, name: str, request: web.Request | None = None, operation: Operation | None = None
    ) -> Any:
        validate_topic_name(name)  # a bad name is a bad request, not an unknown topic
        denied = (
            request is not None
            and operation is not None
            and not self._access.topic(_peer(request), operation, name)
        )
        if denied:  # before telling whether the topic exists
            raise _Denied(f"not authorized: {operation} on topic {name!r}")
        info = await self._transport.topic(name)
        if info is None:
            raise UnknownTopicError(f"unknown topic {name!r}", topic=name)
        return info

    async def list_topics(self, request: web.Request) -> web.Response:
        topics = await self._transport.topics()
        return _json(
            [
                {
                    "name": name,
                    "partitions": info.partitions,
                    "cleanup.policy": info.config.cleanup_policy,
                }
                for name, info in sorted(topics.items())
                if self._visible(request, ResourceType.TOPIC, name)
            ]
        )

    async def describe_topic(self, request: web.Request) -> web.Response:
        info = await self._topic(request.match_info["topic"], request, Operation.DESCRIBE)
        partitions = []
        for p in range(info.partitions):
            start, end = await self._transport.offsets(TopicPartition(info.name, p))
            partitions.append({"partition": p, "log_start_offset": start, "high_watermark": end})
        return _json(
            {"name": info.name, "partitions": partitions, "configs": info.config.to_configs()}
        )

    async def _topic_to_write(self, name: str, request: web.Request) -> Any:
        validate_topic_name(name)
        info = await self._transport.topic(name)
        if info is not None:
            return info
        if not self._auto_create:
            raise UnknownTopicError(
                f"unknown topic {name!r} (the broker does not auto-create topics)", topic=name
            )
        if not self._access.may_create_topic(_peer(request), name):
            raise UnknownTopicError(
                f"unknown topic {name!r} (not authorized to create it)", topic=name
            )
        if self._creator is not None:
            return await self._creator.create(name, self._default_partitions, auto=True)
        return await self._transport.ensure_topic(name, self._default_partitions)

    async def produce(self, request: web.Request) -> web.Response:
        name = request.match_info["topic"]
        validate_topic_name(name)
        if not self._access.topic(_peer(request), Operation.WRITE, name):
            raise _Denied(f"not authorized: WRITE on topic {name!r}")
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            raise _BadRequest(f"body is not JSON: {exc}") from None
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list) or not records:
            raise _BadRequest('body must be {"records": [{"key": ..., "value": ...}, ...]}')
        if len(records) > RECORDS_PER_POST_MAX:
            raise _BadRequest(f"at most {RECORDS_PER_POST_MAX} records per request")
        info = await self._topic_to_write(name, request)  # a refused body creates nothing
        by_partition, order = _by_partition(records, info.partitions, info.name)
        batches = {p: encode_batch(rows) for p, rows in by_partition.items()}
        # Refuse before appending anything: a refused request that wrote some of
        # its partitions would be doubled by the client's retry.
        for partition, batch in batches.items():
            if len(batch) > info.config.max_message_bytes:
                raise RecordTooLargeError(
                    f"records for {info.name}[{partition}] make a batch of {len(batch)} bytes, "
                    f"over max.message.bytes {info.config.max_message_bytes}; nothing was written",
                    topic=info.name,
                    partition=partition,
                )
        bases: dict[int, int] = {}
        for partition, batch in batches.items():
            tp = TopicPartition(info.name, partition)
            bases[partition] = await self._transport.append(tp, batch)
        offsets = [{"partition": p, "offset": bases[p] + i} for p, i in order]
        return _json({"offsets": offsets})

    async def consume(self, request: web.Request) -> web.Response:
        info = await self._topic(request.match_info["topic"], request, Operation.READ)
        partition = _strict_int(request.match_info["partition"], "partition")
        if not 0 <= partition < info.partitions:
            raise UnknownTopicError(
                f"topic {info.name!r} has no partition {partition}", topic=info.name
            )
        tp = TopicPartition(info.name, partition)
        start, _ = await self._transport.offsets(tp)
        offset = _int_param(request, "offset", start, 0, 2**63 - 1)
        max_bytes = _int_param(request, "max_bytes", 1 << 20, 1, FETCH_BYTES_MAX)
        timeout_ms = _int_param(request, "timeout_ms", 0, 0, FETCH_WAIT_MAX_MS)
        data = await self._transport.fetch(
            tp, offset, max_bytes=max_bytes, max_wait_s=timeout_ms / 1000
        )
        out = []
        for r in decode_batches(data):
            if r.offset < offset:
                continue
            item: dict[str, Any] = {"offset": r.offset, "timestamp": r.timestamp_ms}
            item.update(_show_key(r.key))
            item.update(_show_value(r.value))
            if r.headers:
                item["headers"] = {
                    k: None if v is None else v.decode(errors="replace") for k, v in r.headers
                }
            out.append(item)
        return _json(out)

    async def list_groups(self, request: web.Request) -> web.Response:
        groups = []
        for group in sorted(await self._transport.groups()):
            if not self._visible(request, ResourceType.GROUP, group):
                continue
            committed = await self._transport.committed(group)
            partitions = []
            for tp, offset in sorted(committed.items()):
                if not self._visible(request, ResourceType.TOPIC, tp.topic):
                    continue
                try:
                    _, end = await self._transport.offsets(tp)
                except UnknownTopicError:
                    continue
                partitions.append(
                    {
                        "topic": tp.topic,
                        "partition": tp.partition,
                        "committed": offset,
                        "high_watermark": end,
                        "lag": max(0, end - offset),
                    }
                )
            groups.append({"group": group, "partitions": partitions})
        return _json(groups)
