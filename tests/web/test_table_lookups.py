"""Interactive queries: two workers of one app on kafka:// (processes, against a
real `streams broker`) each own half the partitions; a lookup through either
worker answers the owner's value, forwarded when the key is the other's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer
from waiting import wait_until
from web_procs import WorkerProcess

from runtime.partitioner import partition_for_key

pytestmark = pytest.mark.slow

APPS = Path(__file__).parent / "apps"
TIMEOUT_S = 60.0
KEYS = [f"rider-{i}" for i in range(24)]
QUIET = {"log.connection.close": False, "log_level": 3}


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        code = worker.stop()
        assert code == 0, worker.text()
        assert "Traceback" not in worker.text(), worker.text()


def test_a_lookup_through_the_worker_that_does_not_own_the_key(
    start_broker, workers, tmp_path: Path
) -> None:
    broker = start_broker("--partitions", "4")
    url = f"kafka://{broker.bootstrap}"
    for i in range(2):
        workers.append(
            WorkerProcess("lookup_app", tmp_path / f"w{i}", "--broker", url, pythonpath=APPS)
        )

    def split_evenly() -> bool:
        # once each owns 2 of the 4 partitions, both assignments name both web URLs
        counts = [w.get("/ready")[0] == 200 and _assigned(w) for w in workers]
        return counts == [2, 2]

    wait_until(
        split_evenly,
        timeout_s=TIMEOUT_S,
        what=lambda: "2 partitions each:\n" + "\n".join(w.text()[-2000:] for w in workers),
    )
    producer = Producer(
        {"bootstrap.servers": broker.bootstrap, "partitioner": "murmur2_random", **QUIET}
    )
    for key in KEYS:
        producer.produce("lookup-events", key=key.encode(), value=f"at {key}".encode())
    assert producer.flush(TIMEOUT_S) == 0

    def answers() -> dict[tuple[int, str], dict] | None:
        found = {}
        for i, worker in enumerate(workers):
            for key in KEYS:
                status, body = worker.get(f"/tables/latest/{key}")
                if status != 200:
                    return None
                found[(i, key)] = body
        return found

    found = wait_until(answers, timeout_s=TIMEOUT_S, what="every key found through both workers")
    forwarded = 0
    for key in KEYS:
        through_first, through_second = found[(0, key)], found[(1, key)]
        assert through_first["value"] == through_second["value"] == f"at {key}"
        # both name the same owner: the worker holding the key's partition
        assert through_first["worker"] == through_second["worker"]
        assert through_first["partition"] == partition_for_key(key.encode(), 4)
        forwarded += sum(found[(i, key)]["worker"] != workers[i].url for i in (0, 1))
    assert forwarded == len(KEYS)  # each key was forwarded by exactly one of the two


def _assigned(worker: WorkerProcess) -> int:
    status, body = worker.get("/api/dashboard")
    if status != 200:
        return -1
    return next((t["partitions_here"] for t in body["tables"] if t["name"] == "latest"), -1)
