"""The examples as a user runs them: `streams -A examples.X worker` in a real
process on the embedded log, read until it prints what it computes, then
SIGTERM and a clean exit. Time scales are shrunk through the environment."""

from __future__ import annotations

import itertools
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from broker_process import start_broker
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from confluent_reading import read_to_end, read_values
from waiting import wait_until

__all__ = ["start_broker"]  # a fixture: importing it offers it to these tests

ROOT = Path(__file__).resolve().parents[2]
OUTPUT_TIMEOUT_S = 40.0

FAST = {
    "SURGE_WINDOW_S": "1",
    "SURGE_TICK_S": "0.05",
    "SURGE_REPORT_S": "0.5",
    "SURGE_RUSH_S": "3",
    "ACTIVITY_WINDOW_S": "3",
    "ACTIVITY_STEP_S": "1",
    "ACTIVITY_TICK_S": "0.05",
    "ACTIVITY_REPORT_S": "0.5",
    "METRICS_WINDOW_S": "3",
    "METRICS_STEP_S": "1",
    "METRICS_TICK_S": "0.05",
    "METRICS_REPORT_S": "0.5",
    "METRICS_INCIDENT_S": "3",
    "LOGS_TICK_S": "0.05",
    "LOGS_REPORT_S": "0.5",
    "LOGS_INCIDENT_S": "2",
}


class ExampleProcess:
    """An example worker process with its stdout read line by line.

    stdout is unbuffered and read with os.read: a buffered reader could hold
    lines that neither select() nor communicate() would then see."""

    def __init__(self, args: list[str], data: Path, env: dict[str, str] | None = None) -> None:
        env = {**os.environ, **FAST, "STREAMS_DATA": str(data), **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            bufsize=0,
        )
        self.lines: list[str] = []
        self._partial = b""
        self._stderr: str | None = None

    def _take(self, data: bytes) -> None:
        *complete, self._partial = (self._partial + data).split(b"\n")
        self.lines.extend(line.decode() for line in complete)

    def read_until(self, done: Callable[[list[str]], bool]) -> list[str]:
        """Read stdout until `done(lines so far)`; fail after OUTPUT_TIMEOUT_S."""
        deadline = time.monotonic() + OUTPUT_TIMEOUT_S
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                    break
                data = os.read(fd, 1 << 16)
                if not data:
                    break
                self._take(data)
                if done(self.lines):
                    return self.lines
        self.kill()
        tail = "\n".join(self.lines[-30:])
        raise AssertionError(
            f"the example never printed what was expected; stdout tail:\n{tail}\n"
            f"stderr:\n{self.stderr()}"
        )

    def stderr(self) -> str:
        """Wait for the process (killing it after a bound) and return stderr."""
        if self._stderr is None:
            try:
                out, err = self.proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                out, err = self.proc.communicate(timeout=10)
            self._take(out + b"\n")
            self._stderr = err.decode(errors="replace")
        return self._stderr

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        err = self.stderr()
        assert self.proc.returncode == 0, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.stderr()  # reaps the process and closes its pipes


def run_example(module: str, data: Path, done: Callable[[list[str]], bool]) -> list[str]:
    worker = ExampleProcess(["-m", "streams", "-A", f"examples.{module}", "worker"], data)
    try:
        lines = worker.read_until(done)
        worker.terminate()
        return lines
    finally:
        worker.kill()


# --- what each example prints ------------------------------------------------------

SURGE_ROW = re.compile(r"^\s+(\w+)\s+(\d+)\s+(\d+)\s+(\d+\.\d)x")


def multipliers_seen(lines: list[str]) -> dict[str, set[float]]:
    seen: dict[str, set[float]] = {}
    for line in lines:
        match = SURGE_ROW.match(line)
        if match:
            seen.setdefault(match[1], set()).add(float(match[4]))
    return seen


def a_multiplier_changed(lines: list[str]) -> bool:
    return any(len(values) >= 2 for values in multipliers_seen(lines).values())


