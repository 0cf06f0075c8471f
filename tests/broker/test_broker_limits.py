"""The broker's limits against a real `streams broker` process and real clients.

Clients that must be told apart by address connect from other loopback
addresses (127.0.0.2, ...): all of 127.0.0.0/8 reaches the broker on 127.0.0.1.
"""

from __future__ import annotations

import select
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka_wire import WireClient, batch, fetch_body, metadata_body, produce_body
from waiting import wait_until

from runtime.protocol.codes import ApiKey, ErrorCode

pytestmark = pytest.mark.slow

TIMEOUT_S = 10.0
MIB = 1024 * 1024
REPO = Path(__file__).resolve().parents[2]
FD_STARVED = Path(__file__).with_name("fd_starved_broker.py")


def served(client: WireClient) -> bool:
    """Whether the broker answers an ApiVersions request on this connection."""
    try:
        client.sock.sendall(client.frame(ApiKey.API_VERSIONS, 0, {}))
        return client.read_frame() is not None
    except OSError:
        return False


def log_lines(broker, text: str) -> list[str]:
    return [line for line in broker.log if text in line]


def logged_lines(broker, text: str) -> list[str]:
    """The broker's lines holding `text`, once at least one has come through
    (its output reaches `broker.log` through a reader thread)."""
    return wait_until(lambda: log_lines(broker, text), timeout_s=TIMEOUT_S, what=f"{text!r} logged")


def test_connection_over_the_limit_per_address_is_closed_while_others_are_served(
    start_broker,
) -> None:
    broker = start_broker("--connections-per-ip-max", "3", "--log-interval-ms", "600000")
    held = [WireClient(broker.bootstrap, TIMEOUT_S, source="127.0.0.2") for _ in range(3)]
    extra: list[WireClient] = []
    try:
        assert all(served(c) for c in held)
        extra = [WireClient(broker.bootstrap, TIMEOUT_S, source="127.0.0.2") for _ in range(20)]
        assert all(c.closed_by_peer() for c in extra)
        with WireClient(broker.bootstrap, TIMEOUT_S) as normal:  # from 127.0.0.1
            assert served(normal)
        held.pop().close()

        def one_more_served() -> bool:
            client = WireClient(broker.bootstrap, TIMEOUT_S, source="127.0.0.2")
            extra.append(client)
            return served(client)

        wait_until(
            one_more_served,
            timeout_s=TIMEOUT_S,
            what="a closed connection's place is given to the next one",
        )
    finally:
        for client in held + extra:
            client.close()
    # twenty refusals and more, logged once (the interval is ten minutes)
    assert len(logged_lines(broker, "refused a connection from 127.0.0.2")) == 1


def test_connection_over_the_total_limit_is_closed(start_broker) -> None:
    broker = start_broker("--connections-max", "3")
    held = [WireClient(broker.bootstrap, TIMEOUT_S, source=f"127.0.0.{i}") for i in (2, 3, 4)]
    try:
        assert all(served(c) for c in held)
        with WireClient(broker.bootstrap, TIMEOUT_S, source="127.0.0.5") as fourth:
            assert fourth.closed_by_peer()
    finally:
        for client in held:
            client.close()
    assert logged_lines(broker, "3 connections open, the limit (--connections-max)")


def test_bad_frames_of_one_client_are_logged_once_per_interval(start_broker) -> None:
    broker = start_broker("--log-interval-ms", "600000")
    for _ in range(30):
        with WireClient(broker.bootstrap, TIMEOUT_S, source="127.0.0.2") as bad:
            bad.sock.sendall(struct.pack(">i", 2**31 - 1))  # over --request-bytes-max
            assert bad.closed_by_peer()
    with WireClient(broker.bootstrap, TIMEOUT_S) as good:
        assert served(good)
    assert len(logged_lines(broker, "closing connection from 127.0.0.2: request size")) == 1


