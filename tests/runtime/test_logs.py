"""RateLimitedLog: one line per key per interval, and a count of the rest."""

from __future__ import annotations

import logging

import pytest

from runtime.logs import RateLimitedLog

INTERVAL_S = 10.0


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _messages(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "t"]


def test_first_line_at_once_then_one_per_interval_with_the_count(clock, caplog):
    limited = RateLimitedLog(logging.getLogger("t"), interval_s=INTERVAL_S, clock=clock)
    with caplog.at_level(logging.WARNING, logger="t"):
        assert limited.warning("k", "disk full topic=%s", "a")
        for _ in range(5):
            assert not limited.warning("k", "disk full topic=%s", "b")
        assert limited.warning("other", "another kind")
        clock.now_s = INTERVAL_S
        assert limited.warning("k", "disk full topic=%s", "c")
        assert not limited.warning("k", "disk full topic=%s", "d")
        assert limited.flush() == 1
        assert limited.flush() == 0
    assert _messages(caplog) == [
        "disk full topic=a",
        "another kind",
        "disk full topic=c repeated=5",
        "disk full topic=d repeated=1",
    ]


def test_levels_are_kept(clock, caplog):
    limited = RateLimitedLog(logging.getLogger("t"), clock=clock)
    with caplog.at_level(logging.DEBUG, logger="t"):
        limited.error("e", "an error")
        limited.log(logging.INFO, "i", "some info")
    assert [r.levelno for r in caplog.records] == [logging.ERROR, logging.INFO]


def test_a_forgotten_key_writes_its_count_first(clock, caplog):
    limited = RateLimitedLog(logging.getLogger("t"), keys_max=2, clock=clock)
    with caplog.at_level(logging.WARNING, logger="t"):
        limited.warning(1, "one")
        limited.warning(1, "one again")
        limited.warning(2, "two")
        limited.warning(3, "three")  # key 1 is forgotten: its held-back line goes out
    assert _messages(caplog) == ["one", "two", "one again repeated=1", "three"]


@pytest.mark.parametrize("options", [{"interval_s": -1}, {"keys_max": 0}])
def test_bad_limits_are_refused(options):
    with pytest.raises(ValueError):
        RateLimitedLog(logging.getLogger("t"), **options)