@pytest.mark.slow
def test_surge_pricing_multipliers_change(tmp_path):
    lines = run_example("surge_pricing", tmp_path, a_multiplier_changed)
    seen = multipliers_seen(lines)
    assert set(seen) == {"airport", "downtown", "harbor", "stadium", "university"}
    assert all(1.0 <= m <= 3.0 for values in seen.values() for m in values)
    assert any(m > 1.0 for values in seen.values() for m in values)


ACTIVITY_HEAD = re.compile(r"^activity at .* \(last 3s: (\d+) views, (\d+) users\)")


def activity_counted(lines: list[str]) -> bool:
    return any((m := ACTIVITY_HEAD.match(line)) and int(m[1]) >= 10 for line in lines)


@pytest.mark.slow
def test_activity_tracking_prints_top_pages_and_users(tmp_path):
    lines = run_example("activity_tracking", tmp_path, activity_counted)
    last = max(i for i, line in enumerate(lines) if ACTIVITY_HEAD.match(line))
    pages, users = lines[last + 1], lines[last + 2]
    assert re.match(r"^\s+top pages:\s+/\S* \d+", pages), pages
    assert re.match(r"^\s+top users:\s+user\d\d \d+", users), users


METRIC_ROW = re.compile(r"^\s+(\w+/\w+)\s+(\d+\.\d)\s+(\d+\.\d)\s+(\d+)$")


def every_series_averaged(lines: list[str]) -> bool:
    return len({m[1] for line in lines if (m := METRIC_ROW.match(line))}) == 9


@pytest.mark.slow
def test_metrics_prints_rolling_averages(tmp_path):
    lines = run_example("metrics", tmp_path, every_series_averaged)
    rows = {m[1]: m for line in lines if (m := METRIC_ROW.match(line))}
    assert 20 < float(rows["api/cpu_pct"][2]) < 60  # typical 35, spread 5


LOG_ROW = re.compile(r"^\s+(auth|payments|search)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$")


def errors_forwarded(lines: list[str]) -> bool:
    return any((m := LOG_ROW.match(line)) and int(m[6]) > 0 for line in lines)


@pytest.mark.slow
def test_log_aggregation_counts_and_forwards_errors(tmp_path):
    lines = run_example("log_aggregation", tmp_path, errors_forwarded)
    assert any(line.startswith("logs at") and "dropped 0)" in line for line in lines)
    assert any(line.startswith("  last error in ") for line in lines)
    assert any(int(m[5]) > 0 for line in lines if (m := LOG_ROW.match(line)))


@pytest.mark.slow
def test_surge_pricing_with_avro_values_through_a_brokers_registry(tmp_path, start_broker):
    broker = start_broker("--partitions", "4")
    env = {"SURGE_FORMAT": "avro", "STREAMS_SCHEMA_REGISTRY": broker.http}
    args = [
        "-m",
        "examples.surge_pricing",
        "--seconds",
        "3",
        "--broker",
        f"kafka://{broker.bootstrap}",
    ]
    worker = ExampleProcess(args, tmp_path, env)
    try:
        err = worker.stderr()
        assert worker.proc.returncode == 0, err
    finally:
        worker.kill()
    with SchemaRegistryClient({"url": broker.http}) as registry:
        assert registry.get_latest_version("surge-prices-value").schema.schema_type == "AVRO"
        deserialize = AvroDeserializer(registry)
        context = SerializationContext("surge-prices", MessageField.VALUE)
        prices = [
            deserialize(raw, context) for raw in read_all_values(broker.bootstrap, "surge-prices")
        ]
    assert prices, "no surge price was written"
    assert all(1.0 <= p["multiplier"] <= 3.0 for p in prices), prices[:3]


