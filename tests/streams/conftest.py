"""One fixture runs the framework's tests on every transport: memory://,
log:// (the embedded log on disk), kafka:// (our client against a real
Kafka-protocol broker, the built-in one, served from a thread) and kafka://
against librdkafka's three-broker mock cluster ("cluster"), a Kafka
implementation that is not ours, with partition leaders on every broker.

The mock cluster has no CreateTopics: there the test plays the operator who
creates the app's topics, through the mock's own API, when the app asks."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator

import pytest
from mock_cluster import MockCluster, mock_cluster
from worker_process import worker_process  # noqa: F401 (a fixture for the tests here)

import streams
from runtime.broker.server import Address, Broker
from runtime.client.errors import KafkaError
from runtime.kafka_transport import KafkaTransport
from runtime.protocol.codes import ErrorCode

TRANSPORTS = ["memory", "log", "kafka", "cluster"]
__all__ = ["mock_cluster"]  # the fixture, for tests of the mock cluster itself


class BrokerThread:
    """A broker with its own event loop in a thread, for tests that run
    their own loops with asyncio.run()."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._run, name="test-broker", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # surfaced by start()
            self._error = exc
            self._ready.set()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with Broker(None, listen=Address("127.0.0.1", 0)) as broker:
            assert broker.address is not None
            self.port = broker.address.port
            self._ready.set()
            await self._stop.wait()

    def start(self) -> str:
        self._thread.start()
        if not self._ready.wait(timeout=20) or self._error is not None:
            raise RuntimeError(f"test broker did not start: {self._error!r}")
        return f"kafka://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=20)


def _operator_creates_topics(monkeypatch: pytest.MonkeyPatch, mock: MockCluster) -> None:
    """Topic creation through the mock's API, leaders spread over its brokers."""

    created: set[str] = set()
    lock = threading.Lock()  # instances of an agent may ask at once, as on Kafka

    def create_now(topics: dict, ignore_existing: bool) -> None:
        with lock:
            for name, (partitions, _configs) in topics.items():
                if name in created:
                    if ignore_existing:
                        continue
                    raise KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, topic=name)
                mock.create_topic(name, partitions)
                mock.spread_leaders(name, partitions)
                created.add(name)

    async def create(self, topics, *, ignore_existing: bool = False) -> None:
        await asyncio.to_thread(create_now, dict(topics), ignore_existing)
        await self.cluster.refresh(list(topics))

    monkeypatch.setattr(KafkaTransport, "_create_topics", create)


@pytest.fixture(params=TRANSPORTS)
def broker_url(request: pytest.FixtureRequest, tmp_path, monkeypatch) -> Iterator[str]:
    if request.param == "memory":
        yield "memory://"
    elif request.param == "log":
        yield f"log://{tmp_path / 'log'}"
    elif request.param == "cluster":
        with MockCluster(3) as mock:
            _operator_creates_topics(monkeypatch, mock)
            yield mock.url
    else:
        broker = BrokerThread()
        try:
            yield broker.start()
        finally:
            broker.stop()


@pytest.fixture
def make_app(
    request: pytest.FixtureRequest, broker_url: str, tmp_path
) -> Callable[..., streams.App]:
    """streams.App on the transport under test, committing often."""
    on_mock = getattr(request.node, "callspec", None) and (
        request.node.callspec.params.get("broker_url") == "cluster"
    )

    def factory(app_id: str = "test", **kwargs) -> streams.App:
        kwargs.setdefault("broker", broker_url)
        kwargs.setdefault("data_dir", str(tmp_path / "data"))
        kwargs.setdefault("commit_interval_s", 0.05)
        if on_mock:  # after a member leaves, the mock waits a session timeout to rebalance
            kwargs.setdefault("session_timeout_s", 2.0)
        return streams.App(app_id, **kwargs)

    return factory
