"""Helpers shared by the log tests: batches with recognisable payloads, a manual clock."""

from __future__ import annotations

from runtime.log.records import encode_batch


def make_batch(
    values: list[bytes | None],
    *,
    keys: list[bytes | None] | None = None,
    timestamp_ms: int = 1_000,
) -> bytearray:
    keys = keys if keys is not None else [None] * len(values)
    return encode_batch(
        [(k, v, timestamp_ms + i, ()) for i, (k, v) in enumerate(zip(keys, values, strict=True))]
    )


def seq_batch(
    seq: int, records: int = 3, *, timestamp_ms: int = 1_000, key: bytes | None = None
) -> bytearray:
    """A batch whose values name its sequence number and record index (all with
    `key`: compacted topics take only keyed records)."""
    return make_batch(
        [b"%d:%d" % (seq, i) for i in range(records)],
        keys=[key] * records,
        timestamp_ms=timestamp_ms,
    )


class ManualClock:
    """A wall clock (seconds) that moves only when told."""

    def __init__(self, now_s: float = 1_000.0) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s

    def advance_ms(self, ms: float) -> None:
        self.now_s += ms / 1000
