"""TopicHandler: log records shipped into a topic, never blocking, never recursing."""

from __future__ import annotations

import asyncio
import logging
import threading

import orjson
import pytest
from transport_reading import read_partition

import streams
from streams.worker import Worker


def make_app() -> streams.App:
    return streams.App("logs", broker="memory://", commit_interval_s=0.05)


def make_logger(name: str, handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger


async def read_all(worker: Worker, topic: streams.Topic) -> list[tuple[bytes, dict]]:
    await worker.producer.flush()
    out = []
    for tp in topic.tps():
        for r in await read_partition(worker.transport, tp):
            out.append((r.key, orjson.loads(r.value)))
    return out


def test_records_are_shipped_into_the_topic_keyed_by_service():
    app = make_app()
    logs = app.topic("app-logs", partitions=2)
    handler = streams.TopicHandler(logs, service="checkout")
    logger = make_logger("test.handler.ship", handler)

    async def main():
        async with Worker(app) as worker:
            logger.info("order %s placed", 42)
            logger.warning("slow", extra={"service": "billing"})
            try:
                raise ValueError("bad card")
            except ValueError:
                logger.exception("payment failed")
            assert handler.buffered == 3
            assert handler.drain() == 3
            got = await read_all(worker, logs)
        by_message = {value["message"].splitlines()[0]: (key, value) for key, value in got}
        key, value = by_message["order 42 placed"]
        assert key == b'"checkout"'
        assert value["level"] == "INFO" and value["logger"] == "test.handler.ship"
        assert set(value) == {"service", "level", "logger", "message", "at"}
        assert by_message["slow"][1]["service"] == "billing"
        assert "ValueError: bad card" in by_message["payment failed"][1]["message"]

    asyncio.run(main())
    assert (handler.shipped, handler.buffered, handler.dropped) == (3, 0, 0)


def test_attach_drains_from_a_worker_timer():
    app = make_app()
    logs = app.topic("timer-logs", partitions=1)
    handler = streams.TopicHandler(logs, service="svc").attach(app, interval_s=0.01)
    logger = make_logger("test.handler.timer", handler)
    logger.info("before the worker started")  # buffered until a worker drains it

    async def main():
        async with Worker(app) as worker:
            logger.info("while running")
            for _ in range(500):
                if handler.shipped == 2:
                    break
                await asyncio.sleep(0.01)
            got = await read_all(worker, logs)
        assert [value["message"] for _, value in got] == [
            "before the worker started",
            "while running",
        ]

    asyncio.run(main())


def test_full_buffer_drops_new_records_and_counts_them():
    app = make_app()
    handler = streams.TopicHandler(app.topic("small"), service="s", buffer_records_max=3)
    logger = make_logger("test.handler.full", handler)
    for i in range(10):
        logger.info("record %d", i)
    assert (handler.buffered, handler.dropped) == (3, 7)
    assert [e["message"] for e in handler._buffer] == ["record 0", "record 1", "record 2"]


def test_records_logged_while_draining_are_not_shipped():
    """Whatever sending logs (say, the producer) cannot feed the handler back."""
    app = make_app()
    logs = app.topic("loop-logs", partitions=1)
    handler = streams.TopicHandler(logs, service="s")
    logger = make_logger("test.handler.loop", handler)
    send_soon = logs.send_soon

    def chatty_send(*args, **kwargs):
        logger.warning("sending a record")  # would recurse/loop without the guard
        return send_soon(*args, **kwargs)

    async def main():
        async with Worker(app) as worker:
            logs.send_soon = chatty_send
            logger.info("one")
            logger.info("two")
            assert handler.drain() == 2
            assert handler.buffered == 0
            assert handler.drain() == 0
            got = await read_all(worker, logs)
        assert [value["message"] for _, value in got] == ["one", "two"]

    asyncio.run(main())


def test_framework_loggers_are_excluded_and_emit_works_from_threads():
    app = make_app()
    handler = streams.TopicHandler(app.topic("root-logs"), service="s")
    root_like = make_logger("test.handler.threads", handler)
    framework = make_logger("streams.worker.fake", handler)
    framework.warning("from the framework")
    threads = [
        threading.Thread(target=lambda: [root_like.info("t") for _ in range(100)]) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert handler.buffered == 400


def test_invalid_limits_are_refused():
    app = make_app()
    with pytest.raises(ValueError):
        streams.TopicHandler(app.topic("x"), service="s", buffer_records_max=0)
    with pytest.raises(ValueError):
        streams.TopicHandler(app.topic("y"), service="s", message_chars_max=0)


def test_long_messages_are_cut():
    app = make_app()
    handler = streams.TopicHandler(app.topic("long"), service="s", message_chars_max=10)
    make_logger("test.handler.long", handler).info("x" * 100)
    assert handler._buffer[0]["message"] == "x" * 10
