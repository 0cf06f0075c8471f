"""The REST proxy of a real `streams broker` process, next to Kafka clients on the same log."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

pytestmark = pytest.mark.slow

TIMEOUT_S = 30.0


def call(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    """(status, decoded JSON) of one request; `body` bytes go as they are."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            assert response.headers["Content-Type"].startswith("application/json")
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            assert error.headers["Content-Type"].startswith("application/json")
            return error.code, json.loads(error.read())


def create_topic(bootstrap: str, name: str, partitions: int, **config: str) -> None:
    with AdminClient({"bootstrap.servers": bootstrap}) as admin:
        futures = admin.create_topics([NewTopic(name, partitions, 1, config=config)])
        futures[name].result(TIMEOUT_S)


def test_topics_produce_and_consume(broker) -> None:
    create_topic(broker.bootstrap, "rest", 2, **{"cleanup.policy": "delete"})
    status, topics = call("GET", f"{broker.http}/topics")
    assert status == 200
    assert {"name": "rest", "partitions": 2, "cleanup.policy": "delete"} in topics

    records = [
        {"key": "a", "value": {"n": 0}, "partition": 0},
        {"key": "b", "value": [1, "two"], "partition": 1, "headers": {"h": "v"}},
        {"key": "a", "value": "text", "partition": 0},
        {"key": None, "value": None, "partition": 1},
    ]
    status, answer = call("POST", f"{broker.http}/topics/rest", {"records": records})
    assert status == 200
    assert answer["offsets"] == [
        {"partition": 0, "offset": 0},
        {"partition": 1, "offset": 0},
        {"partition": 0, "offset": 1},
        {"partition": 1, "offset": 1},
    ]

    status, described = call("GET", f"{broker.http}/topics/rest")
    assert status == 200
    assert described["name"] == "rest"
    assert described["configs"]["cleanup.policy"] == "delete"
    offsets = [
        (p["partition"], p["log_start_offset"], p["high_watermark"])
        for p in described["partitions"]
    ]
    assert offsets == [(0, 0, 2), (1, 0, 2)]

    status, read = call("GET", f"{broker.http}/topics/rest/partitions/0/records?offset=0")
    assert status == 200
    assert [(r["offset"], r["key"], r["value"]) for r in read] == [
        (0, "a", {"n": 0}),
        (1, "a", "text"),
    ]
    status, read = call("GET", f"{broker.http}/topics/rest/partitions/1/records?offset=1")
    assert [(r["offset"], r["key"], r["value"]) for r in read] == [(1, None, None)]
    status, read = call("GET", f"{broker.http}/topics/rest/partitions/1/records?offset=0")
    assert read[0]["headers"] == {"h": "v"}

    # what the proxy wrote, a Kafka client reads: UTF-8 keys, JSON values
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "rest-reader"})
    try:
        consumer.assign([TopicPartition("rest", 0, 0)])
        got = []
        deadline = time.monotonic() + TIMEOUT_S
        while len(got) < 2:
            assert time.monotonic() < deadline, got
            msg = consumer.poll(0.5)
            if msg is not None:
                assert msg.error() is None, msg.error()
                got.append((msg.key(), json.loads(msg.value())))
    finally:
        consumer.close()
    assert got == [(b"a", {"n": 0}), (b"a", "text")]

    # and what a Kafka client wrote, the proxy reads (binary values as base64)
    with Producer({"bootstrap.servers": broker.bootstrap}) as producer:
        producer.produce("rest", key=b"k", value=b"\xff\x00", partition=0)
        assert producer.flush(TIMEOUT_S) == 0
    status, read = call("GET", f"{broker.http}/topics/rest/partitions/0/records?offset=2")
    assert [(r["offset"], r["key"], r["value_b64"]) for r in read] == [(2, "k", "/wA=")]


