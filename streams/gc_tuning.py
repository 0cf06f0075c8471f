"""The cyclic garbage collector in a worker process.

A worker allocates its long-lived objects (the app, its topics and tables,
codecs, the transport, imported modules) at start-up; after that, almost
everything it allocates dies young (a batch of events, a fetch's bytes). Each
full collection would walk the long-lived objects again, so after start-up they
are moved to the permanent generation (`gc.freeze()`), and the youngest
generation's threshold is raised so that a chunk of decoded records does not
trigger a collection every 700 allocations.

This is process-wide: the `streams worker` command calls it once, after the
worker started; an embedding program decides for itself.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000  # allocations between young collections (CPython's default: 700)


def freeze_after_startup() -> None:
    """Collect once, then keep what survived out of every later collection."""
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    if young < YOUNG_THRESHOLD:
        gc.set_threshold(YOUNG_THRESHOLD, middle, old)
