"""Table lookups of windowed tables that keep more than windows in their stores
(the stream time of a table with grace; a sliding table's buffered records): the
lookup answers the windows only, with the current aggregate; /metrics counts
their late drops."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from waiting import wait_until_async

import streams
from streams.web import WebAddress
from streams.worker import Worker

TIMEOUT_S = 20.0


def test_lookups_of_tables_with_grace_and_of_sliding_tables(tmp_path):
    app = streams.App("winlook", broker="memory://", data_dir=str(tmp_path))
    clicks = app.topic("clicks", key_type=str, value_type=str, partitions=2)
    minutes = app.Table("minutes", key_type=str, default=int).tumbling(60, grace=30)
    recent = app.Table("recent", key_type=str, default=int).sliding(3600)
    visits = app.Table("visits", key_type=str, default=int).session(3600)
    now = time.time()

    @app.agent(clicks)
    async def count(stream: streams.Stream) -> None:
        async for page in stream:
            minutes[page] += 1
            recent[page] += 1
            visits[page] += 1

    async def main() -> None:
        async with (
            Worker(app, web=WebAddress("127.0.0.1", 0)) as worker,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)) as http,
        ):
            for i in range(3):
                await clicks.send(key="home", value="home", timestamp=now - 2 + i)

            async def lookup(table: str) -> Any:
                async with http.get(f"{worker.web.url}/tables/{table}/home") as response:
                    answer = await response.json()
                if response.status != 200:
                    raise AssertionError(answer)
                return answer if answer["windows"] else None

            async def counted() -> Any:
                answer = await lookup("recent")
                return answer if answer and answer["current"] == 3 else None

            sliding = await wait_until_async(counted, timeout_s=TIMEOUT_S, what="3 clicks")
            # oldest first: a window ending at each click, then those starting
            # just after the first and the second
            assert [w["value"] for w in sliding["windows"]] == [1, 2, 3, 2, 1]
            assert all(w["end"] - w["start"] == 3600 for w in sliding["windows"])
            tumbling = await lookup("minutes")
            assert sum(w["value"] for w in tumbling["windows"]) == 3
            session = await lookup("visits")
            assert [(w["end"] - w["start"], w["value"]) for w in session["windows"]] == [(2.0, 3)]
            # a click for a minute closed long ago: dropped by the tumbling table only
            await clicks.send(key="home", value="home", timestamp=now - 600)

            async def late() -> Any:
                async with http.get(f"{worker.web.url}/metrics") as response:
                    text = await response.text()
                found = {
                    (s.name, s.labels["table"]): s.value
                    for family in text_string_to_metric_families(text)
                    for s in family.samples
                    if s.name.startswith("streams_window_")
                }
                dropped = found.get(("streams_window_late_dropped_total", "minutes"))
                return found if dropped == 1 else None

            found = await wait_until_async(late, timeout_s=TIMEOUT_S, what="a late drop counted")
            assert found[("streams_window_late_dropped_total", "recent")] == 0
            assert found[("streams_window_late_dropped_total", "visits")] == 0
            assert found[("streams_window_finals_emitted_total", "minutes")] == 0

    asyncio.run(main())
