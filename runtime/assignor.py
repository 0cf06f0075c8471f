"""The partition scheduler: which worker owns which partition number.

An app's source topics and its tables' changelogs are co-partitioned: they
all have the same partition count N, and partition p of every one of them
goes to the same worker, so a table partition lives where the events that
write it are processed. The assignor therefore hands out partition numbers
0..N-1 (like Kafka Streams' tasks), each to one active worker, plus up to
`standby_replicas` standby workers that keep that table partition warm.

Invariants of `assign()`'s result:
- every partition number has exactly one active worker;
- a partition's standbys are distinct workers other than its active one,
  min(standby_replicas, workers - 1) of them;
- active counts differ by at most one between workers;
- sticky: a worker keeps the active partitions it had as long as that keeps
  the balance; a partition that must move goes first to a worker that was its
  standby (its table is warm), then to the least loaded;
- deterministic: the same input gives the same output.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import orjson

from runtime.client.consumer_protocol import Assignment, Subscription
from runtime.types import TopicPartition


@dataclass(frozen=True, slots=True)
class WorkerState:
    """What a worker reports when it joins: what it held before."""

    active: frozenset[int] = frozenset()
    standby: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class WorkerAssignment:
    active: frozenset[int] = field(default_factory=frozenset)
    standby: frozenset[int] = field(default_factory=frozenset)


class CoPartitioningError(ValueError):
    """Topics that must be co-partitioned have different partition counts."""


def common_partition_count(counts: Mapping[str, int]) -> int:
    """The partition count every co-partitioned topic shares, or a clear error."""
    if not counts:
        raise CoPartitioningError("no topics to assign")
    distinct = sorted(set(counts.values()))
    if len(distinct) > 1:
        listing = ", ".join(f"{name}={n}" for name, n in sorted(counts.items()))
        raise CoPartitioningError(
            "source topics and table changelogs must have the same partition count "
            f"(co-partitioning), got {listing}"
        )
    return distinct[0]


def assign(
    workers: Mapping[str, WorkerState], partitions: int, standby_replicas: int = 0
) -> dict[str, WorkerAssignment]:
    if not workers:
        return {}
    if partitions < 0 or standby_replicas < 0:
        raise ValueError("partitions and standby_replicas must be >= 0")
    names = sorted(workers)
    active = _assign_active(names, workers, partitions)
    owner = {p: w for w, ps in active.items() for p in ps}
    standby = _assign_standby(names, workers, owner, partitions, standby_replicas)
    return {w: WorkerAssignment(frozenset(active[w]), frozenset(standby[w])) for w in names}


def _quotas(names: list[str], partitions: int) -> dict[str, int]:
    base, extra = divmod(partitions, len(names))
    return {w: base + (1 if i < extra else 0) for i, w in enumerate(names)}


def _assign_active(
    names: list[str], workers: Mapping[str, WorkerState], partitions: int
) -> dict[str, set[int]]:
    # Workers that held many partitions before get the larger quotas, so
    # fewer partitions move when the count does not divide evenly.
    by_previous = sorted(names, key=lambda w: (-len(workers[w].active), w))
    quotas = _quotas(by_previous, partitions)
    active: dict[str, set[int]] = {w: set() for w in names}
    taken: set[int] = set()
    for w in by_previous:  # keep what each held, up to its quota
        for p in sorted(workers[w].active):
            if 0 <= p < partitions and p not in taken and len(active[w]) < quotas[w]:
                active[w].add(p)
                taken.add(p)
    for p in range(partitions):  # place the rest, warm standbys first
        if p in taken:
            continue
        room = [w for w in names if len(active[w]) < quotas[w]]
        warm = [w for w in room if p in workers[w].standby]
        chosen = min(warm or room, key=lambda w: (len(active[w]) - quotas[w], w))
        active[chosen].add(p)
        taken.add(p)
    return active


def _assign_standby(
    names: list[str],
    workers: Mapping[str, WorkerState],
    owner: Mapping[int, str],
    partitions: int,
    replicas: int,
) -> dict[str, set[int]]:
    standby: dict[str, set[int]] = {w: set() for w in names}
    copies = min(replicas, len(names) - 1)
    if copies <= 0:
        return standby
    for p in range(partitions):
        candidates = [w for w in names if w != owner[p]]
        # keep previous holders (their copy is warm), then the least loaded
        ranked = sorted(
            candidates,
            key=lambda w: (
                p not in workers[w].standby and p not in workers[w].active,
                len(standby[w]),
                w,
            ),
        )
        for w in ranked[:copies]:
            standby[w].add(p)
    return standby


def partitions_of(assignment: Mapping[str, WorkerAssignment]) -> Iterable[int]:
    for a in assignment.values():
        yield from a.active


# --- the consumer-group face of the scheduler ------------------------------------

_ASSIGNMENT_FORMAT = 1


def encode_numbers(
    active: Iterable[int],
    standby: Iterable[int],
    *,
    web: str | None = None,
    hosts: Mapping[int, str] | None = None,
) -> bytes:
    """A member's user data: in a subscription, what it holds and its web URL;
    in an assignment, what it is given and every partition's owner's web URL
    (Kafka Streams' partitionsByHost: any worker can route a table lookup)."""
    data: dict[str, object] = {
        "format": _ASSIGNMENT_FORMAT,
        "active": sorted(active),
        "standby": sorted(standby),
    }
    if web is not None:
        data["web"] = web
    if hosts:
        data["hosts"] = {str(p): url for p, url in sorted(hosts.items())}
    return orjson.dumps(data)


def decode_numbers(data: bytes | None) -> WorkerState:
    """A member's user data: the partition numbers it holds (empty if unreadable)."""
    if not data:
        return WorkerState()
    try:
        raw = orjson.loads(data)
        return WorkerState(
            frozenset(int(p) for p in raw.get("active", ())),
            frozenset(int(p) for p in raw.get("standby", ())),
        )
    except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError):
        return WorkerState()


