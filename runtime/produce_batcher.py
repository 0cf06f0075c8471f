"""One Produce request per leader for the appends that start together, for kafka://.

The framework's producer drains every partition's buffer at once (on linger or
flush), one append per partition; sent alone, each is a Produce request and an
answer of its own to encode, write, read and parse. Appends that reach a leader
in the same turn of the event loop go out as one request instead, and each
hears its own partition's answer (error code, base offset).

Invariants:
- a request holds at most one batch per partition (a second append of the
  same partition waits for the next request), so a partition's batches keep
  their order;
- a failed request fails each of its appends with the same error, and retries
  stay the caller's, per partition;
- an append whose waiter was cancelled is still sent if its request was
  built, and its answer is dropped (as a cancelled single request's would be).
"""

from __future__ import annotations

import asyncio
from typing import Any

from runtime.client.cluster import Cluster
from runtime.client.errors import KafkaError
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.types import TopicPartition

Answer = tuple[int, int]
"""A partition's error code and base offset."""

_Parts = dict[TopicPartition, tuple[bytes | bytearray, "asyncio.Future[Answer]"]]


class ProduceBatcher:
    """Gathers appends per leader node into Produce requests; see the module docstring."""

    def __init__(self, cluster: Cluster, *, lane: str, acks: int = -1, timeout_ms: int = 30_000):
        self._cluster = cluster
        self._lane = lane
        self._acks = acks
        self._timeout_ms = timeout_ms
        self._pending: dict[int, _Parts] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def send(self, node: int, tp: TopicPartition, data: bytes | bytearray) -> Answer:
        """`tp`'s answer to the request that carried `data` to `node`."""
        loop = asyncio.get_running_loop()
        parts = self._pending.get(node)
        while parts is not None and tp in parts:  # that request is this partition's already
            await asyncio.wait([parts[tp][1]])  # its outcome is not this append's
            parts = self._pending.get(node)
        if parts is None:
            parts = self._pending[node] = {}
            loop.call_soon(self._start, node)  # after the appends started in this turn
        future: asyncio.Future[Answer] = loop.create_future()
        parts[tp] = (data, future)
        return await future

    def _start(self, node: int) -> None:
        parts = self._pending.pop(node, None)
        if not parts:
            return
        task = asyncio.get_running_loop().create_task(self._request(node, parts))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _request(self, node: int, parts: _Parts) -> None:
        topics: dict[str, list[dict[str, Any]]] = {}
        for tp, (data, _) in parts.items():
            topics.setdefault(tp.topic, []).append(
                {"partition_index": tp.partition, "records": data}
            )
        body = {
            "transactional_id": None,
            "acks": self._acks,
            "timeout_ms": self._timeout_ms,
            "topics": [{"name": name, "partitions": ps} for name, ps in topics.items()],
        }
        try:
            response = await self._cluster.request(
                node, ApiKey.PRODUCE, body, lane=self._lane, patient=False
            )
        except BaseException as exc:
            for _, future in parts.values():
                if not future.done():
                    future.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        answers = {
            (topic["name"], part["partition_index"]): (part["error_code"], part["base_offset"])
            for topic in response["responses"]
            for part in topic["partitions"]
        }
        for tp, (_, future) in parts.items():
            if future.done():
                continue
            answer = answers.get((tp.topic, tp.partition))
            if answer is None:  # the broker left it out of its answer
                future.set_exception(
                    KafkaError(
                        ErrorCode.UNKNOWN_SERVER_ERROR,
                        "the Produce answer names no such partition",
                        topic=tp.topic,
                        partition=tp.partition,
                    )
                )
            else:
                future.set_result(answer)