def test_idle_connection_is_closed_while_busy_and_active_ones_stay(start_broker) -> None:
    broker = start_broker("--connections-max-idle-ms", "400")
    with (
        WireClient(broker.bootstrap, TIMEOUT_S) as idle,
        WireClient(broker.bootstrap, TIMEOUT_S) as active,
    ):
        assert served(idle) and served(active)
        started = time.monotonic()
        closed = threading.Event()
        thread = threading.Thread(target=lambda: idle.closed_by_peer() and closed.set())
        thread.start()
        # a request every 100 ms keeps a connection open across several idle periods
        while not closed.is_set():
            assert served(active)
            assert time.monotonic() - started < TIMEOUT_S, "the idle connection stayed open"
            time.sleep(0.1)
        idle_for_s = time.monotonic() - started
        thread.join(TIMEOUT_S)
        assert 0.3 <= idle_for_s < 5.0
        # a long poll (1.5 s) outlasts the idle timeout: a request in hand is not idle
        with WireClient(broker.bootstrap, TIMEOUT_S) as polling:
            polling.request(ApiKey.METADATA, 8, metadata_body("quiet", auto_create=True))
            body = fetch_body("quiet", 0, 0, max_wait_ms=1500)
            answer = polling.request(ApiKey.FETCH, 11, body)
            assert answer["responses"][0]["partitions"][0]["error_code"] == ErrorCode.NONE


def test_request_body_that_does_not_arrive_in_time_closes_the_connection(start_broker) -> None:
    broker = start_broker("--request-timeout-ms", "400")
    with WireClient(broker.bootstrap, TIMEOUT_S) as slow, WireClient(broker.bootstrap) as other:
        slow.sock.sendall(struct.pack(">i", 1000) + b"\0" * 10)  # then nothing
        started = time.monotonic()
        assert slow.closed_by_peer()
        assert 0.3 <= time.monotonic() - started < 5.0
        assert served(other)
    assert logged_lines(broker, "request body not through in 0.4s")


def test_answers_a_client_does_not_read_close_its_connection_in_time(start_broker) -> None:
    broker = start_broker("--request-timeout-ms", "400")
    with WireClient(broker.bootstrap, TIMEOUT_S) as writer:
        writer.request(ApiKey.METADATA, 8, metadata_body("unread", auto_create=True))
        answer = writer.request(
            ApiKey.PRODUCE, 7, produce_body("unread", 0, batch(b"x" * 1_000_000))
        )
        assert answer["responses"][0]["partitions"][0]["error_code"] == ErrorCode.NONE
    with WireClient(broker.bootstrap, TIMEOUT_S) as deaf:
        fetches = [deaf.frame(ApiKey.FETCH, 11, fetch_body("unread", 0, 0)) for _ in range(100)]
        deaf.sock.sendall(b"".join(fetches))  # 100 MB of answers, never read
        assert logged_lines(broker, "answer not through in 0.4s")
        with WireClient(broker.bootstrap, TIMEOUT_S) as other:
            assert served(other)


