"""The input every system reads, and the truth its results are checked against.

Events are JSON objects of ~90 bytes keyed by their `user` (10,000 keys):
`{"user": "user-00042", "amount": 517, "ts": 1764547200.0125, "sent_ns": 0}`.
`ts` is the event time in seconds (millisecond steps, two events per
millisecond, so 200,000 events span 100 s: ten 10-second windows); `sent_ns`
is the producer's wall clock in the latency runs and 0 otherwise. The stream
is deterministic (a seeded random), so the truth is computed from the same
generator rather than read back.

Workloads:
  stateless  parse, keep events with an even `amount`, forward them to the output
  count      events per key in a changelogged table
  window     events per key per 10-second tumbling window of event time
  join       each event paired with its user's row of a table of 10,000 users
             (`{"tier": n}`), forwarded to the output
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import orjson

WORKLOADS = ("stateless", "count", "window", "join")
PARTITIONS = 8
KEYS = 10_000
WINDOW_S = 10
BASE_TS_MS = 1_764_547_200_000  # a multiple of WINDOW_S: windows start on whole tens
SEED = 14


def user(i: int) -> str:
    return f"user-{i:05d}"


@dataclass(frozen=True, slots=True)
class Event:
    key: str
    amount: int
    ts_ms: int

    def encode(self, sent_ns: int = 0) -> bytes:
        return orjson.dumps(
            {"user": self.key, "amount": self.amount, "ts": self.ts_ms / 1000, "sent_ns": sent_ns}
        )


def events(count: int, keys: int = KEYS, seed: int = SEED) -> Iterator[Event]:
    rng = random.Random(seed)
    names = [user(i) for i in range(keys)]
    for i in range(count):
        yield Event(names[rng.randrange(keys)], rng.randrange(1000), BASE_TS_MS + i // 2)


def users(keys: int = KEYS) -> Iterator[tuple[str, bytes]]:
    """The join's table rows: key, JSON value."""
    for i in range(keys):
        yield user(i), orjson.dumps({"tier": i % 5})


@dataclass(frozen=True, slots=True)
class Truth:
    events: int
    forwarded: int  # events with an even amount
    counts: dict[str, int]
    windows: dict[str, int]  # "key|start_s" -> events


def truth(count: int, keys: int = KEYS) -> Truth:
    counts: Counter[str] = Counter()
    windows: Counter[str] = Counter()
    forwarded = 0
    for e in events(count, keys):
        counts[e.key] += 1
        windows[f"{e.key}|{e.ts_ms // (WINDOW_S * 1000) * WINDOW_S}"] += 1
        forwarded += e.amount % 2 == 0
    return Truth(count, forwarded, dict(counts), dict(windows))