def test_long_poll_returns_when_a_record_arrives(broker) -> None:
    create_topic(broker.bootstrap, "waited", 1)
    records = f"{broker.http}/topics/waited/partitions/0/records?offset=0"
    started = time.monotonic()
    assert call("GET", records + "&timeout_ms=300") == (200, [])
    assert time.monotonic() - started >= 0.3  # it waited for the timeout

    answers: list[tuple[int, Any]] = []
    waiter = threading.Thread(
        target=lambda: answers.append(call("GET", records + "&timeout_ms=20000"))
    )
    started = time.monotonic()
    waiter.start()
    assert call("POST", f"{broker.http}/topics/waited", {"records": [{"value": 1}]})[0] == 200
    waiter.join(TIMEOUT_S)
    assert [(status, [r["value"] for r in read]) for status, read in answers] == [(200, [1])]
    assert time.monotonic() - started < 20  # the append ended the wait


def test_groups_show_committed_offsets_and_lag(broker) -> None:
    create_topic(broker.bootstrap, "lagging", 2)
    body = {"records": [{"value": i, "partition": i % 2} for i in range(10)]}
    assert call("POST", f"{broker.http}/topics/lagging", body)[0] == 200

    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": "lag-group",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.commit(
            offsets=[TopicPartition("lagging", 0, 3), TopicPartition("lagging", 1, 5)],
            asynchronous=False,
        )
    finally:
        consumer.close()

    status, groups = call("GET", f"{broker.http}/groups")
    assert status == 200
    (group,) = [g for g in groups if g["group"] == "lag-group"]
    assert group["partitions"] == [
        {"topic": "lagging", "partition": 0, "committed": 3, "high_watermark": 5, "lag": 2},
        {"topic": "lagging", "partition": 1, "committed": 5, "high_watermark": 5, "lag": 0},
    ]


def test_errors_are_json_with_fitting_status(broker) -> None:
    create_topic(broker.bootstrap, "strict", 1, **{"max.message.bytes": "1024"})
    base = broker.http

    def error(method: str, path: str, body: Any = None) -> tuple[int, str]:
        status, answer = call(method, base + path, body)
        assert set(answer) == {"error", "message"}, answer
        assert answer["message"]
        return status, answer["error"]

    assert error("GET", "/topics/nope") == (404, "unknown_topic")
    # the broker auto-creates topics (its default), for the REST proxy too
    assert call("POST", base + "/topics/made", {"records": [{"value": 1}]})[0] == 200
    assert call("GET", base + "/topics/made")[0] == 200
    assert error("GET", "/topics/nope/partitions/0/records")[0] == 404
    assert error("GET", "/topics/strict/partitions/7/records")[0] == 404
    assert error("GET", "/no/such/path")[0] == 404

    assert error("POST", "/topics/strict", b"{not json") == (400, "bad_request")
    assert error("POST", "/topics/strict", {"records": []}) == (400, "bad_request")
    assert error("POST", "/topics/strict", {"rows": [{"value": 1}]}) == (400, "bad_request")
    assert error("POST", "/topics/strict", {"records": [{"key": "k"}]}) == (400, "bad_request")
    bad_partition = {"records": [{"value": 1, "partition": 3}]}
    assert error("POST", "/topics/strict", bad_partition) == (400, "bad_request")
    for query in ("offset=abc", "offset=-1", "max_bytes=0", "timeout_ms=999999999"):
        path = f"/topics/strict/partitions/0/records?{query}"
        assert error("GET", path) == (400, "bad_request"), query
    assert error("GET", "/topics/strict/partitions/x/records") == (400, "bad_request")
    assert error("GET", "/topics/bad%2Fname") == (400, "invalid_topic")
    assert error("POST", "/topics/a%20b", {"records": [{"value": 1}]}) == (400, "invalid_topic")

    too_large = {"records": [{"value": "x" * 4096}]}
    assert error("POST", "/topics/strict", too_large) == (413, "record_too_large")
    assert error("GET", "/topics/strict/partitions/0/records?offset=99")[0] == 416

    # nothing above stored anything
    assert call("GET", f"{base}/topics/strict")[0] == 200
    _, described = call("GET", f"{base}/topics/strict")
    assert described["partitions"][0]["high_watermark"] == 0
