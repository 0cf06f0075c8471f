"""A keyless record sent to the topic being read stays in the event's partition;
to another topic, keyless records go round robin."""

from __future__ import annotations

import asyncio

import streams
from streams.driver import TestDriver


def test_keyless_sends_follow_the_event_into_its_own_topic(tmp_path):
    app = streams.App("keyless", broker="memory://", data_dir=str(tmp_path))
    loop = app.topic("loop", value_type=int, partitions=4)
    spread = app.topic("spread", value_type=int, partitions=4)

    @app.agent(loop)
    async def again(stream):
        async for value in stream:
            if value < 5:
                loop.send_soon(value=value + 1)
                spread.send_soon(value=value)

    async def main() -> None:
        async with TestDriver(app) as driver:
            await driver.send(loop, 0, partition=2)
            looped = driver.read(loop)
            spread_out = driver.read(spread)
        assert sorted(r.value for r in looped) == [0, 1, 2, 3, 4, 5]
        assert {r.partition for r in looped} == {2}
        assert sorted(r.value for r in spread_out) == [0, 1, 2, 3, 4]
        assert len({r.partition for r in spread_out}) > 1

    asyncio.run(main())
