"""After start-up, a worker process keeps what survived out of later cyclic
collections and collects the young generation less often."""

from __future__ import annotations

import gc

from streams.gc_tuning import YOUNG_THRESHOLD, freeze_after_startup


def test_survivors_are_frozen_and_the_young_threshold_raised():
    before = gc.get_threshold()
    try:
        freeze_after_startup()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *before[1:])
        gc.set_threshold(YOUNG_THRESHOLD * 2, *before[1:])
        freeze_after_startup()  # a higher threshold someone chose stays
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD * 2
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
