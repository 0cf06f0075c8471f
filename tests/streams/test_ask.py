"""agent.ask(): request/reply through the app's reply topic, on every transport."""

from __future__ import annotations

import asyncio

import pytest

import streams
from streams.ask import CORRELATION_ID, REPLY_TO, reply_topic_name
from streams.topic_plan import MissingTopicsError
from streams.worker import Worker


def _doubler(app: streams.App) -> streams.Agent:
    questions = app.topic("questions", value_type=int, partitions=2)

    @app.agent(questions)
    async def double(stream):
        async for n in stream:
            if n >= 0:  # a negative one gets no reply
                yield n * 2

    return double


def test_concurrent_asks_get_their_own_replies_and_no_reply_times_out(make_app):
    app = make_app("ask")
    double = _doubler(app)

    async def main() -> None:
        async with Worker(app):
            values = list(range(12))
            asks = [double.ask(v, key=v, timeout=20) for v in values]
            assert await asyncio.gather(*asks) == [v * 2 for v in values]
            with pytest.raises(TimeoutError):
                await double.ask(-1, timeout=0.3)
            assert await double.ask(5, timeout=20) == 10  # a late reply does not confuse
            assert app.wiring.replies is not None and not app.wiring.replies.pending

    asyncio.run(main())


@pytest.mark.parametrize("broker_url", ["memory", "kafka"], indirect=True)
def test_replies_sent_in_transactions_come_once_committed(make_app):
    app = make_app("askeos", processing_guarantee="exactly_once")
    double = _doubler(app)

    async def main() -> None:
        async with Worker(app):
            for v in range(3):  # one after the other: each past the last's commit marker
                assert await double.ask(v, key=v, timeout=20) == v * 2

    asyncio.run(main())


@pytest.mark.parametrize("broker_url", ["memory", "kafka"], indirect=True)
def test_an_agent_error_comes_back_as_an_exception(make_app):
    app = make_app("askerr")
    questions = app.topic("questions", value_type=int, partitions=1)

    @app.agent(questions)
    async def invert(stream):
        async for n in stream:
            if n == 0:
                raise ZeroDivisionError("no inverse of zero")
            yield 1 / n

    async def main() -> None:
        async with Worker(app) as worker:
            assert await invert.ask(4, timeout=20) == 0.25
            with pytest.raises(streams.AskError, match="ZeroDivisionError: no inverse") as info:
                await invert.ask(0, timeout=20)
            assert (info.value.agent, info.value.error_type) == ("invert", "ZeroDivisionError")
            with pytest.raises(streams.AgentError):  # the worker stops, as on any agent error
                await asyncio.wait_for(worker.run_until(asyncio.Event()), 20)

    asyncio.run(main())


@pytest.mark.parametrize("broker_url", ["kafka"], indirect=True)
def test_a_client_outside_the_worker_asks_through_the_app(make_app, tmp_path):
    """`async with app:` (no agents run) asks the agent a worker runs."""
    worker_app, client_app = (
        make_app("askcli"),
        make_app("askcli", data_dir=str(tmp_path / "client")),
    )
    _doubler(worker_app)
    double = _doubler(client_app)

    async def main() -> None:
        async with Worker(worker_app), client_app:
            assert await double.ask(21, timeout=20) == 42
        topics = await _topic_names(client_app)
        assert reply_topic_name("askcli") in topics

    asyncio.run(main())


async def _topic_names(app: streams.App) -> set[str]:
    async with app:
        return set(await app.wiring.require_transport().topics())


def test_ask_outside_a_running_app_is_a_clear_error(tmp_path):
    app = streams.App("idle", broker="memory://", data_dir=str(tmp_path))
    double = _doubler(app)
    with pytest.raises(RuntimeError, match="not running"):
        asyncio.run(double.ask(1, timeout=1))


@pytest.mark.parametrize("broker_url", ["memory"], indirect=True)
def test_a_request_naming_another_reply_topic_is_not_answered(make_app):
    """A stray reply-to header must not make the worker write to (or create) a
    topic it does not know, nor stop it."""
    app = make_app("askstray")
    double = _doubler(app)

    async def main() -> None:
        async with Worker(app) as worker:
            stray = ((REPLY_TO, b"not-the-replies"), (CORRELATION_ID, b"c1"))
            await double.source.send_and_wait(value=1, headers=stray)
            assert await double.ask(2, timeout=20) == 4  # the worker goes on answering
            assert worker.failure is None
            assert "not-the-replies" not in await worker.transport.topics()

    asyncio.run(main())


def test_ask_where_the_reply_topic_may_not_be_created_names_it(mock_cluster, tmp_path):
    """A cluster without CreateTopics: the reply topic is listed with the
    command that creates it, as the worker lists its own topics."""
    mock_cluster.create_topic("askops-dead-letters", 1)
    mock_cluster.create_topic("questions", 2)
    app = streams.App("askops", broker=mock_cluster.url, data_dir=str(tmp_path))
    double = _doubler(app)

    async def main() -> MissingTopicsError:
        async with Worker(app):
            with pytest.raises(MissingTopicsError) as caught:
                await double.ask(1, timeout=5)
        return caught.value

    error = asyncio.run(main())
    assert [s.name for s in error.missing] == ["askops-replies"]
    assert "create askops-replies --partitions 1" in str(error)
