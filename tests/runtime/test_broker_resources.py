"""The broker's limits as classes: the request byte budget, connection counts,
rate-limited logging, fitting the limits to the file descriptors; and the
budget inside a running broker (in this process, to read its counters)."""

from __future__ import annotations

import asyncio
import errno
import logging
import random

import pytest
from log_helpers import make_batch

from runtime.broker.budget import ByteBudget
from runtime.broker.connection_limits import ConnectionLimits
from runtime.broker.limits import MIB, BrokerLimits
from runtime.broker.server import Address, Broker
from runtime.logs import RateLimitedLog
from runtime.protocol import ApiKey, decode_response, encode_request
from runtime.protocol.codes import ErrorCode

TIMEOUT_S = 10.0


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


# --- ByteBudget ---------------------------------------------------------------------


def test_budget_grants_what_fits_and_counts_it() -> None:
    async def run() -> None:
        budget = ByteBudget(10)
        await budget.acquire(4)
        await budget.acquire(6)
        assert (budget.in_use, budget.peak_in_use, budget.waiting) == (10, 10, 0)
        budget.release(6)
        budget.release(4)
        assert (budget.in_use, budget.peak_in_use) == (0, 10)

    asyncio.run(run())


def test_budget_is_first_come_first_served_so_a_large_request_is_not_starved() -> None:
    async def run() -> None:
        budget = ByteBudget(10)
        granted: list[str] = []

        async def take(name: str, n: int) -> None:
            await budget.acquire(n)
            granted.append(name)

        await budget.acquire(6)  # held by an earlier request
        large = asyncio.create_task(take("large", 10))
        await _settle()
        smalls = [asyncio.create_task(take(f"small{i}", 1)) for i in range(4)]
        await _settle()
        # 4 bytes are free and each small one would fit, but the large one is first
        assert granted == [] and budget.waiting == 5
        budget.release(6)
        await _settle()
        assert granted == ["large"]
        budget.release(10)
        await asyncio.gather(large, *smalls)
        assert granted == ["large", "small0", "small1", "small2", "small3"]

    asyncio.run(run())


def test_budget_cancelled_waiter_takes_nothing_and_lets_the_next_one_in() -> None:
    async def run() -> None:
        budget = ByteBudget(10)
        await budget.acquire(8)
        blocked = asyncio.create_task(budget.acquire(5))
        behind = asyncio.create_task(budget.acquire(2))
        await _settle()
        assert budget.waiting == 2
        blocked.cancel()
        await asyncio.gather(blocked, return_exceptions=True)
        await asyncio.wait_for(behind, TIMEOUT_S)  # 2 fit beside the 8 once 5 is gone
        assert (budget.in_use, budget.waiting) == (10, 0)

    asyncio.run(run())


def test_budget_reservation_cancelled_after_it_was_granted_gives_its_bytes_back() -> None:
    async def run() -> None:
        budget = ByteBudget(10)
        await budget.acquire(10)
        waiter = asyncio.create_task(budget.acquire(10))
        await _settle()
        budget.release(10)  # granted: the waiter has not run yet
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        assert budget.in_use == 0

    asyncio.run(run())


def test_budget_refuses_a_reservation_larger_than_itself() -> None:
    async def run() -> None:
        with pytest.raises(ValueError, match="cannot reserve"):
            await ByteBudget(10).acquire(11)

    asyncio.run(run())


def test_budget_never_exceeded_by_many_concurrent_holders() -> None:
    async def run() -> None:
        rng = random.Random(7)
        budget = ByteBudget(100)
        over: list[int] = []

        async def request(n: int, hold: int) -> None:
            async with budget.reserve(n):
                for _ in range(hold):
                    if budget.in_use > budget.capacity:
                        over.append(budget.in_use)
                    await asyncio.sleep(0)

        tasks = [request(rng.randint(1, 100), rng.randint(0, 5)) for _ in range(300)]
        await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT_S)
        assert over == []
        assert budget.in_use == 0 and budget.peak_in_use <= 100

    asyncio.run(run())


# --- ConnectionLimits and rate-limited logging -----------------------------------------


def test_connection_limits_per_address_and_in_total(caplog) -> None:
    log = RateLimitedLog(logging.getLogger("test.limits"), 60.0, clock=ManualClock())
    limits = ConnectionLimits(total_max=3, per_host_max=2, log=log)
    assert limits.admit("10.0.0.1") and limits.admit("10.0.0.1")
    assert not limits.admit("10.0.0.1")  # its third
    assert limits.admit("10.0.0.2")
    assert not limits.admit("10.0.0.3")  # the fourth in total
    limits.release("10.0.0.1")
    assert limits.admit("10.0.0.3")
    assert (limits.total, limits.refused, dict(limits.by_host)) == (
        3,
        2,
        {"10.0.0.1": 1, "10.0.0.2": 1, "10.0.0.3": 1},
    )
    with pytest.raises(ValueError):
        limits.release("10.0.0.9")


