"""Twenty SIGKILLs of the broker under an idempotent producer: nothing
acknowledged is lost or doubled, whatever the flush policy.

An idempotent, acks=all confluent-kafka producer (librdkafka) keeps producing
numbered messages from a thread while the broker is SIGKILLed at random
moments and restarted on the same port and data directory; the producer keeps
its producer id and retries what was in flight. A SIGKILL is a process crash,
not a power loss: the page cache survives it, so even `--flush os` and
`interval` keep everything the OS accepted, and the same checks hold for all
three policies. At the end, read back by a consumer and raw over the wire:

- every acknowledged message is stored exactly once, at the offset it was
  acknowledged with;
- offsets have no gaps and every batch passes its length and CRC checks;
- no message is stored twice: a retry of a batch that was stored before the
  kill must be recognised (producer id and sequence) after the restart.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from log_check import QUIET, assert_whole_batches, read_back
from waiting import wait_until

pytestmark = pytest.mark.slow

# CI runs 8 SIGKILLs per flush policy; the longer run is by hand: KILL_LOOP_KILLS=20
KILLS = int(os.environ.get("KILL_LOOP_KILLS", "8"))
TOPIC = "kill-loop"
PARTITIONS = 3
RATE_PER_S = 1500
ACKS_BETWEEN_KILLS = (50, 600)  # a random number of new acks before each kill
TIMEOUT_S = 30.0
SEED = int(os.environ.get("KILL_LOOP_SEED", random.randrange(1 << 30)))


class NumberedProducer:
    """Sends message n (value str(n)) to partition n % PARTITIONS at a steady
    rate from a thread, through any number of broker restarts."""

    def __init__(self, bootstrap: str) -> None:
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 2,
                "batch.num.messages": 50,
                # long enough to outlive every restart: retried, never expired
                "message.timeout.ms": 120_000,
                "reconnect.backoff.ms": 20,
                "reconnect.backoff.max.ms": 300,
                "retry.backoff.ms": 20,
                "retry.backoff.max.ms": 300,
                **QUIET,
                "log_level": 2,  # refused connects while the broker is down are the point
            }
        )
        self.acked: dict[int, tuple[int, int]] = {}  # number -> (partition, offset)
        self.errors: list[KafkaError] = []
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _delivered(self, err: KafkaError | None, msg) -> None:
        if err is None:
            self.acked[int(msg.value())] = (msg.partition(), msg.offset())
        else:
            self.errors.append(err)

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            due = int((time.monotonic() - started) * RATE_PER_S)
            while self.sent < due and not self._stop.is_set():
                n = self.sent
                try:
                    self._producer.produce(
                        TOPIC,
                        str(n).encode(),
                        partition=n % PARTITIONS,
                        on_delivery=self._delivered,
                    )
                except BufferError:
                    break  # the queue is full while the broker is down: later
                self.sent += 1
            self._producer.poll(0.005)

    def in_flight(self) -> int:
        return self.sent - len(self.acked) - len(self.errors)

    def __enter__(self) -> NumberedProducer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(TIMEOUT_S)
        self._producer.purge()  # only if the test failed first; flush() emptied it otherwise
        self._producer.flush(TIMEOUT_S)

    def finish(self) -> None:
        """Stop sending; wait until everything sent is acknowledged."""
        self._stop.set()
        self._thread.join(TIMEOUT_S)
        assert self._producer.flush(4 * TIMEOUT_S) == 0, f"{self.in_flight()} never answered"


@dataclass
class Outcome:
    flush: str
    kills: int
    kills_in_flight: int
    acked: int
    stored: int
    lost: dict[int, tuple[tuple[int, int], tuple[int, int] | None]]
    duplicated: int
    duplicated_acked: int

    def report(self) -> str:
        return (
            f"flush={self.flush} kills={self.kills} (with messages in flight: "
            f"{self.kills_in_flight}) acked={self.acked} stored={self.stored} "
            f"lost={len(self.lost)} duplicated={self.duplicated} "
            f"(of acknowledged messages: {self.duplicated_acked})"
        )


def kill_loop(broker, producer: NumberedProducer, rng: random.Random) -> int:
    """KILLS rounds of: let a random number of acks through, SIGKILL, restart.
    Returns in how many kills messages were in flight."""
    in_flight_at_kill = 0
    for _ in range(KILLS):
        target = len(producer.acked) + rng.randrange(*ACKS_BETWEEN_KILLS)
        wait_until(
            lambda t=target: len(producer.acked) >= t or producer.errors,
            timeout_s=TIMEOUT_S,
            what=lambda: f"{len(producer.acked)} acks; broker log:\n{broker.log_text()[-2000:]}",
        )
        assert not producer.errors, producer.errors[:3]
        in_flight_at_kill += producer.in_flight() > 0
        broker.kill()
        broker.start()  # same ports, same data directory
    return in_flight_at_kill


def outcome(flush: str, bootstrap: str, producer: NumberedProducer, kills_in_flight: int):
    stored = read_back(bootstrap, TOPIC, PARTITIONS)
    where: dict[int, tuple[int, int]] = {}
    copies: Counter[int] = Counter()
    for p, rows in stored.items():
        assert [offset for offset, _ in rows] == list(range(len(rows))), f"gap in partition {p}"
        for offset, value in rows:
            number = int(value)
            assert number % PARTITIONS == p, (number, p)
            copies[number] += 1
            if (p, offset) == producer.acked.get(number):
                where[number] = (p, offset)
    lost = {n: (at, where.get(n)) for n, at in producer.acked.items() if where.get(n) != at}
    return Outcome(
        flush=flush,
        kills=KILLS,
        kills_in_flight=kills_in_flight,
        acked=len(producer.acked),
        stored=sum(map(len, stored.values())),
        lost=lost,
        duplicated=sum(c - 1 for c in copies.values()),
        duplicated_acked=sum(copies[n] - 1 for n in producer.acked if copies[n] > 1),
    )


@pytest.mark.parametrize("flush", ["batch", "interval", "os"])
def test_sigkills_under_an_idempotent_producer_lose_and_double_nothing(start_broker, flush):
    rng = random.Random(SEED)
    print(f"KILL_LOOP_SEED={SEED}")
    broker = start_broker("--flush", flush, "-l", "warning")
    with AdminClient({"bootstrap.servers": broker.bootstrap, **QUIET}) as admin:
        admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)])[TOPIC].result(TIMEOUT_S)

    with NumberedProducer(broker.bootstrap) as producer:
        kills_in_flight = kill_loop(broker, producer, rng)
        producer.finish()
    assert not producer.errors, producer.errors[:3]
    assert kills_in_flight > KILLS // 2, "the kills should land mid-production"

    result = outcome(flush, broker.bootstrap, producer, kills_in_flight)
    print(result.report())
    assert_whole_batches(broker.bootstrap, TOPIC, PARTITIONS)
    assert not result.lost, (
        f"{result.report()}; (acked at, stored at): {list(result.lost.items())[:5]}"
    )
    assert result.duplicated == 0, result.report()