def decode_web(data: bytes | None) -> str | None:
    """The web URL a member put in its subscription's user data, if any."""
    raw = _load_object(data)
    web = raw.get("web")
    return web if isinstance(web, str) else None


def decode_hosts(data: bytes | None) -> dict[int, str]:
    """An assignment's partition -> owner's web URL (empty if none or unreadable)."""
    hosts = _load_object(data).get("hosts")
    if not isinstance(hosts, dict):
        return {}
    out = {}
    for p, url in hosts.items():
        if isinstance(url, str) and str(p).isdigit():
            out[int(p)] = url
    return out


def _load_object(data: bytes | None) -> dict:
    if not data:
        return {}
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    return raw if isinstance(raw, dict) else {}


class StreamsAssignor:
    """The scheduler as a consumer-group assignor (named "streams").

    Members put the partition numbers they hold in their subscription's user
    data; the leader runs assign() and hands each member its active partitions
    of every topic it subscribed to, with the numbers (active and standby) in
    the assignment's user data."""

    name = "streams"

    def __init__(self, partitions: int, standby_replicas: int = 0) -> None:
        self.partitions = partitions
        self.standby_replicas = standby_replicas
        self.state = WorkerState()
        self.web_url: str | None = None  # where this member serves table lookups

    def metadata(self, topics: Sequence[str]) -> bytes | None:
        return encode_numbers(self.state.active, self.state.standby, web=self.web_url)

    def assign(
        self,
        cluster_metadata: Mapping[str, Sequence[int]],
        members: Mapping[str, Subscription],
    ) -> dict[str, Assignment]:
        states = {m: decode_numbers(sub.user_data) for m, sub in members.items()}
        result = assign(states, self.partitions, self.standby_replicas)
        webs = {m: decode_web(sub.user_data) for m, sub in members.items()}
        hosts = {p: webs[m] for m, a in result.items() if webs.get(m) for p in a.active}
        out = {}
        for member, numbers in result.items():
            tps = tuple(
                TopicPartition(topic, p)
                for topic in members[member].topics
                for p in sorted(numbers.active)
                if p in cluster_metadata.get(topic, ())
            )
            user_data = encode_numbers(numbers.active, numbers.standby, hosts=hosts)
            out[member] = Assignment(tps, user_data)
        return out
