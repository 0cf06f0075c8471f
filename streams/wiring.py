"""The running parts an app's topics, tables and agents reach for.

An App's definitions (topics, tables, agents) hold one Wiring; a worker fills
it in when it starts (transport, producer, conductor) and empties it when it
stops. Keeping it one small object, instead of handing `app` around, keeps
the dependency narrow: definitions see a producer and a subscription point.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from runtime.producer import Producer
from runtime.transport import Transport

if TYPE_CHECKING:
    from streams.ask import Replies
    from streams.channel import Channel
    from streams.schema_codecs import RegistryClient
    from streams.topic import Topic


class Subscriber(Protocol):
    async def subscribe(self, topic: Topic, index: int, count: int) -> Channel: ...


class NotRunningError(RuntimeError):
    pass


@dataclass
class Wiring:
    app_id: str
    default_partitions: int = 8
    on_decode_error: str = "stop"
    schema_registry_url: str | None = None  # None: $STREAMS_SCHEMA_REGISTRY
    compression: str | None = None  # the producer side's codec (streams.compression)
    dead_letters: Topic | None = None  # where on_decode_error="dead-letter" copies records
    transport: Transport | None = None
    producer: Producer | None = None
    conductor: Subscriber | None = None
    replies: Replies | None = None  # agent.ask()'s reader of the reply topic (streams.ask)
    add_table: Callable[[Any], Any] | None = None  # App._add_table: tables derived by joins
    _counters: dict[str, itertools.count[int]] = field(default_factory=dict)

    def producer_for(self, topic: Topic) -> Producer:
        if self.producer is None:
            raise NotRunningError(
                f"cannot send to {topic.name!r}: the app is not running "
                "(start a worker, or use `async with app:` in a script)"
            )
        return self.producer

    def schema_registry(self) -> RegistryClient:
        """The client of the app's schema registry (codecs call it on first use)."""
        from streams.schema_codecs import registry_client

        return registry_client(self.schema_registry_url)

    def require_transport(self) -> Transport:
        if self.transport is None:
            raise NotRunningError("the app is not running")
        return self.transport

    def require_conductor(self) -> Subscriber:
        if self.conductor is None:
            raise NotRunningError("the app is not running")
        return self.conductor

    def round_robin(self, topic: str, partitions: int) -> int:
        counter = self._counters.get(topic)
        if counter is None:
            counter = self._counters[topic] = itertools.count()
        return next(counter) % partitions