def test_repeated_warning_logged_once_per_interval_with_its_count(caplog) -> None:
    clock = ManualClock()
    log = RateLimitedLog(logging.getLogger("test.ratelog"), 10.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="test.ratelog"):
        for _ in range(1000):
            log.warning("refused", "refused a connection from %s", "h")
        log.warning("other", "another thing")
        assert [r.getMessage() for r in caplog.records] == [
            "refused a connection from h",
            "another thing",
        ]
        clock.now += 10
        log.warning("refused", "refused a connection from %s", "h")
        assert caplog.records[-1].getMessage() == ("refused a connection from h repeated=999")
        log.warning("refused", "refused a connection from %s", "h")
        clock.now += 10
        log.flush(due_only=True)  # the count goes out though the repeats stopped
        assert caplog.records[-1].getMessage().endswith("repeated=1")
        assert len(caplog.records) == 4
        log.flush()
        assert len(caplog.records) == 4  # nothing held back any more


# --- fitting the limits to the file descriptors -----------------------------------------


def test_limits_fit_to_few_open_files_leave_descriptors_to_spare() -> None:
    fitted, lowered = BrokerLimits().fit_to_open_files(1024)
    assert fitted.connections_max <= (1024 - 128) // 2
    assert fitted.connections_max + 2 * fitted.partitions_max <= 1024 - 128
    assert fitted.topics_max <= fitted.partitions_max
    assert any(item.startswith("connections_max=4096->") for item in lowered)
    assert BrokerLimits().fit_to_open_files(1 << 20) == (BrokerLimits(), [])


def test_limits_refuse_a_budget_below_the_largest_request() -> None:
    with pytest.raises(ValueError, match="queued_max_request_bytes"):
        BrokerLimits(request_bytes_max=10 * MIB, queued_max_request_bytes=5 * MIB)
    with pytest.raises(ValueError, match="connections_max"):
        BrokerLimits(connections_max=0)


# --- the budget in a running broker ---------------------------------------------------


async def _produce(address: Address, value: bytes) -> dict:
    body = {
        "transactional_id": None,
        "acks": -1,
        "timeout_ms": 5000,
        "topics": [
            {"name": "big", "partitions": [{"partition_index": 0, "records": make_batch([value])}]}
        ],
    }
    reader, writer = await asyncio.open_connection(address.host, address.port)
    try:
        writer.write(encode_request(ApiKey.PRODUCE, 7, 1, "test", body))
        await writer.drain()
        size = int.from_bytes(await reader.readexactly(4), "big")
        _, answer = decode_response(ApiKey.PRODUCE, 7, await reader.readexactly(size))
        return answer["responses"][0]["partitions"][0]
    finally:
        writer.close()
        await writer.wait_closed()


def test_concurrent_large_requests_wait_for_the_budget_and_all_complete(tmp_path) -> None:
    limits = BrokerLimits(request_bytes_max=2 * MIB, queued_max_request_bytes=3 * MIB)

    async def run() -> None:
        async with Broker(tmp_path, listen=Address("127.0.0.1", 0), limits=limits) as broker:
            assert broker.address is not None
            await broker.transport.create_topic("big", 1, {"max.message.bytes": str(2 * MIB)})
            waited: list[int] = []

            async def watch() -> None:
                while True:
                    waited.append(broker.budget.waiting)
                    await asyncio.sleep(0)

            watcher = asyncio.create_task(watch())
            values = [bytes([i]) * (3 * MIB // 2) for i in range(6)]
            answers = await asyncio.wait_for(
                asyncio.gather(*(_produce(broker.address, v) for v in values)), TIMEOUT_S
            )
            watcher.cancel()
            assert [a["error_code"] for a in answers] == [ErrorCode.NONE] * 6
            assert sorted(a["base_offset"] for a in answers) == list(range(6))
            # one 1.5 MiB request fits a 3 MiB budget beside another, never three
            assert 3 * MIB // 2 <= broker.budget.peak_in_use <= 3 * MIB
            assert max(waited) >= 1  # some of them did wait for the budget
            assert broker.budget.in_use == 0

    asyncio.run(run())


def test_loop_reports_of_accept_out_of_resources_are_logged_once_per_interval(caplog) -> None:
    # asyncio's own listeners (the REST proxy's) report accept failures to the
    # loop's exception handler, one call per failed attempt
    async def run() -> None:
        async with Broker(None, listen=Address("127.0.0.1", 0)):
            loop = asyncio.get_running_loop()
            error = OSError(errno.EMFILE, "Too many open files")
            for _ in range(500):
                loop.call_exception_handler(
                    {
                        "message": "socket.accept() out of system resource",
                        "exception": error,
                        "socket": object(),
                    }
                )

    with caplog.at_level(logging.INFO):
        asyncio.run(run())
    lines = [r for r in caplog.records if "accepting connections failed" in r.getMessage()]
    assert [r.getMessage() for r in lines] == [
        "REST proxy: accepting connections failed: Too many open files",
        "REST proxy: accepting connections failed: Too many open files repeated=499",
        # flushed at stop
    ]
    assert not any(r.exc_info for r in lines)  # no traceback
