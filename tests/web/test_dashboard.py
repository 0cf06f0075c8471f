"""The dashboard as a person sees it: the surge pricing example worker, its page
loaded in headless Chromium (Debian's, driven by Playwright), updating itself."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from waiting import wait_until
from web_procs import WorkerProcess

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
TIMEOUT_S = 60.0
TOPICS = ("ride-requests", "driver-positions", "surge-prices")


@pytest.fixture
def surge_worker(tmp_path: Path):
    worker = WorkerProcess("examples.surge_pricing", tmp_path / "data")
    yield worker
    code = worker.stop()
    assert code == 0, worker.text()
    assert "Traceback" not in worker.text(), worker.text()


def number(text: str) -> float:
    cleaned = text.replace(",", "").strip()
    return float(cleaned) if re.fullmatch(r"[\d.]+", cleaned) else -1.0


def above_zero(read: Callable[[], float]) -> Callable[[], float]:
    """`read` for wait_until, which stops at a truthy answer: -1.0 (not a number
    yet, e.g. the page's placeholder) and 0 both read as 0.0, so it waits on."""
    return lambda: max(read(), 0.0)


def test_the_dashboard_shows_topics_throughput_and_tables(surge_worker, tmp_path: Path) -> None:
    # like the Kafka clients, a missing browser fails the test rather than skipping it
    assert os.path.exists(CHROMIUM), f"{CHROMIUM} missing: apt-get install chromium"
    from playwright.sync_api import sync_playwright

    wait_until(
        lambda: surge_worker.get("/ready")[0] == 200,
        timeout_s=TIMEOUT_S,
        what=lambda: f"the worker ready:\n{surge_worker.text()}",
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(surge_worker.url + "/", timeout=TIMEOUT_S * 1000)
            rate = page.locator("#events-in-rate")

            def rate_now() -> float:
                return number(rate.inner_text())

            first = wait_until(above_zero(rate_now), timeout_s=TIMEOUT_S, what="events/s above 0")
            assert first > 0
            wait_until(
                lambda: rate_now() not in (first, -1.0),
                timeout_s=TIMEOUT_S,
                what=f"events/s to change from {first} without a reload",
            )
            topics = page.locator("#topics").inner_text()
            for name in TOPICS:
                assert name in topics

            def demand_keys() -> float:
                row = page.locator("#tables tbody tr", has_text="demand").first
                return number(row.locator("td").nth(3).inner_text()) if row.count() else -1.0

            assert (
                wait_until(above_zero(demand_keys), timeout_s=TIMEOUT_S, what="demand keys > 0") > 0
            )

            def ride_requests_per_s() -> float:
                row = page.locator("#topics tbody tr", has_text="ride-requests").first
                return number(row.locator("td").nth(3).inner_text()) if row.count() else -1.0

            assert (
                wait_until(
                    above_zero(ride_requests_per_s), timeout_s=TIMEOUT_S, what="a topic's rate"
                )
                > 0
            )
            assert page.locator("#throughput-chart path.in").count() == 1
            assert number(page.locator("#lag").inner_text()) >= 0
            assert page.locator("#agents").inner_text().count("count_") == 2
            status, price = surge_worker.get("/surge/airport")  # the example's @app.page
            assert status == 200 and 1.0 <= price["multiplier"] <= 3.0
            shot = Path(os.environ.get("STREAMS_SCREENSHOT_DIR", tmp_path)) / "dashboard.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
        finally:
            browser.close()


def test_the_broker_dashboard_shows_topics_and_records_per_second(start_broker) -> None:
    from confluent_kafka import Producer
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), f"{CHROMIUM} missing: apt-get install chromium"
    broker = start_broker("--partitions", "3")
    producer = Producer({"bootstrap.servers": broker.bootstrap, "log_level": 3})
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(broker.http + "/", timeout=TIMEOUT_S * 1000)
            rate = page.locator("#records-in-rate")

            def produced_per_s() -> float:
                for i in range(20):  # a steady trickle while the page polls
                    producer.produce("clicks", key=str(i).encode(), value=b"{}")
                producer.flush(10)
                return number(rate.inner_text())

            assert (
                wait_until(
                    above_zero(produced_per_s), timeout_s=TIMEOUT_S, what="records in /s > 0"
                )
                > 0
            )
            assert "clicks" in page.locator("#topics").inner_text()
            assert "produce" in page.locator("#requests").inner_text()
        finally:
            browser.close()
            producer.flush(10)
