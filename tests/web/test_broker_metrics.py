"""A real `streams broker`'s /metrics, /health and /ready on its --http port (beside
the REST proxy), while confluent-kafka produces and a consumer group reads."""

from __future__ import annotations

import json
import urllib.request

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families
from waiting import wait_until

TIMEOUT_S = 30.0
RECORDS = 100
QUIET = {"log.connection.close": False, "log_level": 3}


def get(url: str) -> tuple[int, bytes, str]:
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
        return response.status, response.read(), response.headers["Content-Type"]


def scrape(http: str) -> dict[str, dict[tuple, float]]:
    status, body, kind = get(f"{http}/metrics")
    assert status == 200 and kind.startswith("text/plain; version=0.0.4")
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return samples


def total(samples: dict[str, dict[tuple, float]], name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for k, v in samples.get(name, {}).items() if wanted <= set(k))


def test_broker_counts_traffic_connections_and_groups(start_broker) -> None:
    broker = start_broker("--partitions", "2")
    assert json.loads(get(f"{broker.http}/health")[1])["status"] == "ok"
    assert json.loads(get(f"{broker.http}/ready")[1]) == {"status": "ready"}
    quiet = scrape(broker.http)
    assert total(quiet, "streams_broker_records_in_total") == 0
    with AdminClient({"bootstrap.servers": broker.bootstrap, **QUIET}) as admin:
        admin.create_topics([NewTopic("metered", 2, 1)])["metered"].result(TIMEOUT_S)

    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5, **QUIET})
    for i in range(RECORDS):
        producer.produce("metered", key=f"k{i}".encode(), value=b"x" * 50)
    assert producer.flush(TIMEOUT_S) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": "metered-readers",
            "auto.offset.reset": "earliest",
            **QUIET,
        }
    )
    try:
        consumer.subscribe(["metered"])
        read = []

        def all_read() -> bool:
            message = consumer.poll(0.2)
            if message is not None and not message.error():
                read.append(message)
            return len(read) >= RECORDS

        wait_until(all_read, timeout_s=TIMEOUT_S, what=f"{RECORDS} records consumed")
        samples = scrape(broker.http)
        assert total(samples, "streams_broker_records_in_total", topic="metered") == RECORDS
        assert total(samples, "streams_broker_bytes_in_total", topic="metered") > RECORDS * 50
        assert total(samples, "streams_broker_records_out_total", topic="metered") >= RECORDS
        assert total(samples, "streams_broker_bytes_out_total", topic="metered") > RECORDS * 50
        assert total(samples, "streams_broker_log_end_offset", topic="metered") == RECORDS
        assert total(samples, "streams_broker_log_bytes", topic="metered") > RECORDS * 50
        assert total(samples, "streams_broker_requests_total", api="produce") >= 1
        assert total(samples, "streams_broker_requests_total", api="join_group") >= 1
        fetches = total(samples, "streams_broker_request_seconds_count", api="fetch")
        assert fetches == total(samples, "streams_broker_requests_total", api="fetch") > 0
        assert total(samples, "streams_broker_connections") >= 2  # producer's and consumer's
        assert total(samples, "streams_broker_groups", state="Stable") == 1
        status, body, kind = get(f"{broker.http}/api/dashboard")  # what the page shows
        assert status == 200 and kind == "application/json"
        state = json.loads(body)
        (metered,) = [t for t in state["topics"] if t["name"] == "metered"]
        assert metered["records"] == RECORDS and len(metered["partitions"]) == 2
        (readers,) = [g for g in state["groups"] if g["group"] == "metered-readers"]
        assert readers["state"] == "Stable" and readers["members"] == 1
        assert {"produce", "fetch", "join_group"} <= {r["api"] for r in state["requests"]}
        assert state["connections"] >= 2
    finally:
        consumer.close()

    def group_empty() -> bool:
        return total(scrape(broker.http), "streams_broker_groups", state="Empty") == 1

    wait_until(group_empty, timeout_s=TIMEOUT_S, what="the group Empty once its member left")
