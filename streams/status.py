"""One status line a person can read, every `interval_s`, while a worker runs:

    status app=surge events/s=812.4 lag=0 partitions=8 rebalances=1

events/s: events the worker's agents took in since the last line, per second
(from the positions of its partitions, so replays after a restart count too);
lag: records in its partitions not taken in yet; rebalances: assignments the
worker has had (kafka://; 0 on log:// and memory://, where nothing moves).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from runtime.types import TopicPartition

logger = logging.getLogger("streams.status")

DEFAULT_INTERVAL_S = 30.0


@dataclass(frozen=True, slots=True)
class Status:
    position: int  # positions summed over the worker's partitions
    lag: int
    partitions: int
    rebalances: int


async def measure(worker: Any) -> Status:
    """The worker's status now (its conductor's positions, the log's ends)."""
    positions: dict[TopicPartition, int] = worker.conductor.commit_offsets()
    lag = 0
    for tp, position in positions.items():
        try:
            _, end = await worker.transport.offsets(tp)
        except Exception:  # a partition gone or a broker away: lag is unknown, not fatal
            continue
        lag += max(0, end - position)
    return Status(sum(positions.values()), lag, len(positions), worker.assignments)


async def report_forever(worker: Any, interval_s: float = DEFAULT_INTERVAL_S) -> None:
    """Log a status line every `interval_s` until cancelled."""
    last = await measure(worker)
    last_at = time.monotonic()
    while True:
        await asyncio.sleep(interval_s)
        now = await measure(worker)
        now_at = time.monotonic()
        rate = max(0, now.position - last.position) / max(now_at - last_at, 1e-9)
        logger.info(
            "status app=%s events/s=%.1f lag=%d partitions=%d rebalances=%d",
            worker.app.id,
            rate,
            now.lag,
            now.partitions,
            now.rebalances,
        )
        last, last_at = now, now_at