def test_large_requests_beyond_the_budget_all_complete_with_the_right_bytes(start_broker) -> None:
    broker = start_broker(
        "--request-bytes-max", str(3 * MIB), "--queued-max-request-bytes", str(4 * MIB)
    )
    with AdminClient({"bootstrap.servers": broker.bootstrap}) as admin:
        topic = NewTopic("budget", 1, 1, config={"max.message.bytes": str(3 * MIB)})
        admin.create_topics([topic])["budget"].result(TIMEOUT_S)
    values = [bytes([65 + i]) * (5 * MIB // 2) for i in range(8)]
    answers: dict[int, dict] = {}

    def produce(i: int) -> None:
        with WireClient(broker.bootstrap, TIMEOUT_S) as client:
            body = produce_body("budget", 0, batch(values[i], key=str(i).encode()))
            answers[i] = client.request(ApiKey.PRODUCE, 7, body)["responses"][0]

    threads = [threading.Thread(target=produce, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT_S * 3)
    parts = [answers[i]["partitions"][0] for i in sorted(answers)]
    assert [p["error_code"] for p in parts] == [ErrorCode.NONE] * 8
    assert sorted(p["base_offset"] for p in parts) == list(range(8))
    consumer = Consumer(
        {"bootstrap.servers": broker.bootstrap, "group.id": "g", "fetch.max.bytes": 3 * MIB}
    )
    consumer.assign([TopicPartition("budget", 0, 0)])
    consumed: dict[int, bytes] = {}
    deadline = time.monotonic() + TIMEOUT_S * 2
    while len(consumed) < 8 and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            consumed[int(msg.key())] = msg.value()
    consumer.close()
    assert consumed == dict(enumerate(values))


def create_topics_body(*topics: tuple[str, int], validate_only: bool = False) -> dict:
    return {
        "topics": [
            {
                "name": name,
                "num_partitions": n,
                "replication_factor": 1,
                "assignments": [],
                "configs": [],
            }
            for name, n in topics
        ],
        "timeout_ms": 60_000,
        "validate_only": validate_only,
    }


def refusal(future) -> tuple[int, str]:
    with pytest.raises(KafkaException) as info:
        future.result(TIMEOUT_S)
    error = info.value.args[0]
    return error.code(), error.str()


def test_create_topics_over_the_limits_is_refused_with_policy_violation(start_broker) -> None:
    broker = start_broker(
        "--create-partitions-max", "100", "--partitions-max", "250", "--topics-max", "7"
    )
    with AdminClient({"bootstrap.servers": broker.bootstrap}) as admin:
        code, message = refusal(admin.create_topics([NewTopic("huge", 25_000, 1)])["huge"])
        assert code == ErrorCode.POLICY_VIOLATION and "--create-partitions-max 100" in message
        # per request, in order: the first fits, the second would make 110
        futures = admin.create_topics([NewTopic("a", 60, 1), NewTopic("b", 50, 1)])
        futures["a"].result(TIMEOUT_S)
        code, message = refusal(futures["b"])
        assert code == ErrorCode.POLICY_VIOLATION and "this request" in message
        admin.create_topics([NewTopic("c", 100, 1)])["c"].result(TIMEOUT_S)  # 8 + 4 + 60 + 100
        code, message = refusal(admin.create_topics([NewTopic("d", 90, 1)])["d"])
        assert code == ErrorCode.POLICY_VIOLATION and "--partitions-max 250" in message
        code, _ = refusal(admin.create_topics([NewTopic("d", 90, 1)], validate_only=True)["d"])
        assert code == ErrorCode.POLICY_VIOLATION
        for name in ("e", "f", "g"):
            admin.create_topics([NewTopic(name, 1, 1)])[name].result(TIMEOUT_S)
        code, message = refusal(admin.create_topics([NewTopic("h", 1, 1)])["h"])
        assert code == ErrorCode.POLICY_VIOLATION and "--topics-max 7" in message
        names = set(admin.list_topics(timeout=TIMEOUT_S).topics)
    assert names == {"__consumer_offsets", "__transaction_state", "a", "c", "e", "f", "g"}


def test_large_create_and_delete_topics_do_not_stall_other_clients(start_broker) -> None:
    broker = start_broker("--create-partitions-max", "3000", "--partitions-max", "4000")
    with WireClient(broker.bootstrap, TIMEOUT_S) as live:
        live.request(ApiKey.METADATA, 8, metadata_body("live", auto_create=True))
        for api, version, body in (
            (ApiKey.CREATE_TOPICS, 4, create_topics_body(("wide", 2500))),
            (ApiKey.DELETE_TOPICS, 3, {"topic_names": ["wide"], "timeout_ms": 30000}),
        ):
            answer, took_s, latencies = _round_trips_during(broker, live, api, version, body)
            print(
                f"\n{api.name} of 2500 partitions took {took_s:.2f}s; {len(latencies)} "
                f"produce+fetch round trips meanwhile, slowest {max(latencies):.3f}s"
            )
            codes = [t["error_code"] for t in answer.get("topics", answer.get("responses", []))]
            assert codes == [ErrorCode.NONE]
            assert len(latencies) >= 5 and max(latencies) < max(0.25, took_s / 4)


def _round_trips_during(
    broker, live: WireClient, api: ApiKey, version: int, body: dict
) -> tuple[dict, float, list[float]]:
    """Send one admin request from another connection; meanwhile time produce+fetch
    round trips of `live`. Returns (the admin answer, its seconds, the latencies)."""
    answer: dict = {}

    def admin_request() -> None:
        with WireClient(broker.bootstrap, TIMEOUT_S * 3) as admin:
            answer.update(admin.request(api, version, body))

    worker = threading.Thread(target=admin_request)
    started = time.monotonic()
    worker.start()
    latencies = []
    while worker.is_alive():
        sent = time.monotonic()
        produced = live.request(ApiKey.PRODUCE, 7, produce_body("live", 0, batch(b"v")))
        offset = produced["responses"][0]["partitions"][0]["base_offset"]
        fetched = live.request(ApiKey.FETCH, 11, fetch_body("live", 0, offset))
        assert fetched["responses"][0]["partitions"][0]["error_code"] == ErrorCode.NONE
        latencies.append(time.monotonic() - sent)
    worker.join()
    return answer, time.monotonic() - started, latencies


def test_metadata_auto_creates_at_most_the_limits(start_broker) -> None:
    broker = start_broker(
        "--auto-create-per-request-max",
        "10",
        "--auto-create-topics-max",
        "25",
        "--log-interval-ms",
        "600000",
    )
    names = [f"t{i:04d}" for i in range(1000)]
    created: list[int] = []
    with WireClient(broker.bootstrap, TIMEOUT_S) as client:
        for _ in range(4):
            topics = client.request(ApiKey.METADATA, 8, metadata_body(*names, auto_create=True))
            codes = [t["error_code"] for t in topics["topics"]]
            assert set(codes) <= {ErrorCode.NONE, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION}
            created.append(codes.count(ErrorCode.NONE))
        every = client.request(ApiKey.METADATA, 8, {**metadata_body(), "topics": None})
    # 10 per request, until the broker holds 25 topics (two are internal: the
    # consumer offsets and the transaction state)
    assert created == [10, 20, 23, 23]
    assert len(every["topics"]) == 25
    assert len(logged_lines(broker, "not auto-created")) == 1


def test_accept_out_of_file_descriptors_is_logged_once_per_interval(tmp_path) -> None:
    log_path = tmp_path / "broker.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, str(FD_STARVED), str(tmp_path / "data"), "3000"],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    clients: list[WireClient] = []
    try:
        port = int(read_line(proc))
        assert read_line(proc) == "exhausted"
        for _ in range(5):  # queued by the kernel; the broker cannot accept them
            client = WireClient(f"127.0.0.1:{port}", TIMEOUT_S)
            client.sock.sendall(client.frame(ApiKey.API_VERSIONS, 0, {}))
            clients.append(client)
        # accept keeps failing (a retry a second); the count goes out every 3 s
        started = time.monotonic()
        wait_until(
            lambda: "failed: Too many open files; retrying in 1s repeated=" in log_path.read_text(),
            timeout_s=TIMEOUT_S,
            what="the repeated accept failures are logged with their count",
        )
        failing_s = time.monotonic() - started
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert read_line(proc) == "freed"
        assert all(client.read_frame() is not None for client in clients)  # served at last
        proc.stdin.write("\n")
        proc.stdin.close()
        assert proc.wait(TIMEOUT_S) == 0
    finally:
        for client in clients:
            client.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(TIMEOUT_S)
        proc.stdout.close()
    text = log_path.read_text()
    failures = [line for line in text.splitlines() if "accepting connections failed" in line]
    print(
        f"\naccept failing for {failing_s:.1f}s: logged in {len(failures)} lines, "
        f"log {len(text)} bytes"
    )
    assert "Traceback" not in text
    assert 2 <= len(failures) <= failing_s / 3 + 3  # once per interval, not per attempt
    assert len(text) < 10_000


def read_line(proc: subprocess.Popen[str]) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], TIMEOUT_S)
    assert ready, "the broker process did not answer in time"
    return proc.stdout.readline().strip()
