"""What every request handler of the broker shares: who it is, and who asked.

The broker is a single node: node id 0 leads every partition, with itself as
the only replica, and coordinates every group.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from runtime.broker.endpoints import Address
from runtime.broker.limits import BrokerLimits
from runtime.log.offsets import OFFSETS_TOPIC
from runtime.log.txn_store import TXN_STATE_TOPIC
from runtime.protocol.frames import RequestHeader

NODE_ID = 0
CLUSTER_ID = "streams-embedded-log"
INTERNAL_TOPICS = frozenset({OFFSETS_TOPIC, TXN_STATE_TOPIC})
"""The broker's own topics: never deleted nor written by clients."""
ANONYMOUS = "User:ANONYMOUS"
"""The principal of a client that did not authenticate (Kafka's name)."""


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    host: str
    port: int
    auto_create_topics: bool = True
    default_partitions: int = 1
    limits: BrokerLimits = BrokerLimits()  # noqa: RUF009 (frozen value)


@dataclass(frozen=True, slots=True)
class Peer:
    """Who sent the request, and on which listener.

    `principal` is User:NAME once SASL or a client certificate said who it is,
    else ANONYMOUS; `advertised` is the address of the listener the request
    came in on, which Metadata and FindCoordinator answer with (None: the
    broker's settings)."""

    client_id: str
    host: str
    principal: str = ANONYMOUS
    advertised: Address | None = None


Handler = Callable[[RequestHeader, dict, Peer], Awaitable[dict | None]]
