"""The recovery progress bar: drawn in place on a terminal, log lines elsewhere."""

from __future__ import annotations

import io

from runtime.recovery import log_progress
from runtime.types import TopicPartition
from streams.progress import RecoveryBar, recovery_progress, render

TP = TopicPartition("counts-changelog", 3)


def test_the_bar_shows_the_fraction_counts_and_rate():
    assert render(TP, 130_000, 260_000, 52_000.4) == (
        "recovering counts-changelog[3] [##########..........]  50% 130000/260000 records 52000/s"
    )
    assert "[####################] 100%" in render(TP, 5, 5, 1.0)
    assert "100%" in render(TP, 0, 0, 0.0)  # nothing to replay is done


def test_redrawn_in_place_and_kept_once_done():
    out = io.StringIO()
    bar = RecoveryBar(out)
    bar(TP, 1, 4, 1.0)
    bar(TP, 4, 4, 4.0)
    first, second = out.getvalue().split("\r\x1b[2K")[1:]
    assert first.endswith("1/4 records 1/s")  # no newline: the next draw replaces it
    assert second.endswith("4/4 records 4/s\n")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_bar_on_a_terminal_log_lines_elsewhere():
    assert isinstance(recovery_progress(Terminal()), RecoveryBar)
    assert recovery_progress(io.StringIO()) is log_progress
