"""The examples' pipelines in process, on memory://, against hand-computed values.

Each test runs an example's own app with a Worker, its simulation timers
removed, and feeds it events at chosen event times."""

from __future__ import annotations

import asyncio
import importlib
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from waiting import wait_until_async

from runtime.log.records import decode_batches
from streams.worker import Worker

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # `examples` is a directory of the repository, not installed

surge_pricing = importlib.import_module("examples.surge_pricing")
activity_tracking = importlib.import_module("examples.activity_tracking")
metrics = importlib.import_module("examples.metrics")
log_aggregation = importlib.import_module("examples.log_aggregation")


def run_app(
    monkeypatch: pytest.MonkeyPatch,
    module: Any,
    body: Callable[[Worker], Awaitable[None]],
    keep_timers: Callable[[Callable[..., Any]], bool] = lambda fn: False,
) -> None:
    """Run `module.app` on memory:// with only the timers `keep_timers` picks."""
    app = module.app
    monkeypatch.setattr(app, "broker", "memory://")
    monkeypatch.setattr(app, "timers", [(s, fn) for s, fn in app.timers if keep_timers(fn)])
    monkeypatch.setattr(app, "commit_interval_s", 0.05)

    async def main() -> None:
        async with Worker(app) as worker:
            await body(worker)

    asyncio.run(main())


async def read_topic(worker: Worker, name: str) -> list[bytes]:
    values: list[bytes] = []
    info = await worker.transport.topic(name)
    assert info is not None
    await worker.producer.flush()
    for tp in worker.app.topics[name].tps():
        for record in decode_batches(await worker.transport.fetch(tp, 0, max_wait_s=0)):
            values.append(record.value)
    return values


# --- surge pricing --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("demand", "supply", "expected"),
    [
        (0, 0, 1.0),  # nobody asks: no surge
        (5, 0, 3.0),  # demand and no driver: the maximum
        (1, 2, 1.0),  # below 1 is 1
        (3, 2, 1.5),
        (11, 10, 1.1),
        (23, 20, 1.2),  # 1.15 rounds half up
        (21, 20, 1.1),  # 1.05 rounds half up
        (29, 10, 2.9),
        (31, 10, 3.0),  # clamped
        (100, 1, 3.0),
    ],
)
def test_surge_multiplier(demand, supply, expected):
    assert surge_pricing.multiplier(demand, supply) == expected


def test_surge_pipeline_prices_a_zone_from_two_windows(monkeypatch):
    sp = surge_pricing
    window = sp.WINDOW_S
    t0 = 1_000_000 * window  # a window start

    async def body(worker: Worker) -> None:
        for i in range(2):
            position = sp.DriverPosition(zone="harbor", driver=f"d{i}", at=t0 + 1)
            await sp.driver_positions.send(key=position.driver, value=position, timestamp=t0 + 1)
        await wait_until_async(
            lambda: sp.surge.get("harbor") is not None, timeout_s=10.0, what="a harbor surge"
        )
        for i in range(5):
            ride = sp.RideRequest(zone="harbor", rider=f"r{i}", at=t0 + 2)
            await sp.ride_requests.send(key=ride.rider, value=ride, timestamp=t0 + 2)
        await wait_until_async(
            lambda: sp.surge.get("harbor") == 2.5, timeout_s=10.0, what="harbor surge 2.5"
        )
        # next window: its one request plus the previous window's five, over two drivers
        late = sp.RideRequest(zone="harbor", rider="r9", at=t0 + window + 1)
        await sp.ride_requests.send(key="r9", value=late, timestamp=t0 + window + 1)
        await wait_until_async(
            lambda: sp.surge.get("harbor") == 3.0, timeout_s=10.0, what="harbor surge 3.0"
        )
        prices = [sp.SurgePrice.loads(v) for v in await read_topic(worker, "surge-prices")]
        assert [(p.multiplier, p.demand, p.supply) for p in prices] == [
            (1.0, 0, 1),
            (1.5, 3, 2),
            (2.0, 4, 2),
            (2.5, 5, 2),
            (3.0, 6, 2),
        ]
        lines = sp.report_lines(t0 + window + 2)
        harbor = next(line for line in lines if line.split()[0] == "harbor")
        assert harbor.split() == ["harbor", "6", "2", "3.0x"]

    run_app(monkeypatch, sp, body)


