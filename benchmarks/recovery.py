"""Table recovery speed: a changelog replayed into RocksDB, beside the store's
own bulk write rate.

    python -m benchmarks.recovery [--records N] [--keys K] [--json FILE|-]

1. N changelog records (K distinct keys, small JSON values, batches of 1000
   records as table flushes write them) are written straight into a log://
   changelog partition (not timed).
2. raw: the same N key/value pairs written into an empty RocksDB database
   with rocksdict WriteBatches of RAW_CHUNK_RECORDS, as fast as Python can
   hand them over: the store's bulk write rate for every record.
3. recovery: `recover_store` replays the changelog into an empty RocksDBStore
   (fetch, decode, one WriteBatch of the last value of each key read since the
   previous one, the offset persisted with it: with K < N keys recovery writes
   fewer than N). The result is checked: the store holds every key with its
   last value.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rocksdict import Rdict, WriteBatch

from benchmarks.embedded import machine
from benchmarks.runs import write_json
from runtime.log import FlushPolicy, Log
from runtime.log.records import encode_batch
from runtime.recovery import recover_store
from runtime.transport import EmbeddedTransport
from runtime.types import TopicPartition
from stores.rocksdb import RocksDBStore, _options

TARGET_RECORDS_PER_S = 1_000_000
BATCH_RECORDS = 1000
RAW_CHUNK_RECORDS = 10_000
CHANGELOG = TopicPartition("bench-counts-changelog", 0)


def changelog_pairs(records: int, keys: int) -> list[tuple[bytes, bytes]]:
    names = [b"user-%06d" % i for i in range(keys)]
    return [(names[i % keys], b"%d" % (i // keys + 1)) for i in range(records)]


def write_changelog(log_dir: Path, pairs: list[tuple[bytes, bytes]]) -> None:
    now_ms = int(time.time() * 1000)
    with Log.open(log_dir, flush=FlushPolicy("os")) as log:
        log.create_topic(CHANGELOG.topic, 1, {"cleanup.policy": "compact"})
        for start in range(0, len(pairs), BATCH_RECORDS):
            chunk = pairs[start : start + BATCH_RECORDS]
            log.append(CHANGELOG, encode_batch([(k, v, now_ms, ()) for k, v in chunk]))


def raw_write(path: Path, pairs: list[tuple[bytes, bytes]]) -> tuple[float, float]:
    """(Wall, CPU) seconds to put every pair into an empty database, a WriteBatch
    per chunk."""
    db = Rdict(str(path), _options())
    try:
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(0, len(pairs), RAW_CHUNK_RECORDS):
            batch = WriteBatch(raw_mode=True)
            put = batch.put
            for key, value in pairs[i : i + RAW_CHUNK_RECORDS]:
                put(key, value)
            db.write(batch)
        return time.perf_counter() - start, time.process_time() - cpu
    finally:
        db.close()


async def replay(log_dir: Path, store_path: Path) -> tuple[float, float, int, RocksDBStore]:
    transport = EmbeddedTransport(f"log://{log_dir}", log_dir)
    await transport.start()
    store = RocksDBStore(store_path)
    try:
        start, cpu = time.perf_counter(), time.process_time()
        result = await recover_store(transport, store, CHANGELOG, progress=lambda *a: None)
        return time.perf_counter() - start, time.process_time() - cpu, result.records, store
    finally:
        await transport.stop()


def run(records: int, keys: int) -> dict[str, Any]:
    pairs = changelog_pairs(records, keys)
    expected = dict(pairs)
    with tempfile.TemporaryDirectory(prefix="recovery-bench-") as tmp:
        data = Path(tmp)
        write_changelog(data / "log", pairs)
        raw_s, raw_cpu_s = raw_write(data / "raw.rocksdb", pairs)
        seconds, cpu_s, replayed, store = asyncio.run(replay(data / "log", data / "store.rocksdb"))
        try:
            stored = dict(store.items())
            if stored != expected or store.persisted_offset() != records - 1:
                raise RuntimeError("the recovered store does not hold the changelog's last values")
        finally:
            store.close()
    if replayed != records:
        raise RuntimeError(f"replayed {replayed} records, expected {records}")
    return {
        "records": records,
        "keys": keys,
        "raw_write_records_per_s": records / raw_s,
        "recovery_records_per_s": records / seconds,
        "recovery_s": seconds,
        "recovery_vs_raw": raw_s / seconds,
        "raw_write_records_per_cpu_s": records / raw_cpu_s,
        "recovery_records_per_cpu_s": records / cpu_s,
    }


def report(info: dict[str, str], result: dict[str, Any]) -> str:
    ok = result["recovery_records_per_s"] >= TARGET_RECORDS_PER_S
    return "\n".join(
        [
            "streams table recovery benchmark",
            f"  cpu      {info['cpu']} ({info['cores']} cores)",
            f"  python   {info['python']} on {info['platform']}",
            "",
            f"changelog of {result['records']:,} records, {result['keys']:,} keys, "
            f"replayed into an empty RocksDB store",
            f"  raw WriteBatch   {result['raw_write_records_per_s']:>14,.0f} records/s   "
            "(rocksdict, the same pairs, no decoding)",
            f"  recovery         {result['recovery_records_per_s']:>14,.0f} records/s   "
            f"({result['recovery_s']:.2f} s; {result['recovery_vs_raw']:.2f}x of raw; target >= "
            f"{TARGET_RECORDS_PER_S:,}: {'ok' if ok else 'BELOW TARGET'})",
            f"  per CPU second   raw {result['raw_write_records_per_cpu_s']:,.0f}, recovery "
            f"{result['recovery_records_per_cpu_s']:,.0f} records/s (steadier on a busy machine)",
            "  (a store write holds the last value of each key read since the previous one: "
            "fewer writes than records",
            "   when keys repeat; --keys equal to --records writes every record)",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.recovery")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--json", metavar="FILE", help="write results as JSON ('-': stdout)")
    args = parser.parse_args(argv)
    info = machine()
    result = run(args.records, args.keys)
    print(report(info, result), flush=True)
    write_json({"machine": info, "recovery": result}, args.json)


if __name__ == "__main__":
    main(sys.argv[1:])
