"""librdkafka's mock Kafka cluster, in a process of its own, for tests.

The confluent-kafka wheel ships librdkafka, which contains a mock cluster: an
independent C implementation of the broker side of the Kafka protocol with any
number of brokers on loopback ports, partition leaders spread over them and
fault injection (no CreateTopics: topics are made through its API here).

`python tests/support/mock_cluster.py BROKERS` starts one and prints
`bootstraps HOST:PORT,...`, then obeys one command per line on stdin and
answers each with `ok` or `error MESSAGE`:

    topic NAME PARTITIONS [REPLICATION]     create a topic
    leader TOPIC PARTITION BROKER           move a partition's leader (-1: none)
    down BROKER / up BROKER                 refuse / accept connections again
    errors API_KEY CODE [CODE ...]          the next requests of that API (any
                                            broker) fail with these codes, in turn
    broker_errors BROKER API_KEY CODE[:RTT_MS] ...   the same, for one broker
    clear_errors API_KEY                    forget the pushed errors of an API
    coordinator group|transaction KEY BROKER
    controller BROKER
    rebalance_delay MS                      a new group's first rebalance waits
                                            this long for more members (Kafka's
                                            group.initial.rebalance.delay.ms;
                                            MockCluster sets 0, the mock's own
                                            default is 3 s)
    quit

End of stdin (the test's process died) ends the cluster too. `MockCluster` is
the test side, and `mock_cluster` a fixture (three brokers) that stops it by pid.
"""

from __future__ import annotations

import ctypes
import glob
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
TRANSPORT_ERROR = -195  # RD_KAFKA_RESP_ERR__TRANSPORT: the mock drops the connection


def _library_path() -> str:
    import confluent_kafka

    libs = Path(confluent_kafka.__file__).resolve().parent.parent / "confluent_kafka.libs"
    found = sorted(glob.glob(str(libs / "librdkafka-*.so*")))
    if not found:
        raise RuntimeError(f"no librdkafka in {libs}")
    return found[0]


