"""Table recovery's store writes: each holds the last value of every key read
since the previous one (a changelog that updates few keys costs few writes),
and each leaves the store holding exactly the changelog up to the offset it
persists, so a crash between two writes, or a write that fails, never leaves
a store that claims more than it holds."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

from runtime import recovery
from runtime.log.records import encode_batch
from runtime.recovery import recover_store
from runtime.transport import EmbeddedTransport
from runtime.types import TopicPartition
from stores import MemoryStore
from stores.errors import StoreWriteError

CHANGELOG = TopicPartition("table-changelog", 0)
KEYS = 10


def _changelog() -> list[tuple[bytes, bytes | None]]:
    """60 batches of 50 records over KEYS keys; key 3 ends deleted."""
    pairs: list[tuple[bytes, bytes | None]] = [
        (b"key-%d" % (i % KEYS), b"%d" % i) for i in range(3000)
    ]
    pairs[2993] = (b"key-3", None)
    return pairs


def _state_at(pairs: list[tuple[bytes, bytes | None]], offset: int) -> dict[bytes, bytes]:
    state: dict[bytes, bytes | None] = {}
    for key, value in pairs[: offset + 1]:
        state[key] = value
    return {k: v for k, v in state.items() if v is not None}


class RecordingStore(MemoryStore):
    """A MemoryStore that keeps what each write held and left, and can refuse one."""

    __slots__ = ("fail_at", "writes")

    def __init__(self, fail_at: int | None = None) -> None:
        super().__init__()
        self.writes: list[tuple[int, int, dict[bytes, bytes]]] = []
        self.fail_at = fail_at

    def apply(self, writes: Mapping[bytes, bytes | None], offset: int) -> None:
        if self.fail_at == len(self.writes):
            self.fail_at = None
            raise StoreWriteError("disk full")
        super().apply(writes, offset)
        self.writes.append((len(writes), offset, dict(self.items())))


async def _recover(
    tmp_path, store: RecordingStore, *, write: bool = True
) -> list[tuple[bytes, bytes | None]]:
    pairs = _changelog()
    async with EmbeddedTransport("log://", tmp_path) as transport:
        if write:
            await transport.create_topic(CHANGELOG.topic, 1, {"cleanup.policy": "compact"})
            for start in range(0, len(pairs), 50):
                batch = [(k, v, 1_000, ()) for k, v in pairs[start : start + 50]]
                await transport.append(CHANGELOG, encode_batch(batch))
        # small fetches: a write per fetch would show
        await recover_store(transport, store, CHANGELOG, progress=lambda *a: None, fetch_bytes=3000)
    return pairs


def test_a_changelog_of_few_keys_is_one_write_of_each_keys_last_value(tmp_path):
    store = RecordingStore()
    pairs = asyncio.run(_recover(tmp_path, store))
    assert [(size, offset) for size, offset, _ in store.writes] == [(KEYS, len(pairs) - 1)]
    assert dict(store.items()) == _state_at(pairs, len(pairs) - 1)
    assert store.get(b"key-3") is None


def test_each_write_leaves_the_changelog_up_to_its_offset(tmp_path, monkeypatch):
    monkeypatch.setattr(recovery, "APPLY_BYTES_MAX", 2_000)  # a write every few batches
    store = RecordingStore()
    pairs = asyncio.run(_recover(tmp_path, store))
    assert len(store.writes) > 10
    for _, offset, held in store.writes:
        assert held == _state_at(pairs, offset)
    assert store.persisted_offset() == len(pairs) - 1


def test_a_failed_write_leaves_the_last_one_and_recovery_resumes_from_it(tmp_path, monkeypatch):
    monkeypatch.setattr(recovery, "APPLY_BYTES_MAX", 5_000)
    store = RecordingStore(fail_at=2)
    with pytest.raises(StoreWriteError):
        asyncio.run(_recover(tmp_path, store))
    _, offset, held = store.writes[-1]
    assert len(store.writes) == 2 and store.persisted_offset() == offset
    assert held == dict(store.items())
    pairs = asyncio.run(_recover(tmp_path, store, write=False))  # replays from offset + 1
    assert store.writes[2][1] > offset and dict(store.items()) == _state_at(pairs, len(pairs) - 1)
