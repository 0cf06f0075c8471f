"""Creating and deleting topics for the broker: within its limits, off the event loop.

Opening a partition creates a directory and files and fsyncs; a thousand of them
take most of a second. That work runs in a worker thread (asyncio.to_thread), so
every other connection is served meanwhile. It is safe beside the loop thread's
appends and reads because Log.create_topic does its work under the Log's lock
and publishes a new topic only when all of it is open (readers never see half a
topic), and appends and reads take no Log lock at all.

Invariants:
- One creation or deletion at a time (an asyncio lock): the limits are checked
  under it, so two concurrent requests cannot both fit the last partitions; and
  a deletion (on the loop thread, it takes the Log's lock) never waits on that
  lock for a creation in a thread, which would stall the loop.
- The lock is held until the thread is done, even if the request that started
  it is cancelled (a thread cannot be stopped).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from runtime.broker.limits import BrokerLimits
from runtime.errors import StreamsRuntimeError
from runtime.log.config import TopicInfo
from runtime.transport import EmbeddedTransport

T = TypeVar("T")


class TopicLimitError(StreamsRuntimeError):
    """A topic the broker's limits leave no room for (Kafka: POLICY_VIOLATION).

    Its message names the limit and the flag that sets it."""


class TopicCreator:
    def __init__(self, transport: EmbeddedTransport, limits: BrokerLimits) -> None:
        self._transport = transport
        self._limits = limits
        self._lock = asyncio.Lock()

    @property
    def _log(self) -> Any:
        return self._transport.log

    def check(self, name: str, partitions: int, *, auto: bool = False) -> None:
        """Raise TopicLimitError if a new topic of `partitions` does not fit now."""
        topics = self._log.topics()
        count = len(topics)
        held = sum(info.partitions for info in topics.values())
        limits = self._limits
        if auto and count >= limits.auto_create_topics_max:
            raise TopicLimitError(
                f"topic {name!r} not auto-created: the broker holds {count} topics, the limit "
                f"for auto-creation (--auto-create-topics-max {limits.auto_create_topics_max})",
                topic=name,
            )
        if count >= limits.topics_max:
            raise TopicLimitError(
                f"topic {name!r} not created: the broker holds {count} topics, its limit "
                f"(--topics-max {limits.topics_max})",
                topic=name,
            )
        if held + partitions > limits.partitions_max:
            raise TopicLimitError(
                f"topic {name!r} not created: {partitions} more partitions would make "
                f"{held + partitions}, over the broker's limit "
                f"(--partitions-max {limits.partitions_max})",
                topic=name,
            )

    async def create(
        self,
        name: str,
        partitions: int,
        configs: Mapping[str, str] | None = None,
        *,
        auto: bool = False,
    ) -> TopicInfo:
        """Create a topic in a worker thread; TopicLimitError if it does not fit."""
        async with self._lock:
            self.check(name, partitions, auto=auto)
            return await _in_thread(self._log.create_topic, name, partitions, configs)

    async def grow(self, name: str, count: int) -> TopicInfo:
        """Give a topic `count` partitions in all (CreatePartitions), within the
        broker's partition limit; in a worker thread, as creation."""
        async with self._lock:
            topics = self._log.topics()
            held = sum(info.partitions for info in topics.values())
            added = count - topics[name].partitions if name in topics else 0
            if held + added > self._limits.partitions_max:
                raise TopicLimitError(
                    f"partitions of topic {name!r} not added: {added} more would make "
                    f"{held + added}, over the broker's limit "
                    f"(--partitions-max {self._limits.partitions_max})",
                    topic=name,
                )
            return await _in_thread(self._log.add_partitions, name, count)

    async def delete(self, name: str) -> None:
        """Delete a topic in a worker thread: closing and unlinking many partitions
        must not stall the other clients (appends and fetches racing it see the
        topic gone)."""
        async with self._lock:
            await _in_thread(self._log.delete_topic, name)

    async def idle(self) -> None:
        """Wait for a creation in progress to end (before the log is closed)."""
        async with self._lock:
            pass


async def _in_thread(fn: Callable[..., T], *args: Any) -> T:
    """fn(*args) in a worker thread. A cancelled caller still waits for the thread
    (its lock is held until the log is consistent again), then is cancelled."""
    work = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        await asyncio.wait([work])
        if not work.cancelled():
            work.exception()  # seen: no "exception never retrieved" at exit
        raise
