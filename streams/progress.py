"""A terminal progress bar for table recovery: one line, redrawn in place.

A worker whose stderr is a terminal shows each long recovery (one that takes
over a second; runtime/recovery.py reports every second and at the end) as

    recovering counts-changelog[3] [##########..........]  50% 130000/260000 records 52000/s

and logs it as usual otherwise, so that log files get lines, not bars.
"""

from __future__ import annotations

import sys
from typing import TextIO

from runtime.recovery import Progress, log_progress
from runtime.types import TopicPartition

BAR_WIDTH = 20


def render(tp: TopicPartition, done: int, total: int, rate: float) -> str:
    fraction = min(1.0, done / total) if total else 1.0
    filled = round(fraction * BAR_WIDTH)
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    return (
        f"recovering {tp.topic}[{tp.partition}] [{bar}] {fraction:4.0%} "
        f"{done}/{total} records {rate:.0f}/s"
    )


class RecoveryBar:
    """A Progress callback drawing on `out`; a finished partition keeps its line."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def __call__(self, tp: TopicPartition, done: int, total: int, rate: float) -> None:
        end = "\n" if done >= total else ""
        self._out.write("\r\x1b[2K" + render(tp, done, total, rate) + end)
        self._out.flush()


def recovery_progress(out: TextIO | None = None) -> Progress:
    """A bar on a terminal, log lines elsewhere."""
    stream = out or sys.stderr
    return RecoveryBar(stream) if stream.isatty() else log_progress