def _bind(lib: ctypes.CDLL) -> None:
    c_p, c_i32, c_i16 = ctypes.c_void_p, ctypes.c_int32, ctypes.c_int16
    signatures = {
        "rd_kafka_conf_new": (c_p, []),
        "rd_kafka_conf_set": (
            ctypes.c_int,
            [c_p, ctypes.c_char_p, ctypes.c_char_p, c_p, ctypes.c_size_t],
        ),
        "rd_kafka_new": (c_p, [ctypes.c_int, c_p, ctypes.c_char_p, ctypes.c_size_t]),
        "rd_kafka_destroy": (None, [c_p]),
        "rd_kafka_mock_cluster_new": (c_p, [c_p, ctypes.c_int]),
        "rd_kafka_mock_cluster_destroy": (None, [c_p]),
        "rd_kafka_mock_cluster_bootstraps": (ctypes.c_char_p, [c_p]),
        "rd_kafka_mock_topic_create": (
            ctypes.c_int,
            [c_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int],
        ),
        "rd_kafka_mock_partition_set_leader": (ctypes.c_int, [c_p, ctypes.c_char_p, c_i32, c_i32]),
        "rd_kafka_mock_broker_set_down": (ctypes.c_int, [c_p, c_i32]),
        "rd_kafka_mock_broker_set_up": (ctypes.c_int, [c_p, c_i32]),
        "rd_kafka_mock_push_request_errors_array": (
            None,
            [c_p, c_i16, ctypes.c_size_t, ctypes.POINTER(ctypes.c_int)],
        ),
        "rd_kafka_mock_clear_request_errors": (None, [c_p, c_i16]),
        "rd_kafka_mock_coordinator_set": (
            ctypes.c_int,
            [c_p, ctypes.c_char_p, ctypes.c_char_p, c_i32],
        ),
        "rd_kafka_mock_set_controller_id": (ctypes.c_int, [c_p, c_i32]),
        "rd_kafka_mock_group_initial_rebalance_delay_ms": (None, [c_p, c_i32]),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype, function.argtypes = restype, argtypes


class _Cluster:
    """The mock cluster inside this process (the command loop's side)."""

    def __init__(self, brokers: int) -> None:
        self.lib = lib = ctypes.CDLL(_library_path())
        _bind(lib)
        conf = lib.rd_kafka_conf_new()
        errstr = ctypes.create_string_buffer(512)
        # the handle only hosts the cluster; keep its own logging quiet
        lib.rd_kafka_conf_set(conf, b"log_level", b"0", errstr, len(errstr))
        self.rk = lib.rd_kafka_new(0, conf, errstr, len(errstr))
        if not self.rk:
            raise RuntimeError(f"rd_kafka_new: {errstr.value.decode()}")
        self.mc = lib.rd_kafka_mock_cluster_new(self.rk, brokers)
        if not self.mc:
            raise RuntimeError("rd_kafka_mock_cluster_new failed")

    def bootstraps(self) -> str:
        return self.lib.rd_kafka_mock_cluster_bootstraps(self.mc).decode()

    def run(self, words: list[str]) -> None:
        lib, mc = self.lib, self.mc
        command, args = words[0], words[1:]
        if command == "topic":
            replication = int(args[2]) if len(args) > 2 else 1
            _check(lib.rd_kafka_mock_topic_create(mc, args[0].encode(), int(args[1]), replication))
        elif command == "leader":
            _check(
                lib.rd_kafka_mock_partition_set_leader(
                    mc, args[0].encode(), int(args[1]), int(args[2])
                )
            )
        elif command == "down":
            _check(lib.rd_kafka_mock_broker_set_down(mc, int(args[0])))
        elif command == "up":
            _check(lib.rd_kafka_mock_broker_set_up(mc, int(args[0])))
        elif command == "errors":
            codes = [int(code) for code in args[1:]]
            array = (ctypes.c_int * len(codes))(*codes)
            lib.rd_kafka_mock_push_request_errors_array(mc, int(args[0]), len(codes), array)
        elif command == "broker_errors":
            self._broker_errors(int(args[0]), int(args[1]), args[2:])
        elif command == "clear_errors":
            lib.rd_kafka_mock_clear_request_errors(mc, int(args[0]))
        elif command == "coordinator":
            _check(
                lib.rd_kafka_mock_coordinator_set(
                    mc, args[0].encode(), args[1].encode(), int(args[2])
                )
            )
        elif command == "rebalance_delay":
            lib.rd_kafka_mock_group_initial_rebalance_delay_ms(mc, int(args[0]))
        elif command == "controller":
            _check(lib.rd_kafka_mock_set_controller_id(mc, int(args[0])))
        else:
            raise ValueError(f"unknown command {command!r}")

    def _broker_errors(self, broker: int, api_key: int, items: list[str]) -> None:
        # variadic (error, rtt) pairs: ctypes passes each as a C int
        function = self.lib.rd_kafka_mock_broker_push_request_error_rtts
        function.restype = ctypes.c_int
        pairs: list[ctypes.c_int] = []
        for item in items:
            code, _, rtt = item.partition(":")
            pairs += [ctypes.c_int(int(code)), ctypes.c_int(int(rtt or 0))]
        _check(
            function(
                ctypes.c_void_p(self.mc),
                ctypes.c_int32(broker),
                ctypes.c_int16(api_key),
                ctypes.c_size_t(len(items)),
                *pairs,
            )
        )

    def close(self) -> None:
        self.lib.rd_kafka_mock_cluster_destroy(self.mc)
        self.lib.rd_kafka_destroy(self.rk)


def _check(code: int) -> None:
    if code != 0:
        raise RuntimeError(f"librdkafka error {code}")


def serve(brokers: int) -> None:
    cluster = _Cluster(brokers)
    print(f"bootstraps {cluster.bootstraps()}", flush=True)
    try:
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            if words[0] == "quit":
                break
            try:
                cluster.run(words)
            except (ValueError, IndexError, RuntimeError) as exc:
                print(f"error {exc}", flush=True)
            else:
                print("ok", flush=True)
    finally:
        cluster.close()


# --- the test side ---------------------------------------------------------------


class MockCluster:
    """A mock cluster process: `start()`, commands as methods, `stop()` by pid."""

    def __init__(self, brokers: int = 3) -> None:
        self.broker_count = brokers
        self.bootstraps = ""
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstraps}"

    def start(self) -> MockCluster:
        self._proc = subprocess.Popen(
            [sys.executable, __file__, str(self.broker_count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        line = self._read_line(READY_TIMEOUT_S)
        if not line.startswith("bootstraps "):
            self.stop()
            raise RuntimeError(f"mock cluster did not start: {line!r}")
        self.bootstraps = line.split()[1]
        self.command("rebalance_delay", 0)  # one member alone need not wait
        return self

    def _read_line(self, timeout_s: float) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        result: list[str] = []
        reader = threading.Thread(target=lambda: result.append(self._proc.stdout.readline()))
        reader.start()
        reader.join(timeout_s)
        if not result:
            raise RuntimeError(f"mock cluster gave no answer in {timeout_s}s")
        return result[0].strip()

    def command(self, *words: object) -> None:
        """Run one command; RuntimeError if the cluster refused it."""
        assert self._proc is not None and self._proc.stdin is not None
        with self._lock:
            self._proc.stdin.write(" ".join(str(w) for w in words) + "\n")
            self._proc.stdin.flush()
            answer = self._read_line(STOP_TIMEOUT_S)
        if answer != "ok":
            raise RuntimeError(f"mock cluster refused {words}: {answer}")

    def create_topic(self, name: str, partitions: int, replication: int = 1) -> None:
        self.command("topic", name, partitions, replication)

    def spread_leaders(self, name: str, partitions: int) -> None:
        """Partition p led by broker p % brokers + 1: leaders on every broker."""
        for p in range(partitions):
            self.set_leader(name, p, p % self.broker_count + 1)

    def set_leader(self, topic: str, partition: int, broker: int) -> None:
        self.command("leader", topic, partition, broker)

    def broker_down(self, broker: int) -> None:
        self.command("down", broker)

    def broker_up(self, broker: int) -> None:
        self.command("up", broker)

    def push_errors(self, api_key: int, *codes: int) -> None:
        self.command("errors", api_key, *codes)

    def push_broker_errors(self, broker: int, api_key: int, *codes: int, rtt_ms: int = 0) -> None:
        self.command("broker_errors", broker, api_key, *(f"{c}:{rtt_ms}" for c in codes))

    def clear_errors(self, api_key: int) -> None:
        self.command("clear_errors", api_key)

    def set_coordinator(self, key: str, broker: int, key_type: str = "group") -> None:
        self.command("coordinator", key_type, key, broker)

    def set_controller(self, broker: int) -> None:
        self.command("controller", broker)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.write("quit\n")
                proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, 9)
            proc.wait(timeout=STOP_TIMEOUT_S)
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> MockCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture
def mock_cluster() -> Iterator[MockCluster]:
    """A three-broker mock cluster, stopped (by pid) after the test."""
    with MockCluster(3) as cluster:
        yield cluster


if __name__ == "__main__":
    serve(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
