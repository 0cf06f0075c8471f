"""One Fetch per broker for every partition it leads, for kafka://.

The framework fetches each partition in its own loop (`transport.fetch(tp,
offset)`). Sent as they come, that is one long-poll Fetch per partition, each on
a connection of its own: a broker then serves N requests where one would do
(the built-in broker spent twice the CPU for 8 partitions as for 1). Here the
calls that wait (max_wait_s > 0) are gathered per leader: each broker gets one
Fetch at a time, for every partition it leads that someone waits on, on one
connection, and each caller gets its partition's part of the answer.

A partition whose caller is busy with its last answer is fetched too, at the
offset after that answer ("ahead"), so that the next long poll of a broker
covers every partition in use; the answer waits for the caller's next call at
that offset (any other offset drops it).

Invariants:
- at most one Fetch per broker is in flight from here;
- each waiting call is in exactly one Fetch, and is answered from it: with its
  partition's answer, an empty one if the broker left it out, or the error that
  broke the request (a call never waits past its own timeout);
- at most one ahead answer per partition is kept; partitions not asked about
  for AHEAD_IDLE_S are no longer fetched ahead.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from dataclasses import dataclass, field

from runtime.client.cluster import Cluster, backoff_s
from runtime.client.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from runtime.client.fetch_requests import check_fetch_answer, fetch_body
from runtime.log.records import HEADER_SIZE, LOG_OVERHEAD, parse_header
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.types import TopicPartition

logger = logging.getLogger(__name__)

FETCH_LANE = "fetch"
EMPTY_ANSWER_PAUSE_S = 0.05
AHEAD_IDLE_S = 5.0
REQUEST_BYTES_MAX = 64 << 20  # a Fetch answer's total, like Kafka's fetch.max.bytes
_SLACK_S = 30.0  # on top of max_wait for the answer to a Fetch
_LENGTH = struct.Struct(">i")
Buffer = bytes | bytearray | memoryview


@dataclass(slots=True)
class _Want:
    node: int  # the leader when asked: a moved one answers NOT_LEADER_OR_FOLLOWER
    offset: int
    max_bytes: int
    deadline_s: float  # loop time: answered empty then if nothing came for it
    future: asyncio.Future[dict]


@dataclass(slots=True)
class _Ahead:
    offset: int  # where to fetch ahead, or where the kept answer starts
    max_bytes: int
    asked_s: float  # loop time of the partition's last call
    answer: dict | None = None


@dataclass(slots=True)
class _Node:
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class Fetcher:
    """Waiting fetches of many partitions, one Fetch per broker; see the module doc."""

    def __init__(self, cluster: Cluster, isolation_level: int) -> None:
        self._cluster = cluster
        self._isolation = isolation_level
        self._wants: dict[TopicPartition, _Want] = {}
        self._ahead: dict[TopicPartition, _Ahead] = {}
        self._nodes: dict[int, _Node] = {}
        self.requests = 0  # Fetch requests sent (tests, benchmarks)

    async def close(self) -> None:
        tasks = [n.task for n in self._nodes.values() if n.task is not None]
        self._nodes.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        for want in self._wants.values():
            if not want.future.done():
                want.future.cancel()
        self._wants.clear()

    async def fetch(
        self, tp: TopicPartition, offset: int, max_bytes: int, max_wait_s: float
    ) -> dict:
        """The Fetch answer's part for `tp` (its `error_code`, `records`, ...)."""
        loop = asyncio.get_running_loop()
        ahead = self._ahead.get(tp)
        if ahead is not None:
            ahead.asked_s = loop.time()
            if ahead.answer is not None:
                answer, ahead.answer = ahead.answer, None
                if ahead.offset == offset:
                    self._predict(tp, offset, max_bytes, answer)
                    return answer
        if tp in self._wants:  # a second caller of the same partition: on its own
            return await self.fetch_now(tp, offset, max_bytes, max_wait_s)
        node = await self._cluster.leader_for(tp)
        want = _Want(node, offset, max_bytes, loop.time() + max_wait_s, loop.create_future())
        self._wants[tp] = want
        self._wake(node)
        try:
            async with asyncio.timeout(max_wait_s + _SLACK_S):
                answer = await want.future
        except TimeoutError:
            raise KafkaTimeoutError(
                f"no Fetch answer for {tp} in {max_wait_s + _SLACK_S}s"
            ) from None
        finally:
            if self._wants.get(tp) is want:
                del self._wants[tp]
        self._predict(tp, offset, max_bytes, answer)
        return answer

    async def fetch_now(
        self, tp: TopicPartition, offset: int, max_bytes: int, max_wait_s: float
    ) -> dict:
        """A Fetch of `tp` alone, sent at once (reads that must not wait for a
        broker's long poll of other partitions, such as a table's recovery)."""
        node = await self._cluster.leader_for(tp)
        positions = {tp: (offset, max_bytes)}
        response = await self._request(node, positions, int(max_wait_s * 1000), lane="fetch-now")
        return _answers(response).get(tp, _empty(offset))

    # --- per broker ----------------------------------------------------------------

    def _wake(self, node: int) -> None:
        state = self._nodes.get(node)
        if state is None:
            state = self._nodes[node] = _Node()
        if state.task is None or state.task.done():
            state.task = asyncio.get_running_loop().create_task(
                self._serve(node, state), name=f"fetch-node-{node}"
            )
        state.wake.set()

    def _predict(self, tp: TopicPartition, offset: int, max_bytes: int, answer: dict) -> None:
        """Fetch `tp` ahead from where this answer ends, until it is asked again."""
        if answer.get("error_code", 0) != ErrorCode.NONE:
            self._ahead.pop(tp, None)
            return
        following = _following(answer.get("records") or b"", offset)
        self._ahead[tp] = _Ahead(following, max_bytes, asyncio.get_running_loop().time())

    async def _serve(self, node: int, state: _Node) -> None:
        failures = 0
        while True:
            await state.wake.wait()
            state.wake.clear()
            wants = {
                tp: w for tp, w in self._wants.items() if w.node == node and not w.future.done()
            }
            if not wants:
                continue
            positions = {tp: (w.offset, w.max_bytes) for tp, w in wants.items()}
            positions.update(self._ahead_of(node, wants))
            now = asyncio.get_running_loop().time()
            max_wait_ms = max(0, int((min(w.deadline_s for w in wants.values()) - now) * 1000))
            try:
                response = await self._request(node, positions, max_wait_ms, lane=FETCH_LANE)
            except (KafkaConnectionError, KafkaTimeoutError, KafkaError) as exc:
                for want in wants.values():
                    if not want.future.done():
                        want.future.set_exception(exc)
                        want.future.exception()  # its caller may have timed out
                # a broker that fails: its callers refresh metadata and come back
                await asyncio.sleep(backoff_s(failures, self._cluster.retry_backoff_s, 1.0))
                failures += 1
                state.wake.set()
                continue
            failures = 0
            answers = _answers(response)
            self._deliver(wants, positions, answers)
            if any(w.node == node and not w.future.done() for w in self._wants.values()):
                if not any(_has_news(a) for a in answers.values()):
                    # answered early with nothing: a broker that does not hold
                    # a long poll must not make this loop spin
                    await asyncio.sleep(EMPTY_ANSWER_PAUSE_S)
                state.wake.set()  # wants still waiting: the next Fetch at once

    def _ahead_of(
        self, node: int, wants: dict[TopicPartition, _Want]
    ) -> dict[TopicPartition, tuple[int, int]]:
        now = asyncio.get_running_loop().time()
        out = {}
        for tp, ahead in list(self._ahead.items()):
            if now - ahead.asked_s > AHEAD_IDLE_S:
                del self._ahead[tp]
            elif (
                tp not in wants and ahead.answer is None and self._cluster.cached_leader(tp) == node
            ):
                out[tp] = (ahead.offset, ahead.max_bytes)
        return out

    def _deliver(
        self,
        wants: dict[TopicPartition, _Want],
        positions: dict[TopicPartition, tuple[int, int]],
        answers: dict[TopicPartition, dict],
    ) -> None:
        now = asyncio.get_running_loop().time()
        for tp, (offset, _) in positions.items():
            answer = answers.get(tp, _empty(offset))
            want = wants.get(tp)
            if want is not None:
                # like a Fetch of its own: answered when something came for it
                # or its wait is over, not because another partition had data
                if not want.future.done() and (_has_news(answer) or now >= want.deadline_s):
                    want.future.set_result(answer)
                continue
            late = self._wants.get(tp)  # asked while this Fetch had it as ahead
            if (
                late is not None
                and late.offset == offset
                and not late.future.done()
                and _has_news(answer)
            ):
                late.future.set_result(answer)
                continue
            ahead = self._ahead.get(tp)
            if (
                ahead is not None
                and ahead.offset == offset
                and answer["error_code"] == ErrorCode.NONE
                and answer.get("records")
            ):
                ahead.answer = answer

    async def _request(
        self,
        node: int,
        positions: dict[TopicPartition, tuple[int, int]],
        max_wait_ms: int,
        *,
        lane: str,
    ) -> dict:
        body = fetch_body(
            positions,
            max_wait_ms=max_wait_ms,
            min_bytes=1,
            max_bytes=min(REQUEST_BYTES_MAX, sum(b for _, b in positions.values())),
            isolation=self._isolation,
        )
        conn = await self._cluster.connection(node, lane, patient=False)
        self.requests += 1
        response = await conn.request(ApiKey.FETCH, body, timeout_s=max_wait_ms / 1000 + _SLACK_S)
        return check_fetch_answer(response)


def _following(records: Buffer, offset: int) -> int:
    """The offset after the last whole batch of `records` (`offset` if none):
    only batch lengths are read on the way to it, one header is parsed."""
    pos, end, last = 0, len(records), -1
    while end - pos >= HEADER_SIZE:
        (length,) = _LENGTH.unpack_from(records, pos + 8)
        if length < HEADER_SIZE - LOG_OVERHEAD or pos + LOG_OVERHEAD + length > end:
            break  # a partial batch ends a fetch answer
        last, pos = pos, pos + LOG_OVERHEAD + length
    if last < 0:
        return offset
    return max(offset, parse_header(records, last).next_offset)


def _has_news(answer: dict) -> bool:
    return bool(answer.get("records")) or answer["error_code"] != ErrorCode.NONE


def _answers(response: dict) -> dict[TopicPartition, dict]:
    return {
        TopicPartition(t["topic"], p["partition_index"]): p
        for t in response["responses"]
        for p in t["partitions"]
    }


def _empty(offset: int) -> dict:
    return {
        "partition_index": -1,
        "error_code": ErrorCode.NONE,
        "high_watermark": -1,
        "last_stable_offset": -1,
        "aborted_transactions": None,
        "records": b"",
        "fetch_offset": offset,
    }
