"""Bad input gets a clear error naming what was wrong."""

from __future__ import annotations

import asyncio

import pytest

import streams
from runtime.errors import DataDirLockedError, InvalidTopicError, RecordTooLargeError
from streams.worker import Worker


@pytest.mark.parametrize("name", ["", "has space", "semi;colon", "../escape", "a" * 250, "."])
def test_bad_topic_name_is_rejected_naming_it(name):
    app = streams.App("bad", broker="memory://")
    with pytest.raises(InvalidTopicError) as info:
        app.topic(name)
    message = str(info.value)
    assert "topic" in message.lower()
    if 0 < len(name) < 50:
        assert name in message


def test_record_larger_than_topic_maximum_is_refused_and_nothing_else_lost():
    app = streams.App("big", broker="memory://")
    small = app.topic(
        "small", value_serializer="raw", partitions=1, config={"max.message.bytes": "2000"}
    )

    async def main():
        async with app:
            with pytest.raises(RecordTooLargeError) as info:
                small.send_soon(value=b"x" * 5000)
            assert "small" in str(info.value) and "2000" in str(info.value)
            meta = await small.send_soon(value=b"y" * 100)
            assert meta.offset == 0  # the next record is stored normally

    asyncio.run(main())


def test_second_worker_on_locked_data_dir_names_holder(tmp_path):
    app = streams.App("locked", data_dir=str(tmp_path))

    async def main():
        async with Worker(app):
            other = streams.App("locked", data_dir=str(tmp_path))
            with pytest.raises(DataDirLockedError) as info:
                async with Worker(other):
                    pass
            import os

            assert str(os.getpid()) in str(info.value)

    asyncio.run(main())


def test_bad_app_settings_are_rejected():
    with pytest.raises(streams.ConfigurationError):
        streams.App("x", on_decode_error="ignore")
    with pytest.raises(streams.ConfigurationError):
        streams.App("x").timer(0)(lambda: None)
    with pytest.raises(streams.ConfigurationError):
        streams.App("x").crontab("not a cron")(lambda: None)
    # the id names the dead-letter topic (and changelogs): a topic name's rules
    with pytest.raises(streams.ConfigurationError, match="app id 'my app' names its topics"):
        streams.App("my app")


def test_unknown_broker_scheme_is_a_clear_error():
    app = streams.App("x", broker="carrier-pigeon://home")
    with pytest.raises(ValueError, match="carrier-pigeon"):
        Worker(app)
