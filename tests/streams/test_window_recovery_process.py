"""A real worker process of tests/streams/apps/windows_app.py (tumbling with grace,
hopping, session and sliding windows, exactly_once) SIGKILLed mid-run and restarted
on its data directory, on `log://` and on `kafka://` (a `streams broker` process):
the committed final results are those of an uninterrupted run, each once."""

from __future__ import annotations

import asyncio
import importlib.util
import signal
import time
from pathlib import Path

import orjson
import pytest
from broker_process import start_broker
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_reading import read_records_to_end
from waiting import wait_until

import streams
from runtime.embedded_txn import read_committed
from runtime.log.manager import Log
from runtime.log.records import decode_batches, encode_batch
from runtime.partitioner import partition_for_key
from runtime.types import TopicPartition
from streams.driver import TestDriver

__all__ = ["start_broker"]  # a fixture: importing it offers it to these tests

pytestmark = pytest.mark.slow

APPS = Path(__file__).parent / "apps"
_spec = importlib.util.spec_from_file_location("windows_app", APPS / "windows_app.py")
assert _spec is not None and _spec.loader is not None
windows_app = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(windows_app)

COUNT = 100
SLEEP_S = "0.01"  # ~1 s of processing: the kill lands after commits, before the end
TIMEOUT_S = 60.0
Result = tuple[str, float, float, int]


def covered(trace: Path) -> int:
    """How many distinct events (partition, offset) the workers processed."""
    if not trace.exists():
        return 0
    return len({tuple(line.split()[1:3]) for line in trace.read_text().splitlines()})


async def uninterrupted(tmp_path: Path, sent: list[tuple[float, str, int]]) -> list[Result]:
    app = streams.App("wins", broker="memory://", data_dir=str(tmp_path))
    app.set_processing_guarantee("exactly_once")
    clicks, finals = windows_app.define(app)
    async with TestDriver(app) as driver:
        for ts, key, n in sent:
            await driver.send(clicks, n, key=key, timestamp=ts)
        await driver.commit()
        return sorted(_result(r.key, r.value) for r in driver.read(finals))


def _result(key: str | bytes, value: dict) -> Result:
    key = key.decode() if isinstance(key, bytes) else key
    return (key, value["start"], value["end"], value["value"])


def _records(sent: list[tuple[float, str, int]]) -> dict[int, list]:
    by_partition: dict[int, list] = {}
    for ts, key, n in sent:
        kb = key.encode()
        by_partition.setdefault(partition_for_key(kb, 2), []).append(
            (kb, str(n).encode(), int(ts * 1000), ())
        )
    return by_partition


def append_to_log(path: Path, sent: list[tuple[float, str, int]]) -> None:
    with Log.open(path) as log:
        log.create_topic("clicks", 2)
        for p, records in _records(sent).items():
            log.append(TopicPartition("clicks", p), encode_batch(records))


def finals_in_log(path: Path) -> list[Result]:
    out = []
    with Log.open(path) as log:
        tp, position = TopicPartition(windows_app.FINALS, 0), 0
        while data := read_committed(log, tp, position, 1 << 20, {}):
            for r in decode_batches(data):
                if r.offset >= position and r.value is not None:
                    out.append(_result(r.key, orjson.loads(r.value)))
                position = r.offset + 1
    return sorted(out)


def produce_to_kafka(bootstrap: str, sent: list[tuple[float, str, int]]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic("clicks", 2, 1)]).values():
        future.result(timeout=30)
    producer = Producer({"bootstrap.servers": bootstrap, "log_level": 3})
    for p, records in _records(sent).items():
        for key, value, ts_ms, _ in records:
            producer.produce("clicks", value, key, partition=p, timestamp=ts_ms)
    assert producer.flush(30) == 0


@pytest.mark.parametrize("transport", ["log", "kafka"])
def test_sigkill_mid_window_gives_the_final_results_of_an_uninterrupted_run(
    tmp_path, transport, worker_process, start_broker
):
    # Recent timestamps (a broker's retention judges by them), on 60 s boundaries.
    sent = windows_app.events(3, COUNT, base=float(int(time.time()) // 60 * 60))
    expected = asyncio.run(uninterrupted(tmp_path / "driver", sent))
    assert len(expected) > COUNT  # windows of every kind closed by the stream itself
    log_path, data, trace = tmp_path / "log", tmp_path / "data", tmp_path / "trace"
    if transport == "log":
        append_to_log(log_path, sent)
        url = f"log://{log_path}"
    else:
        broker = start_broker("--partitions", "2")
        produce_to_kafka(broker.bootstrap, sent)
        url = f"kafka://{broker.bootstrap}"
    args = ("--broker", url, "--data", str(data), "--web", "none", "-l", "info")
    env = {"WINS_TRACE": str(trace), "WINS_SLEEP_S": SLEEP_S}
    first = worker_process("windows_app", APPS, *args, env=env)
    wait_until(lambda: covered(trace) >= COUNT // 2, timeout_s=TIMEOUT_S, what="half processed")
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    assert covered(trace) < COUNT, "the kill came after the end: nothing to recover"
    second = worker_process("windows_app", APPS, *args, env=env)
    wait_until(lambda: covered(trace) == COUNT, timeout_s=TIMEOUT_S, what="every event")
    assert second.stop(signal.SIGTERM) == 0, second.text()  # its last commit
    if transport == "log":
        found = finals_in_log(log_path)
    else:
        rows = read_records_to_end(
            broker.bootstrap, windows_app.FINALS, 1, "read_committed", expect=len(expected)
        )
        found = sorted(_result(k, orjson.loads(v)) for k, v in rows[0])
    assert found == expected
