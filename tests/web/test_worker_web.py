"""A worker's web server, in process on memory:// and log://: /metrics scraped with
prometheus_client's own parser, /health, /ready, table lookups, @app.page views."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from waiting import wait_until_async

import streams
from streams.errors import ConfigurationError
from streams.web import WebAddress
from streams.worker import Worker

TIMEOUT_S = 20.0
FREE_PORT = WebAddress("127.0.0.1", 0)


def make_app(
    broker: str, data_dir: Path, gate: asyncio.Event | None = None
) -> tuple[streams.App, streams.Topic]:
    """Words counted through a group_by; with `gate`, each waits for it first."""
    app = streams.App("webtest", broker=broker, data_dir=str(data_dir), commit_interval_s=0.2)
    words = app.topic("words", partitions=4)
    counts = app.Table("counts", default=int)

    @app.agent(words)
    async def count(stream: streams.Stream) -> None:
        async for word in stream.group_by(lambda w: w, name="word"):
            if gate is not None:
                await gate.wait()
            counts[word] += 1

    @app.page("/count/{word}")
    async def count_page(request: Any, word: str) -> dict[str, Any]:
        return {"word": word, "declared": word in app.tables}

    return app, words


def run(app: streams.App, body: Callable[[Worker, aiohttp.ClientSession], Awaitable[None]]) -> None:
    async def main() -> None:
        async with (
            Worker(app, web=FREE_PORT) as worker,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)) as http,
        ):
            await body(worker, http)

    asyncio.run(main())


async def scrape(http: aiohttp.ClientSession, url: str) -> dict[str, dict[tuple, float]]:
    """Metric samples by name, then by their sorted label pairs."""
    async with http.get(f"{url}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await response.text()
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return samples


def lag(samples: dict[str, dict[tuple, float]]) -> float:
    return total(samples, "streams_consumer_lag")


def total(samples: dict[str, dict[tuple, float]], name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for k, v in samples.get(name, {}).items() if wanted <= set(k))


@pytest.mark.parametrize("broker", ["memory://", "log://"])
def test_counters_move_with_traffic_and_lag_falls_to_zero(broker: str, tmp_path: Path) -> None:
    gate = asyncio.Event()
    app, words = make_app(broker, tmp_path, gate)
    repartition = "webtest-count-word-repartition"

    async def body(worker: Worker, http: aiohttp.ClientSession) -> None:
        url = worker.web.url
        before = await scrape(http, url)
        assert total(before, "streams_events_in_total", topic="words") == 0
        for i in range(200):
            await words.send(key=f"k{i}", value=f"w{i % 7}")
        await worker.producer.flush()

        async def backlog() -> bool:
            await worker.web.metrics.refresh(force=True)
            s = await scrape(http, url)
            return total(s, "streams_consumer_lag", topic=repartition) == 200

        # the agent holds its first event: all 200 wait behind it
        await wait_until_async(backlog, timeout_s=TIMEOUT_S, what="a lag of 200 events")
        gate.set()

        async def settled() -> dict | None:
            await worker.web.metrics.refresh(force=True)
            s = await scrape(http, url)
            seen = [total(s, "streams_events_in_total", topic=t) for t in ("words", repartition)]
            # the lag is as of the refresh, the counters as of the scrape, a moment later
            done = total(s, "streams_processing_seconds_count", agent="count")
            return s if seen == [200, 200] and done == 200 and lag(s) == 0 else None

        after = await wait_until_async(settled, timeout_s=TIMEOUT_S, what="200 events, lag 0")
        assert total(after, "streams_events_out_total", topic=repartition) == 200
        assert total(after, "streams_processing_seconds_bucket", agent="count", le="+Inf") == 200
        assert total(after, "streams_assigned_partitions") == 8  # 2 topics x 4
        assert total(after, "streams_worker_info", app="webtest", broker=worker.transport.url) == 1
        assert total(after, "streams_recovered_partitions", table="counts") == 4
        assert total(after, "streams_agent_state", agent="count", state="idle") == 1

        async def tables_flushed() -> dict | None:
            await worker.web.metrics.refresh(force=True)
            s = await scrape(http, url)
            return s if total(s, "streams_table_keys", table="counts") == 7 else None

        sized = await wait_until_async(tables_flushed, timeout_s=TIMEOUT_S, what="7 table keys")
        assert total(sized, "streams_table_bytes", table="counts") > 0
        assert total(sized, "streams_commits_total") >= 1  # the table was flushed by one
        assert total(sized, "streams_commit_seconds_count") == total(sized, "streams_commits_total")

        # more traffic: the counters move on, the lag comes back to 0
        for i in range(50):
            await words.send(key=f"k{i}", value="w0")
        await worker.producer.flush()

        async def moved() -> bool:
            await worker.web.metrics.refresh(force=True)
            s = await scrape(http, url)
            return total(s, "streams_events_in_total", topic="words") == 250 and lag(s) == 0

        await wait_until_async(moved, timeout_s=TIMEOUT_S, what="250 events, lag 0 again")

    run(app, body)


def test_health_ready_lookups_and_pages(tmp_path: Path) -> None:
    app, words = make_app("memory://", tmp_path)

    async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
        async with http.get(url) as response:
            return response.status, await response.json()

    async def body(worker: Worker, http: aiohttp.ClientSession) -> None:
        url = worker.web.url
        assert await get(http, f"{url}/health") == (200, {"status": "ok"})
        assert await get(http, f"{url}/ready") == (200, {"status": "ready"})
        for i in range(30):
            await words.send(key=f"k{i}", value="apple" if i % 3 else "pear")
        await words.send(key="k", value="stone/fruit")

        async def counted() -> Any:
            status, answer = await get(http, f"{url}/tables/counts/apple")
            return answer if status == 200 and answer["value"] == 20 else None

        apple = await wait_until_async(counted, timeout_s=TIMEOUT_S, what="apple counted 20")
        assert apple["table"] == "counts" and apple["worker"] == url
        assert apple["partition"] == app.tables["counts"].partition_for("apple")
        status, pear = await get(http, f"{url}/tables/counts/pear")
        assert (status, pear["value"]) == (200, 10)

        async def slashed() -> bool:  # a key with a '/' in it
            status, answer = await get(http, f"{url}/tables/counts/stone/fruit")
            return status == 200 and answer["value"] == 1

        await wait_until_async(slashed, timeout_s=TIMEOUT_S, what="stone/fruit counted")
        status, missing = await get(http, f"{url}/tables/counts/plum")
        assert status == 404 and missing["error"] == "not_found"
        status, unknown = await get(http, f"{url}/tables/nope/apple")
        assert status == 404 and unknown["error"] == "unknown_table"
        status, bad = await get(http, f"{url}/tables/counts/apple?key_format=yaml")
        assert status == 400 and "key_format" in bad["message"]
        status, some = await get(http, f"{url}/tables/counts?limit=2")
        assert status == 200 and len(some["items"]) == 2 and some["truncated"] is True
        status, every = await get(http, f"{url}/tables/counts")
        assert {i["key"]: i["value"] for i in every["items"]} == {
            "apple": 20,
            "pear": 10,
            "stone/fruit": 1,
        }
        assert (await get(http, f"{url}/tables/counts?limit=0"))[0] == 400
        status, listing = await get(http, f"{url}/tables")
        assert status == 200 and listing["tables"][0]["partitions_here"] == [0, 1, 2, 3]
        assert await get(http, f"{url}/count/apple") == (
            200,
            {"word": "apple", "declared": False},
        )

    run(app, body)


def test_a_port_in_use_is_a_clear_error_unless_a_fallback_is_allowed(tmp_path: Path) -> None:
    app, _ = make_app("memory://", tmp_path)
    other, _ = make_app("memory://", tmp_path / "other")

    async def main() -> None:
        async with Worker(app, web=FREE_PORT) as first:
            taken = WebAddress("127.0.0.1", first.web.port)
            with pytest.raises(ConfigurationError, match=r"cannot serve the web interface on"):
                async with Worker(other, web=taken):
                    pass
            fallback = WebAddress("127.0.0.1", first.web.port, fallback=True)
            async with Worker(other, web=fallback) as second:
                assert second.web.port not in (0, first.web.port)

    asyncio.run(main())


def test_a_windowed_lookup_gives_every_window_and_the_current_one(tmp_path: Path) -> None:
    app = streams.App("winweb", broker="memory://", data_dir=str(tmp_path))
    clicks = app.topic("clicks", key_type=str, value_type=str, partitions=2)
    per_minute = app.Table("per-minute", key_type=str, default=int).tumbling(60, expires=3600)

    @app.agent(clicks)
    async def count(stream: streams.Stream) -> None:
        async for page in stream:
            per_minute[page] += 1

    async def body(worker: Worker, http: aiohttp.ClientSession) -> None:
        for _ in range(5):
            await clicks.send(key="home", value="home")

        async def counted() -> Any:
            async with http.get(f"{worker.web.url}/tables/per-minute/home") as response:
                answer = await response.json()
            return answer if response.status == 200 and answer["current"] == 5 else None

        answer = await wait_until_async(counted, timeout_s=TIMEOUT_S, what="5 clicks this minute")
        (window,) = answer["windows"]
        assert window["value"] == 5 and window["end"] - window["start"] == 60
        async with http.get(f"{worker.web.url}/tables/per-minute/away") as response:
            assert response.status == 200
            assert await response.json() == {
                "table": "per-minute",
                "key": "away",
                "partition": app.tables["per-minute"].partition_for("away"),
                "windows": [],
                "current": 0,  # the table's default
                "worker": worker.web.url,
            }

    run(app, body)


class Position(streams.Record):
    zone: str
    speed: float


def test_record_values_are_served_as_json(tmp_path: Path) -> None:
    app = streams.App("records", broker="memory://", data_dir=str(tmp_path))
    positions = app.topic("positions", key_type=str, value_type=Position, partitions=2)
    last = app.Table("last-position", key_type=str, value_type=Position)

    @app.agent(positions)
    async def remember(stream: streams.Stream) -> None:
        async for driver, position in stream.items():
            last[driver] = position

    async def body(worker: Worker, http: aiohttp.ClientSession) -> None:
        await positions.send(key="d7", value=Position(zone="harbor", speed=31.5))

        async def found() -> Any:
            async with http.get(f"{worker.web.url}/tables/last-position/d7") as response:
                return (await response.json()) if response.status == 200 else None

        answer = await wait_until_async(found, timeout_s=TIMEOUT_S, what="d7's position")
        assert answer["value"] == {"zone": "harbor", "speed": 31.5}

    run(app, body)


def test_readiness_says_what_it_waits_for() -> None:
    from types import SimpleNamespace

    from runtime.types import TopicPartition
    from streams.web.server import readiness

    worker = SimpleNamespace(
        failure=None,
        running=True,
        group_mode=True,
        assignments=2,
        revocations=2,  # revoked, the next assignment not placed yet
        placement=SimpleNamespace(recovering={TopicPartition("t-changelog", 3): (5, 10)}),
    )
    assert readiness(worker) == [  # type: ignore[arg-type]
        "a partition assignment from the group (joining or rebalancing)",
        "table recovery of t-changelog[3]",
    ]
    worker.assignments, worker.placement.recovering = 3, {}
    assert readiness(worker) == []  # type: ignore[arg-type]


def test_a_failing_page_is_a_json_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    app = streams.App("pages", broker="memory://", data_dir=str(tmp_path))
    totals = app.Table("totals", key_type=str, partitions=4)

    @app.page("/total/{key}")
    async def total_page(request: Any, key: str) -> dict[str, Any]:
        return {"total": totals[key]}  # KeyError: no such key (and no default)

    @app.page("/boom")
    def boom(request: Any) -> str:
        raise RuntimeError("a bug in a view")

    async def body(worker: Worker, http: aiohttp.ClientSession) -> None:
        async with http.get(f"{worker.web.url}/total/nope") as response:
            assert response.status == 404
            assert (await response.json())["error"] == "not_here"
        async with http.get(f"{worker.web.url}/boom") as response:
            assert response.status == 500
            assert (await response.json())["error"] == "internal_error"

    with caplog.at_level("ERROR", logger="streams.web.server"):
        run(app, body)
    assert "web request failed path=/boom" in caplog.text


def test_two_workers_in_one_process_have_their_own_metrics(tmp_path: Path) -> None:
    first, first_words = make_app("memory://", tmp_path / "a")
    second = streams.App("other", broker="memory://", data_dir=str(tmp_path / "b"))
    second_words = second.topic("words", partitions=2)

    @second.agent(second_words)
    async def drop(stream: streams.Stream) -> None:
        async for _ in stream:
            pass

    async def main() -> None:
        async with (
            Worker(first, web=FREE_PORT) as a,
            Worker(second, web=FREE_PORT) as b,
            aiohttp.ClientSession() as http,
        ):
            for i in range(5):
                await first_words.send(key=str(i), value="x")
            for i in range(3):
                await second_words.send(key=str(i), value="y")

            async def counted() -> bool:
                ours, theirs = await scrape(http, a.web.url), await scrape(http, b.web.url)
                return (
                    total(ours, "streams_events_in_total", topic="words") == 5
                    and total(theirs, "streams_events_in_total", topic="words") == 3
                )

            await wait_until_async(counted, timeout_s=TIMEOUT_S, what="5 and 3 events apart")
            theirs = await scrape(http, b.web.url)
            assert total(theirs, "streams_worker_info", app="other") == 1
            assert total(theirs, "streams_worker_info", app="webtest") == 0

    asyncio.run(main())


def test_a_non_loopback_address_is_refused_unless_allowed(tmp_path: Path) -> None:
    app, _ = make_app("memory://", tmp_path)

    async def main() -> None:
        with pytest.raises(ConfigurationError, match="has no authentication"):
            async with Worker(app, web=WebAddress("0.0.0.0", 0)):
                pass
        allowed = WebAddress("0.0.0.0", 0, allow_insecure=True)
        async with Worker(app, web=allowed) as worker, aiohttp.ClientSession() as http:
            response = await http.get(f"http://127.0.0.1:{worker.web.port}/health")
            assert response.status == 200
            response.release()

    asyncio.run(main())


def test_a_recovery_under_way_shows_in_metrics_and_ready(tmp_path: Path) -> None:
    from runtime.types import TopicPartition

    app, _ = make_app("memory://", tmp_path)

    async def body(worker: Worker, http: aiohttp.ClientSession) -> None:
        changelog = TopicPartition("webtest-counts-changelog", 2)
        # as the placement records it between recover_store's progress reports
        worker.placement.recovering[changelog] = (1500, 4000)
        s = await scrape(http, worker.web.url)
        assert total(s, "streams_recovery_records_done", table="counts", partition="2") == 1500
        assert total(s, "streams_recovery_records_total", table="counts", partition="2") == 4000
        assert total(s, "streams_recovered_partitions", table="counts") == 3
        async with http.get(f"{worker.web.url}/ready") as response:
            assert response.status == 503
            assert (await response.json())["waiting_for"] == [
                "table recovery of webtest-counts-changelog[2]"
            ]
        async with http.get(f"{worker.web.url}/api/dashboard") as response:
            recovery = (await response.json())["recovery"]
        assert recovery["in_progress"] == [
            {"topic": "webtest-counts-changelog", "partition": 2, "done": 1500, "total": 4000}
        ]
        del worker.placement.recovering[changelog]

    run(app, body)


@pytest.mark.parametrize("path", ["/", "/metrics", "/tables/{name}", "/api/mine", "no-slash"])
def test_a_page_may_not_take_the_servers_own_paths(path: str) -> None:
    app = streams.App("paths", broker="memory://")
    with pytest.raises(ConfigurationError, match="page"):
        app.page(path)
