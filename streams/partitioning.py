"""How many partitions an app's tables and topics have, and that they match.

Tables are partitioned like the streams that write them (co-partitioning), so
a key's table entry lives in the partition its events arrive on.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from runtime.assignor import common_partition_count

if TYPE_CHECKING:
    from streams.app import App

logger = logging.getLogger(__name__)


def copartition_tables(app: App) -> None:
    """Tables declared without partitions take their agents' topics' count,
    so that a table is co-partitioned with the streams that write it."""
    counts = {a.source.partitions for a in app.agents.values()}
    if len(counts) != 1:
        return
    (count,) = counts
    for table in app.tables.values():
        if table.changelog._declared_partitions is None:
            table.changelog.partitions = count


def warn_partition_mismatch(app: App) -> None:
    """A table with another partition count than an agent's topic gets reads
    outside events wrong (the same key hashes elsewhere): say so."""
    counts = {a.source.name: a.source.partitions for a in app.agents.values()}
    for table in app.tables.values():
        if table.route_by_key:
            continue  # read whole, by key: any partition count does
        for topic, n in counts.items():
            if n != table.partition_count:
                logger.warning(
                    "table %s has %d partitions but topic %s has %d: tables must be "
                    "co-partitioned with the topics whose events write them",
                    table.name,
                    table.partition_count,
                    topic,
                    n,
                )


def common_partitions(app: App) -> int:
    """The partition count the group's assignor deals in (group mode)."""
    # A GlobalTable is held whole by every worker: the assignor does not deal in it.
    counts = {a.source.name: a.source.partitions for a in app.agents.values()}
    counts.update(
        {t.changelog.name: t.partition_count for t in app.tables.values() if not t.route_by_key}
    )
    return common_partition_count(counts)
