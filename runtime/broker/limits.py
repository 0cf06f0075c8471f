"""What one broker lets its clients use: every resource a client can ask for has a limit.

Each field is a `Broker(limits=...)` setting and a `streams broker --flag` (the
field's name with dashes). Kafka's name is given where Kafka has the setting.

File descriptors are the resource everything else is made of: each connection
holds one, each partition one per segment (and one more while a segment is sent
with sendfile). `raise_open_files_limit()` lifts the soft RLIMIT_NOFILE to the
hard limit, and `fit_to_open_files()` lowers the connection and partition limits
so that, at their limits, the broker still has descriptors to spare: connections
get at most half of them, partitions (at two each) most of the rest, and
`FDS_RESERVED` are kept for listeners, the event loop, HTTP, index writes and
logs. A broker within its limits never sees EMFILE.
"""

from __future__ import annotations

import dataclasses
import resource
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
FDS_RESERVED = 128
FDS_PER_PARTITION = 2  # the active segment, and its sendfile reader
_NR_OPEN = Path("/proc/sys/fs/nr_open")


def _limit(default: int, help: str) -> Any:
    return dataclasses.field(default=default, metadata={"help": help})


@dataclass(frozen=True, slots=True)
class BrokerLimits:
    """The limits; each field's help is its --flag's help (and the README's table)."""

    connections_max: int = _limit(
        4096, "connections open at once, in total (Kafka: max.connections)"
    )
    connections_per_ip_max: int = _limit(
        1024, "connections open at once from one client address (Kafka: max.connections.per.ip)"
    )
    connections_max_idle_ms: int = _limit(
        600_000, "close a connection idle this long (Kafka: connections.max.idle.ms)"
    )
    request_timeout_ms: int = _limit(
        60_000,
        "reading a request's body, and writing its answer, must each finish within "
        "this, or the connection is closed (the request holds budget meanwhile)",
    )
    request_bytes_max: int = _limit(
        100 * MIB, "largest request accepted (Kafka: socket.request.max.bytes)"
    )
    queued_max_request_bytes: int = _limit(
        200 * MIB,
        "bytes of requests being read or answered at once; reading pauses past it "
        "(Kafka: queued.max.request.bytes); at least --request-bytes-max",
    )
    sasl_receive_bytes_max: int = _limit(
        524_288,
        "largest frame accepted on a SASL listener before the client has authenticated "
        "(Kafka: sasl.server.max.receive.size)",
    )
    create_partitions_max: int = _limit(
        1024, "partitions one CreateTopics request may create, over all its topics"
    )
    partitions_max: int = _limit(4096, "partitions on this broker, internal topics included")
    topics_max: int = _limit(1024, "topics on this broker, internal topics included")
    auto_create_per_request_max: int = _limit(
        100, "topics one Metadata request may auto-create (the rest: UNKNOWN_TOPIC_OR_PARTITION)"
    )
    auto_create_topics_max: int = _limit(
        512, "auto-creation stops when the broker holds this many topics"
    )
    log_interval_ms: int = _limit(
        10_000, "log a repeated warning (refusals, bad frames, accept errors) once per interval"
    )

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{field.name} must be an integer >= 1, got {value!r}")
        if self.queued_max_request_bytes < self.request_bytes_max:
            raise ValueError(
                f"queued_max_request_bytes ({self.queued_max_request_bytes}) must be >= "
                f"request_bytes_max ({self.request_bytes_max}): a request of the maximum "
                "size could never be read"
            )

    def fit_to_open_files(self, open_files_max: int) -> tuple[BrokerLimits, list[str]]:
        """These limits lowered to fit `open_files_max` descriptors, and what was lowered."""
        usable = max(open_files_max - FDS_RESERVED, 2 * FDS_PER_PARTITION)
        connections = min(self.connections_max, usable // 2)
        partitions = min(self.partitions_max, (usable - connections) // FDS_PER_PARTITION)
        topics = min(self.topics_max, partitions)
        fitted = dataclasses.replace(
            self,
            connections_max=connections,
            connections_per_ip_max=min(self.connections_per_ip_max, connections),
            partitions_max=partitions,
            create_partitions_max=min(self.create_partitions_max, partitions),
            topics_max=topics,
            auto_create_topics_max=min(self.auto_create_topics_max, topics),
        )
        lowered = [
            f"{field.name}={getattr(self, field.name)}->{getattr(fitted, field.name)}"
            for field in dataclasses.fields(self)
            if getattr(self, field.name) != getattr(fitted, field.name)
        ]
        return fitted, lowered


def raise_open_files_limit() -> int:
    """Lift the soft RLIMIT_NOFILE to the hard limit; returns the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else _nr_open()
    if soft == resource.RLIM_INFINITY:
        return target
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft  # the limits are fitted to what we have
        return target
    return soft


def _nr_open() -> int:
    # an unlimited hard limit still cannot go past the kernel's nr_open
    try:
        return int(_NR_OPEN.read_text())
    except (OSError, ValueError):
        return 1 << 20
