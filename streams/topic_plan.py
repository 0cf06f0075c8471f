"""The topics an app needs, for clusters where operations create them.

A worker creates the topics it needs when the broker lets it. Where it may not
(a cluster without the CreateTopics API, such as librdkafka's mock cluster, or
a client without the permission), the topics must exist before the worker
starts: the worker checks them and stops with one MissingTopicsError that lists
every one missing with the command that creates it, and `streams -A APP topics
create --dry-run` prints the same plan beforehand. Topics that exist are first
checked for their partition counts (partition_check.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from runtime.errors import TopicCreationRefusedError
from streams.conductor import declare_topic
from streams.errors import ConfigurationError
from streams.partition_check import (
    PartitionMismatch,
    PartitionMismatchError,
    check_partitions,
    effective_partitions,
)

if TYPE_CHECKING:
    from runtime.log.config import TopicInfo
    from runtime.transport import Transport
    from streams.app import App


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic as the app declares it."""

    name: str
    partitions: int
    configs: tuple[tuple[str, str], ...] = ()

    def command(self, broker: str | None = None) -> str:
        """The `streams topics create` command that makes this topic."""
        words = ["streams", "topics"]
        if broker:
            words += ["--broker", broker]
        words += ["create", self.name, "--partitions", str(self.partitions)]
        for key, value in self.configs:
            words += ["--config", f"{key}={value}"]
        return " ".join(words)


class MissingTopicsError(ConfigurationError):
    """Topics the app needs do not exist and this client may not create them."""

    def __init__(self, missing: Iterable[TopicSpec], broker: str, reason: str) -> None:
        self.missing = list(missing)
        lines = [
            f"{len(self.missing)} topic(s) the app needs do not exist on {broker}, "
            f"and this client may not create them ({reason}); create them first:"
        ]
        lines += [f"    {spec.command(broker)}" for spec in self.missing]
        super().__init__("\n".join(lines))


def spec(name: str, partitions: int, configs: Mapping[str, str] | None) -> TopicSpec:
    return TopicSpec(name, partitions, tuple(sorted((configs or {}).items())))


def app_topics(app: App, existing: Mapping[str, TopicInfo] | None = None) -> list[TopicSpec]:
    """Every topic the app's worker would create: its topics, then its tables'
    changelogs (co-partitioned with the agents' topics, as the worker makes them,
    counting those that exist with the partitions they have), then the reply
    topic of `agent.ask()` when the app has agents (made by the first ask or
    reply where the cluster lets it)."""
    existing = existing or {}
    out = [spec(t.name, effective_partitions(t, existing), t.config) for t in app.topics.values()]
    counts = {effective_partitions(a.source, existing) for a in app.agents.values()}
    common = next(iter(counts)) if len(counts) == 1 else None
    for table in app.tables.values():
        changelog = table.changelog
        partitions = changelog.partitions
        if changelog._declared_partitions is None and common is not None:
            partitions = common
        out.append(spec(changelog.name, partitions, changelog.config))
    if app.agents:  # any agent can be asked; the reply topic is otherwise made on first ask
        from streams.ask import REPLY_CONFIG, reply_topic_name

        out.append(spec(reply_topic_name(app.wiring.app_id), 1, REPLY_CONFIG))
    seen: set[str] = set()
    return [s for s in out if not (s.name in seen or seen.add(s.name))]


def plan_lines(
    specs: Iterable[TopicSpec],
    existing: Mapping[str, TopicInfo],
    broker: str | None,
    mismatches: Iterable[PartitionMismatch] = (),
) -> list[str]:
    """One line per topic: exists, a partition count the app cannot run on (and
    the fix), or the command that would create it."""
    wrong = {m.topic: m for m in mismatches}
    lines = []
    for s in specs:
        info = existing.get(s.name)
        mismatch = wrong.get(s.name)
        if mismatch is not None:
            lines.append(f"wrong   {mismatch.line()}")
            lines.append(f"        fix: {mismatch.remedy(broker)}")
        elif info is None:
            lines.append(f"create  {s.command(broker)}")
        else:
            lines.append(f"exists  {s.name} partitions={info.partitions}")
    return lines


async def declare_app_topics(
    app: App, transport: Transport, *, copartitioned: bool = False
) -> dict[str, TopicInfo]:
    """Check the partition counts of the app's topics that exist (one
    PartitionMismatchError lists every mismatch; `copartitioned`: the agents'
    sources must match each other too), then create what is missing of the
    app's topics and of its tables' changelogs (co-partitioned with the agents'
    topics, whose counts may come from topics that exist). Where the cluster
    lets this client create none, every missing one is listed in one
    MissingTopicsError."""
    existing = await transport.topics()
    mismatches = check_partitions(app, existing, copartitioned=copartitioned)
    if mismatches:
        raise PartitionMismatchError(mismatches, transport.url)
    refused: list[TopicSpec] = []
    reason = ""
    infos: dict[str, TopicInfo] = {}
    for topic in app.topics.values():
        try:
            await declare_topic(transport, topic)
        except TopicCreationRefusedError as exc:
            refused.append(spec(topic.name, topic.partitions, topic.config))
            reason = str(exc).split(":")[0]
            continue
        info = await transport.topic(topic.name)
        if info is not None:
            infos[topic.name] = info
    counts = {a.source.partitions for a in app.agents.values()}
    for table in app.tables.values():
        changelog = table.changelog
        if len(counts) == 1 and changelog._declared_partitions is None:
            changelog.partitions = next(iter(counts))  # co-partitioned with its writers
        try:
            await declare_topic(transport, changelog)
        except TopicCreationRefusedError as exc:
            refused.append(spec(changelog.name, changelog.partitions, changelog.config))
            reason = str(exc).split(":")[0]
    if refused:
        raise MissingTopicsError(refused, transport.url, reason)
    return infos