def test_surge_quotes_join_the_zone_fare_and_follow_its_changes(monkeypatch):
    sp = surge_pricing
    t0 = 1_000_000 * sp.WINDOW_S

    async def body(worker: Worker) -> None:
        # harbor has no fare in the table yet: the built-in base fare, 15.0
        ride = sp.RideRequest(zone="harbor", rider="r1", at=t0 + 1)
        await sp.ride_requests.send(key="r1", value=ride, timestamp=t0 + 1)
        await wait_until_async(
            lambda: sp.quoted.get("harbor") == 45.0, timeout_s=10.0, what="harbor at 3.0x 15.0"
        )
        change = sp.ZoneFare(zone="harbor", fare=20.0)
        await sp.zone_fares.send(key="harbor", value=change, timestamp=t0 + 2)
        await wait_until_async(
            lambda: sp.fares.get("harbor") == 20.0, timeout_s=10.0, what="harbor's new fare"
        )
        position = sp.DriverPosition(zone="harbor", driver="d1", at=t0 + 3)
        await sp.driver_positions.send(key="d1", value=position, timestamp=t0 + 3)
        await wait_until_async(
            lambda: sp.quoted.get("harbor") == 20.0, timeout_s=10.0, what="harbor at 1.0x 20.0"
        )
        prices = [sp.SurgePrice.loads(v) for v in await read_topic(worker, "surge-prices")]
        assert [(p.multiplier, p.fare) for p in prices] == [(3.0, 45.0), (1.0, 20.0)]

    run_app(monkeypatch, sp, body)


# --- activity tracking -------------------------------------------------------------------


def test_activity_counts_pages_and_users_over_the_last_window(monkeypatch):
    at = activity_tracking
    t0 = 1_000_000 * at.WINDOW_S  # a window start
    views = [("ann", "/"), ("ann", "/cart"), ("bob", "/"), ("ann", "/"), ("cy", "/help")]

    async def body(worker: Worker) -> None:
        for i, (user, page) in enumerate(views):
            view = at.PageView(user=user, page=page, at=t0 + i)
            await at.page_views.send(key=user, value=view, timestamp=t0 + i)
        await wait_until_async(
            lambda: sum(at.last_window(at.views_per_user, t0 + 5).values()) == 5,
            timeout_s=10.0,
            what="5 views per user",
        )
        await wait_until_async(
            lambda: sum(at.last_window(at.views_per_page, t0 + 5).values()) == 5,
            timeout_s=10.0,
            what="5 views per page",
        )
        now = t0 + 5
        assert at.last_window(at.views_per_page, now) == {"/": 3, "/cart": 1, "/help": 1}
        assert at.last_window(at.views_per_user, now) == {"ann": 3, "bob": 1, "cy": 1}
        # every view is in size/step windows
        per_view = at.WINDOW_S / at.STEP_S
        assert sum(n for _, n in at.views_per_page.items()) == 5 * per_view
        lines = at.report_lines(now)
        assert f"(last {at.WINDOW_S:g}s: 5 views, 3 users)" in lines[0]
        assert lines[1].split(":", 1)[1].split(",")[0].strip() == "/ 3"
        assert lines[2].split(":", 1)[1].split(",")[0].strip() == "ann 3"

    run_app(monkeypatch, at, body)


