"""Agents: async functions that consume a stream, declared with `@app.agent`.

    @app.agent(rides, concurrency=2, sink=[prices])
    async def price(stream):
        async for ride in stream:
            yield quote(ride)          # each yield goes to every sink

An agent with concurrency N runs N instances; partition p of the source goes
to instance p % N, so each partition is processed in order.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Union

from streams.ask import replies_for, reply
from streams.channel import Channel
from streams.stream import Stream, StreamContext
from streams.topic import RecordMetadata, Topic

if TYPE_CHECKING:
    from streams.wiring import Wiring

logger = logging.getLogger(__name__)

AgentFun = Callable[[Stream], AsyncIterator[Any] | Awaitable[None]]
Sink = Union[Topic, "Agent", Callable[[Any], Any]]


class AgentError(Exception):
    """An agent raised while processing an event; carries its coordinates."""

    def __init__(
        self, agent: str, topic: str | None, partition: int | None, offset: int | None
    ) -> None:
        where = (
            f"topic={topic} partition={partition} offset={offset}"
            if topic is not None
            else "outside any event"
        )
        super().__init__(f"agent {agent!r} raised while processing {where}")
        self.agent, self.topic, self.partition, self.offset = agent, topic, partition, offset


class Agent:
    def __init__(
        self,
        fn: AgentFun,
        *,
        wiring: Wiring,
        name: str,
        source: Topic,
        concurrency: int = 1,
        sinks: Sequence[Sink] = (),
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"agent {name!r}: concurrency must be >= 1")
        self.fn = fn
        self.name = name
        self.source = source
        self.concurrency = concurrency
        self.sinks = list(sinks)
        self._wiring = wiring
        self.app: Any = None  # set by App.agent; used by test_context()
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __repr__(self) -> str:
        return f"<Agent {self.name} source={self.source.name} concurrency={self.concurrency}>"

    async def send(
        self, key: Any = None, value: Any = None, **kwargs: Any
    ) -> asyncio.Future[RecordMetadata]:
        """Send a value to the agent's source topic."""
        return await self.source.send(key, value, **kwargs)

    async def ask(
        self, value: Any = None, *, key: Any = None, timeout: float = 30.0, value_type: Any = None
    ) -> Any:
        """Send `value` to the agent and return what the agent yields for it
        (JSON-decoded, into a `value_type` Record if given); AskError if the
        agent raised on it, TimeoutError after `timeout` seconds. See streams.ask."""
        return await replies_for(self._wiring).ask(self, value, key, timeout, value_type)

    async def run(self, channel: Channel, index: int = 0) -> None:
        """Run one instance over `channel` until the channel closes."""
        main = asyncio.current_task()
        forward_errors: list[BaseException] = []

        def watch(task: asyncio.Task[None]) -> None:
            # A forwarder (group_by/through) that fails takes its agent down.
            if not task.cancelled() and task.exception() is not None:
                forward_errors.append(task.exception())  # type: ignore[arg-type]
                if main is not None:
                    main.cancel()

        stream = Stream(
            channel,
            StreamContext(self._wiring, self.name, index, self.concurrency, watch),
            source=self.source,
        )
        try:
            result = self.fn(stream)
            if inspect.isasyncgen(result):
                async for value in result:
                    await reply(self._wiring, value)
                    await self._to_sinks(value)
            else:
                await result  # type: ignore[misc]
        except asyncio.CancelledError:
            if forward_errors:
                raise forward_errors[0] from None
            raise
        except Exception as exc:
            await reply(self._wiring, None, error=exc)  # an asker waits on this event
            raise
        finally:
            for task in stream._tasks:
                task.remove_done_callback(watch)
                task.cancel()
            if stream._tasks:
                await asyncio.gather(*stream._tasks, return_exceptions=True)
        if forward_errors:
            raise forward_errors[0]

    async def _to_sinks(self, value: Any) -> None:
        for sink in self.sinks:
            if isinstance(sink, Agent):
                await sink.send(value=value)
            elif isinstance(sink, Topic):
                sink.send_nowait(value=value)
            else:
                result = sink(value)
                if inspect.isawaitable(result):
                    await result

    def test_context(self) -> Any:
        """Run this agent without a worker: `async with agent.test_context() as ctx:
        await ctx.put(value)`. See streams.testing.AgentTestContext."""
        from streams.testing import AgentTestContext

        return AgentTestContext(self, self._wiring)
