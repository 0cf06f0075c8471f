"""Where the fetcher fetches a partition ahead from: the offset after the last
whole batch of an answer, which may end with part of a batch."""

from __future__ import annotations

from runtime.kafka_fetcher import _following
from runtime.log.records import encode_batch, iter_batches


def _batches() -> bytes:
    out = b""
    for base, count in [(10, 1), (11, 3), (20, 2)]:  # a gap, as after compaction
        out += bytes(encode_batch([(b"k", b"v" * base, 1, ())] * count, base_offset=base))
    return out


def test_the_offset_after_the_last_whole_batch_of_every_cut_answer():
    data = _batches()
    for cut in range(len(data) + 1):
        part = data[:cut]
        expected = max([5, *(h.next_offset for _, h in iter_batches(part))])
        assert _following(part, 5) == expected
        assert _following(memoryview(part), 25) == max(25, expected)


def test_an_empty_answer_stays_at_the_asked_offset():
    assert _following(b"", 42) == 42
