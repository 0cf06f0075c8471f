"""Partition counts of the topics an app needs that exist already.

A topic that exists keeps its partition count; whether the app can run on it
depends on what the topic is to the app:

- declared with `partitions=N` (a topic, or a Table's changelog): it must
  have N;
- an internal topic (a table's changelog declared without partitions, a
  repartition topic): it must have the app's partition count, that of the
  agents' source topics, or keys land in partitions other than their state's;
- co-partitioned source topics (several workers on kafka://, whose assignor
  gives each worker the same partitions of every source and changelog): the
  same count as each other.

A topic declared without partitions that exists adopts its count. Every
mismatch is reported at once, in one PartitionMismatchError, before the worker
creates or reads anything: the worker stops, and `streams topics create
--dry-run` prints the same lines. The dead-letter topic may have any count (it
is only written).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from streams.errors import ConfigurationError

if TYPE_CHECKING:
    from runtime.log.config import TopicInfo
    from streams.app import App
    from streams.table import Table
    from streams.topic import Topic


class Why(enum.Enum):
    DECLARED = "declared"
    INTERNAL = "internal"
    COPARTITIONED = "co-partitioned"


@dataclass(frozen=True, slots=True)
class PartitionMismatch:
    """An existing topic whose partition count is not the one the app needs."""

    topic: str
    expected: int
    actual: int
    why: Why
    detail: str  # what the topic is to the app

    def line(self) -> str:
        return f"{self.topic}: has {self.actual} partitions, needs {self.expected} ({self.detail})"

    def remedy(self, broker: str | None) -> str:
        flag = f" --broker {broker}" if broker else ""
        grow = f"streams topics{flag} alter {self.topic} --partitions {self.expected}"
        if broker is not None and broker.startswith("kafka://"):
            grow += f" (or kafka-topics --alter --topic {self.topic} --partitions {self.expected})"
        if self.why is Why.DECLARED:
            if self.actual > self.expected:
                return f"declare it with partitions={self.actual} (partitions cannot be removed)"
            return f"declare it with partitions={self.actual}, or add partitions: {grow}"
        if self.why is Why.INTERNAL:
            recreate = (
                f"delete it so that the worker creates it with {self.expected} "
                f"(streams topics{flag} delete {self.topic}; what it held is rebuilt only "
                "from events processed again)"
            )
            return f"{recreate}, or give the app's source topics {self.actual} partitions"
        return f"add partitions: {grow}"


class PartitionMismatchError(ConfigurationError):
    """Topics the app needs exist with partition counts it cannot run on."""

    def __init__(self, mismatches: Iterable[PartitionMismatch], broker: str) -> None:
        self.mismatches = list(mismatches)
        lines = [
            f"{len(self.mismatches)} topic(s) on {broker} have partition counts the app "
            "cannot run on:"
        ]
        for m in self.mismatches:
            lines += [f"    {m.line()}", f"        fix: {m.remedy(broker)}"]
        super().__init__("\n".join(lines))


def effective_partitions(topic: Topic, existing: Mapping[str, TopicInfo]) -> int:
    """The count the app will use: the declared one, else the existing topic's,
    else the default."""
    info = existing.get(topic.name)
    if topic._declared_partitions is None and info is not None:
        return info.partitions
    return topic.partitions


def app_partitions(app: App, existing: Mapping[str, TopicInfo]) -> int | None:
    """The app's partition count: that of its agents' source topics (the most,
    where they differ), None for an app without agents."""
    counts = [effective_partitions(a.source, existing) for a in app.agents.values()]
    return max(counts) if counts else None


def check_partitions(
    app: App, existing: Mapping[str, TopicInfo], *, copartitioned: bool
) -> list[PartitionMismatch]:
    """Every mismatch of the app's topics and its tables' changelogs that exist
    (see the module doc); `copartitioned`: its agents' sources must match too."""
    out: list[PartitionMismatch] = []
    dead_letters = app.wiring.dead_letters
    for topic in app.topics.values():
        info = existing.get(topic.name)
        declared = topic._declared_partitions
        if info is None or topic is dead_letters or declared is None:
            continue
        if info.partitions != declared:
            out.append(
                PartitionMismatch(
                    topic.name, declared, info.partitions, Why.DECLARED, "declared partitions"
                )
            )
    if copartitioned:
        out += _copartition_mismatches(app, existing, {m.topic for m in out})
    count = app_partitions(app, existing)
    for table in app.tables.values():
        mismatch = _changelog_mismatch(table, existing, count)
        if mismatch is not None:
            out.append(mismatch)
    return out


def _copartition_mismatches(
    app: App, existing: Mapping[str, TopicInfo], reported: set[str]
) -> list[PartitionMismatch]:
    """Source topics that exist with fewer partitions than the largest of them
    (those not there yet are created later, by their declarations)."""
    sources = {a.source.name: a.source for a in app.agents.values() if a.source.name in existing}
    counts = {name: effective_partitions(t, existing) for name, t in sources.items()}
    if not counts:
        return []
    most = max(counts.values())
    detail = "a source topic, co-partitioned with the app's others"
    return [
        PartitionMismatch(name, most, n, Why.COPARTITIONED, detail)
        for name, n in sorted(counts.items())
        if n != most and name not in reported
    ]


def _changelog_mismatch(
    table: Table, existing: Mapping[str, TopicInfo], count: int | None
) -> PartitionMismatch | None:
    changelog = table.changelog
    info = existing.get(changelog.name)
    if info is None:
        return None
    declared = changelog._declared_partitions
    name = table.name
    if declared is not None:
        if info.partitions == declared:
            return None
        detail = f"the changelog of table {name}, declared with partitions={declared}"
        return PartitionMismatch(changelog.name, declared, info.partitions, Why.DECLARED, detail)
    if count is None or table.route_by_key or info.partitions == count:
        return None  # a GlobalTable is read whole, by every worker
    detail = f"the changelog of table {name}, co-partitioned with the agents' source topics"
    return PartitionMismatch(changelog.name, count, info.partitions, Why.INTERNAL, detail)


def check_internal_topic(topic: Topic, actual: int) -> PartitionMismatch | None:
    """A repartition (or other internal) topic that exists with another count
    than the one its stream gives it."""
    if actual == topic.partitions:
        return None
    detail = "an internal topic: the partition count of the stream it re-keys"
    return PartitionMismatch(topic.name, topic.partitions, actual, Why.INTERNAL, detail)
