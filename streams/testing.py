"""Run an agent without a worker, like Faust's `agent.test_context()`.

    async with count.test_context() as agent:
        event = await agent.put(Ride(zone="a", rider="r1"), key="a")
        assert demand["a"] == 1
        assert agent.results == [...]       # what the agent yielded

The app runs on `memory://` with memory stores: tables, sinks and group_by
work as in a worker. `put()` returns once the agent has finished with the
event (it asked for the next one), so assertions right after it hold.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import TYPE_CHECKING, Any

from runtime.transport import EmbeddedTransport
from streams.channel import Channel
from streams.event import Event, Message

if TYPE_CHECKING:
    from streams.agent import Agent
    from streams.wiring import Wiring
    from streams.worker import Worker

PUT_TIMEOUT_S = 10.0


class AgentTestContext:
    def __init__(self, agent: Agent, wiring: Wiring) -> None:
        self.agent = agent
        self.results: list[Any] = []
        self._wiring = wiring
        self._channel = Channel(maxsize_batches=1)
        self._offsets: dict[int, itertools.count[int]] = {}
        self._worker: Worker | None = None
        self._task: asyncio.Task[None] | None = None
        self._sinks_before: list[Any] = []

    async def __aenter__(self) -> AgentTestContext:
        from streams.worker import Worker

        app = self.agent.app
        self._worker = Worker(app, transport=EmbeddedTransport("memory://", None), run_agents=False)
        await self._worker.start()
        self._sinks_before = self.agent.sinks
        self.agent.sinks = [*self.agent.sinks, self.results.append]
        self._task = asyncio.get_running_loop().create_task(self.agent.run(self._channel))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._channel.close()
        try:
            if self._worker is not None and self._worker.conductor is not None:
                await self._worker.conductor.stop_fetching()  # ends group_by streams too
            if self._task is not None:
                async with asyncio.timeout(PUT_TIMEOUT_S):
                    await self._task
        finally:
            self.agent.sinks = self._sinks_before
            if self._worker is not None:
                await self._worker.stop()

    async def put(
        self,
        value: Any = None,
        *,
        key: Any = None,
        partition: int = 0,
        timestamp: float | None = None,
    ) -> Event:
        """Hand one event to the agent; return once it has been processed."""
        topic = self.agent.source
        counter = self._offsets.setdefault(partition, itertools.count())
        ts_ms = int((time.time() if timestamp is None else timestamp) * 1000)
        event = Event(key, value, Message(topic.name, partition, next(counter), ts_ms))
        assert self._task is not None
        async with asyncio.timeout(PUT_TIMEOUT_S):
            await self._channel.put([event])
            await self._settle()
        return event

    async def _settle(self) -> None:
        """Wait until the event and everything it caused (sends, repartitioned
        events, sinks) has been processed."""
        assert self._task is not None and self._worker is not None
        worker = self._worker
        while True:
            drained = asyncio.ensure_future(self._channel.drained.wait())
            try:
                await asyncio.wait({drained, self._task}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                drained.cancel()
            if self._task.done():
                self._task.result()  # re-raise what the agent raised
                raise RuntimeError(f"agent {self.agent.name!r} returned before the event")
            assert worker.producer is not None and worker.conductor is not None
            await worker.producer.flush()
            if await _quiet(worker):
                return
            await asyncio.sleep(0.001)  # let fetchers and readers move; re-check


async def _quiet(worker: Worker) -> bool:
    """Every fetched partition is at its end and every channel is processed."""
    conductor = worker.conductor
    assert conductor is not None
    for tp, position in conductor.positions.items():
        _, end = await worker.transport.offsets(tp)
        if position < end:
            return False
    return all(channel.drained.is_set() for channel in conductor.channels())