@pytest.mark.slow
def test_activity_sessions_on_kafka_are_emitted_once_each(tmp_path, start_broker):
    broker = start_broker("--partitions", "4")
    gap_s = 0.3
    args = ["-m", "examples.activity_tracking", "--seconds", "4"]
    args += ["--broker", f"kafka://{broker.bootstrap}"]
    worker = ExampleProcess(args, tmp_path, {"ACTIVITY_SESSION_GAP_S": str(gap_s)})
    try:
        err = worker.stderr()
        assert worker.proc.returncode == 0, err
    finally:
        worker.kill()
    finished = [orjson.loads(v) for v in read_all_values(broker.bootstrap, "finished-sessions")]
    assert finished, "no session finished"
    keys = [(s["key"], s["start"], s["end"]) for s in finished]
    assert len(keys) == len(set(keys)), "a session was emitted twice"
    by_user: dict[str, list[dict]] = {}
    for session in finished:
        assert session["start"] <= session["end"] and session["value"] >= 1, session
        by_user.setdefault(session["key"], []).append(session)
    for sessions in by_user.values():
        sessions.sort(key=lambda s: s["start"])
        for before, after in itertools.pairwise(sessions):
            assert after["start"] - before["end"] > gap_s, (before, after)  # else one session
    printed = [line for line in worker.lines if line.startswith("  sessions:")]
    assert printed and not printed[-1].startswith("  sessions:   0 finished"), printed[-3:]


@pytest.mark.slow
def test_surge_fares_follow_a_zone_fare_sent_with_the_cli(tmp_path, start_broker):
    broker = start_broker("--partitions", "4")
    url = f"kafka://{broker.bootstrap}"
    # Until SIGTERM, not for a number of seconds: on a loaded machine `streams send`
    # (a Python process of its own) may take longer to start than a short demo runs.
    worker = ExampleProcess(["-m", "examples.surge_pricing", "--broker", url], tmp_path)

    def airport_prices() -> list[dict]:
        stored = read_to_end(broker.bootstrap, "surge-prices", 4, "read_uncommitted")
        prices = [orjson.loads(v) for values in stored.values() for v in values]
        return [p for p in prices if p["zone"] == "airport"]

    def quoted_at(base: float, prices: list[dict]) -> bool:
        return any(p["fare"] == round(base * p["multiplier"], 2) for p in prices)

    try:
        worker.read_until(lambda lines: any(line.startswith("surge at") for line in lines))
        fare = '{"zone": "airport", "fare": 42.0}'
        send = ["streams", "send", "zone-fares", fare, "--key", "airport", "--broker", url]
        sent = subprocess.run(
            [sys.executable, "-m", *send],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert sent.returncode == 0, sent.stderr
        # The worker reprices the airport at its next ride request or driver position.
        wait_until(
            lambda: quoted_at(42.0, airport_prices()),
            timeout_s=OUTPUT_TIMEOUT_S,
            what=lambda: f"an airport fare on the base fare sent: {airport_prices()[-3:]}",
            interval_s=0.5,
        )
        worker.terminate()
    finally:
        worker.kill()
    airport = airport_prices()
    # before the change the built-in base fare (30.0), after it 42.0, times the multiplier
    assert quoted_at(30.0, airport), airport
    assert quoted_at(42.0, airport), airport


def read_all_values(bootstrap: str, topic: str, partitions: int = 4) -> list[bytes]:
    values: list[bytes] = []
    for partition in range(partitions):
        _, end = watermarks(bootstrap, topic, partition)
        if end:
            values += read_values(bootstrap, topic, end, partition=partition)
    return values


def watermarks(bootstrap: str, topic: str, partition: int) -> tuple[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "marks", "log_level": 3})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
    finally:
        consumer.close()


def test_python_m_runs_for_the_given_seconds(tmp_path):
    worker = ExampleProcess(["-m", "examples.surge_pricing", "--seconds", "2"], tmp_path)
    try:
        err = worker.stderr()
        assert worker.proc.returncode == 0, err
        assert any(line.startswith("surge at") for line in worker.lines), worker.lines
    finally:
        worker.kill()
