"""What every request handler of the broker shares: who it is, and who asked.

The broker is a single node: node id 0 leads every partition, with itself as
the only replica, and coordinates every group.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from runtime.broker.limits import BrokerLimits
from runtime.log.offsets import OFFSETS_TOPIC
from runtime.log.txn_store import TXN_STATE_TOPIC
from runtime.protocol.frames import RequestHeader

NODE_ID = 0
CLUSTER_ID = "streams-embedded-log"
INTERNAL_TOPICS = frozenset({OFFSETS_TOPIC, TXN_STATE_TOPIC})
"""The broker's own topics: never deleted nor written by clients."""


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    host: str
    port: int
    auto_create_topics: bool = True
    default_partitions: int = 1
    limits: BrokerLimits = BrokerLimits()  # noqa: RUF009 (frozen value)


@dataclass(frozen=True, slots=True)
class Peer:
    """Who sent the request: for group membership descriptions."""

    client_id: str
    host: str


Handler = Callable[[RequestHeader, dict, Peer], Awaitable[dict | None]]
