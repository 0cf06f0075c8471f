"""Fixtures for the multi-worker tests: `streams broker` processes on free
ports, live event producers, and a starter of tally_app workers. Every process
is reaped at teardown, whatever the test did to it; when a test failed, the
tail of every process's log is printed with the report."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mock_cluster import mock_cluster
from worker_procs import LiveProducer, Process, start_broker, start_worker

__all__ = ["mock_cluster"]  # librdkafka's three-broker mock cluster (tests/support)

LOG_TAIL_LINES = 40


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    report = yield
    if report.failed:
        item.stash[_failed] = True
    return report


_failed = pytest.StashKey[bool]()


def _print_logs(request: pytest.FixtureRequest, processes: list[Process], kind: str) -> None:
    if not request.node.stash.get(_failed, False):
        return
    for process in processes:
        tail = "".join(process.log[-LOG_TAIL_LINES:])
        print(f"--- {kind} {process.pid} exited {process.proc.returncode}:\n{tail}")


@pytest.fixture
def brokers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """start() -> HOST:PORT of a fresh broker; each must still stop cleanly at the end."""
    started: list[Process] = []

    def start() -> str:
        process, bootstrap = start_broker(tmp_path / f"broker{len(started)}")
        started.append(process)
        return bootstrap

    yield start
    alive = [process.alive() for process in started]
    for process in started:
        process.reap(signal.SIGTERM)
    _print_logs(request, started, "broker")
    for process, was_alive in zip(started, alive, strict=True):
        assert was_alive and process.proc.returncode == 0, process.text()
        assert "Traceback" not in process.text(), process.text()


@pytest.fixture
def broker(brokers: Callable[[], str]) -> str:
    return brokers()


@pytest.fixture
def live_producer(brokers: Callable[[], str]) -> Iterator[Callable[[str, int], LiveProducer]]:
    """start(bootstrap, rate_per_s): a started LiveProducer, closed at teardown
    (before the brokers stop)."""
    started: list[LiveProducer] = []

    def start(bootstrap: str, rate_per_s: int) -> LiveProducer:
        producer = LiveProducer(bootstrap, rate_per_s).start()
        started.append(producer)
        return producer

    yield start
    for producer in started:
        producer.close()


@pytest.fixture
def workers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Process]]:
    """start(broker_url, trace=tmp_path/"trace", data=None, **env): a new worker
    with a data directory of its own (or `data`), tracing into `trace` (created
    if missing)."""
    started: list[Process] = []

    def start(
        broker_url: str, trace: Path | None = None, data: Path | None = None, **env: str
    ) -> Process:
        trace = trace or tmp_path / "trace"
        trace.mkdir(parents=True, exist_ok=True)
        data = data or tmp_path / f"worker{len(started)}"
        worker = start_worker(broker_url, data, trace, **env)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.reap(signal.SIGKILL)
    _print_logs(request, started, "worker")
