"""kcat (librdkafka 2.0, the Debian package) against a real `streams broker` process."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
from collections import defaultdict
from collections.abc import Callable

import pytest
from kcat_runner import kcat
from waiting import wait_until

pytestmark = pytest.mark.slow

FORMAT = "%t %p %o %k %s\\n"
TIMEOUT_S = 30.0


def produce(bootstrap: str, topic: str, lines: list[str]) -> None:
    kcat("-b", bootstrap, "-P", "-t", topic, "-K", ":", stdin="".join(f"{x}\n" for x in lines))


def keyed_values(keys: int, start: int, stop: int) -> list[str]:
    """'key:value' lines; each value is its key and a sequence number per key."""
    return [f"key{k}:key{k}-{seq}" for seq in range(start, stop) for k in range(keys)]


def parse(lines: list[str]) -> list[tuple[str, int, int, str, str]]:
    rows = []
    for line in lines:
        topic, partition, offset, key, value = line.split()
        rows.append((topic, int(partition), int(offset), key, value))
    return rows


def assert_exactly_once_in_order(
    rows: list[tuple[str, int, int, str, str]], keys: int, per_key: int
) -> None:
    """Every key's sequence 0..per_key-1 once and in order; offsets rise per partition."""
    by_key: dict[str, list[int]] = defaultdict(list)
    by_partition: dict[int, list[int]] = defaultdict(list)
    partition_of: dict[str, int] = {}
    for _, partition, offset, key, value in rows:
        name, _, seq = value.rpartition("-")
        assert name == key
        by_key[key].append(int(seq))
        by_partition[partition].append(offset)
        assert partition_of.setdefault(key, partition) == partition
    assert sorted(by_key) == sorted(f"key{k}" for k in range(keys))
    for key, seqs in by_key.items():
        assert seqs == list(range(per_key)), key
    for partition, offsets in by_partition.items():
        assert offsets == list(range(len(offsets))), partition


class Lines:
    """A child's stdout and stderr lines, read by threads as they come."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.out: list[str] = []
        self.err: list[str] = []
        self._changed = threading.Condition()
        self._threads = [
            threading.Thread(target=self._pump, args=(proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._pump, args=(proc.stderr, self.err), daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _pump(self, stream, into: list[str]) -> None:
        for line in stream:
            with self._changed:
                into.append(line.rstrip("\n"))
                self._changed.notify_all()

    def wait_for(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        with self._changed:
            return self._changed.wait_for(condition, timeout_s)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(TIMEOUT_S)
        for t in self._threads:
            t.join(TIMEOUT_S)
        for stream in (self.proc.stdout, self.proc.stderr):
            assert stream is not None
            stream.close()
        return code


def test_kcat_is_installed() -> None:
    assert shutil.which("kcat"), "kcat is missing: install the Debian package kcat"


def test_produce_consume_and_metadata(start_broker) -> None:
    broker = start_broker("--partitions", "3")
    produce(broker.bootstrap, "kc", keyed_values(6, 0, 20))

    metadata = json.loads(kcat("-b", broker.bootstrap, "-L", "-J", "-t", "kc"))
    (topic,) = metadata["topics"]
    assert topic["topic"] == "kc"
    assert [p["partition"] for p in topic["partitions"]] == [0, 1, 2]
    assert all(p["leader"] == 0 and p["replicas"] == [{"id": 0}] for p in topic["partitions"])
    assert [b["name"] for b in metadata["brokers"]] == [broker.bootstrap]

    out = kcat("-b", broker.bootstrap, "-C", "-t", "kc", "-e", "-q", "-f", FORMAT)
    rows = parse(out.splitlines())
    assert len(rows) == 120
    assert_exactly_once_in_order(rows, keys=6, per_key=20)

    tail = kcat("-b", broker.bootstrap, "-C", "-t", "kc", "-p", "0", "-o", "-1", "-e", "-q")
    assert len(tail.splitlines()) == 1


def _assignment(err: list[str]) -> set[int] | None:
    """The partitions of a kcat -G member's last rebalance, None while revoked."""
    for line in reversed(err):
        if "rebalanced" in line:
            if "assigned:" not in line:
                return None
            parts = line.split("assigned:")[1].split(",")
            return {int(p.split("[")[1].rstrip("] ")) for p in parts if "[" in p}
    return None


def test_group_of_two_splits_a_topic_exactly_once(start_broker) -> None:
    partitions, keys, per_key = 4, 8, 50
    broker = start_broker("--partitions", str(partitions))
    produce(broker.bootstrap, "kg", keyed_values(keys, 0, per_key // 2))

    command = [
        "kcat", "-b", broker.bootstrap, "-G", "kgroup", "-u", "-f", FORMAT,
        "-X", "auto.offset.reset=earliest",
        "-X", "session.timeout.ms=6000",
        "-X", "heartbeat.interval.ms=300",
        "kg",
    ]  # fmt: skip
    members: list[Lines] = []
    try:
        for _ in range(2):
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            members.append(Lines(proc))
            # the second joins while the first has the backlog: a real rebalance
            assert members[-1].wait_for(lambda m=members[-1]: bool(_assignment(m.err)), TIMEOUT_S)

        def split() -> bool:
            owned = [_assignment(m.err) for m in members]
            return all(owned) and set().union(*owned) == set(range(partitions))

        wait_until(split, timeout_s=TIMEOUT_S, what=lambda: f"a split: {[m.err for m in members]}")
        produce(broker.bootstrap, "kg", keyed_values(keys, per_key // 2, per_key))

        def consumed() -> int:
            return sum(len(m.out) for m in members)

        wait_until(
            lambda: consumed() >= keys * per_key,
            timeout_s=TIMEOUT_S,
            what=lambda: f"all consumed; consumed {consumed()} of {keys * per_key}",
        )
    finally:
        codes = [m.stop() for m in members]
    assert codes == [0, 0], [m.err for m in members]
    assert all(m.out for m in members), "both members consumed"
    for m in members:  # each member reads each partition in order
        offsets: dict[int, list[int]] = defaultdict(list)
        for _, partition, offset, _, _ in parse(m.out):
            offsets[partition].append(offset)
        assert all(o == sorted(set(o)) for o in offsets.values())
    # a partition moves between members whole: together they read each once, in order
    rows = parse([line for m in members for line in m.out])
    assert len(rows) == keys * per_key
    in_log_order = sorted(rows, key=lambda r: (r[1], r[2]))
    assert_exactly_once_in_order(in_log_order, keys=keys, per_key=per_key)