def test_activity_emits_each_finished_user_session_once(monkeypatch):
    at = activity_tracking
    t0 = 1_000_000 * at.WINDOW_S
    gap = at.SESSION_GAP_S
    monkeypatch.setattr(at, "session_totals", {"sessions": 0, "views": 0})
    # ann: three views a second apart, then one after a long pause: the pause
    # closes her first session (its end + gap + grace is before the last view)
    views = [t0, t0 + 1, t0 + 2, t0 + 2 + 3 * gap]

    async def body(worker: Worker) -> None:
        for i, ts in enumerate(views):
            view = at.PageView(user="ann", page="/", at=ts)
            await at.page_views.send(key="ann", value=view, timestamp=ts)
            if i == 2:
                await wait_until_async(
                    lambda: len(at.views_per_session.sessions("ann")) == 1,
                    timeout_s=10.0,
                    what="ann's first session",
                )
        await wait_until_async(
            lambda: at.session_totals["sessions"] == 1, timeout_s=10.0, what="a finished session"
        )
        finished = [orjson.loads(v) for v in await read_topic(worker, "finished-sessions")]
        assert finished == [{"key": "ann", "start": t0, "end": t0 + 2, "value": 3}]
        assert at.views_per_session.sessions("ann") == [
            (t0, t0 + 2, 3),
            (t0 + 2 + 3 * gap, t0 + 2 + 3 * gap, 1),
        ]
        assert at.report_lines(t0 + 20)[3].split() == [
            "sessions:",
            "1",
            "finished,",
            "3.0",
            "views",
            "each",
        ]

    run_app(monkeypatch, at, body)


# --- metrics -------------------------------------------------------------------------


def test_moving_average():
    ema = None
    for value in (10.0, 20.0, 30.0):
        ema = metrics.moving_average(ema, value, alpha=0.2)
    assert ema == pytest.approx(15.6)  # 10 -> 12 -> 15.6


def test_metrics_rolling_average_and_ema_per_series(monkeypatch):
    m = metrics
    t0 = 1_000_000 * m.WINDOW_S
    sent = [("api", "latency_ms", 10.0), ("api", "latency_ms", 20.0)]
    sent += [("api", "latency_ms", 30.0), ("search", "cpu_pct", 50.0)]

    async def body(worker: Worker) -> None:
        for i, (service, metric, value) in enumerate(sent):
            sample = m.Sample(service=service, metric=metric, value=value, at=t0 + i)
            await m.samples.send(key=m.series(service, metric), value=sample, timestamp=t0 + i)
        await wait_until_async(
            lambda: sum(n for _, (_, n) in m.rolling(t0 + 4).items()) == 4,
            timeout_s=10.0,
            what="4 samples rolled up",
        )
        assert m.rolling(t0 + 4) == {"api/latency_ms": (20.0, 3), "search/cpu_pct": (50.0, 1)}
        assert m.ema.get("api/latency_ms") == pytest.approx(15.6)
        rows = [line.split() for line in m.report_lines(t0 + 4)[2:]]
        assert rows == [
            ["api/latency_ms", "20.0", "15.6", "3"],
            ["search/cpu_pct", "50.0", "50.0", "1"],
        ]

    run_app(monkeypatch, m, body)


# --- log aggregation -------------------------------------------------------------------


def test_log_aggregation_counts_levels_and_forwards_errors(monkeypatch):
    la = log_aggregation

    async def body(worker: Worker) -> None:
        la.service_loggers["auth"].info("login user=%s", "ann")
        la.service_loggers["auth"].error("token expired")
        la.service_loggers["payments"].debug("cache hit")
        la.service_loggers["payments"].error("card declined order=%d", 7)
        la.service_loggers["payments"].error("card declined order=%d", 8)
        await wait_until_async(
            lambda: sum(la.errors_seen.values()) == 3, timeout_s=10.0, what="3 errors"
        )
        await wait_until_async(
            lambda: sum(la.records_per_level.values()) == 5, timeout_s=10.0, what="5 records"
        )
        assert la.records_per_level.as_dict() == {
            "auth/INFO": 1,
            "auth/ERROR": 1,
            "payments/DEBUG": 1,
            "payments/ERROR": 2,
        }
        assert la.last_error.get("payments") == "card declined order=8"
        forwarded = [la.LogEntry.loads(v) for v in await read_topic(worker, "errors")]
        assert sorted(e.message for e in forwarded) == [
            "card declined order=7",
            "card declined order=8",
            "token expired",
        ]
        assert {(e.service, e.logger) for e in forwarded} >= {("auth", "shop.auth")}
        assert "  last error in payments: card declined order=8" in la.report_lines(time.time())

    # keep the handlers' drain timers, drop the simulated traffic
    run_app(monkeypatch, la, body, keep_timers=lambda fn: fn.__name__.startswith("drain_logs"))
