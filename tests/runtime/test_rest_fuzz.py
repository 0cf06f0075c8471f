"""The REST proxy under arbitrary JSON: never a 500, never a lost record.

Bodies for POST /topics/T range from any bytes through any JSON to almost-valid
record lists; GET .../records gets any query string. Every answer is either a
success that is then checked against a ledger of what was acknowledged, or a
4xx whose JSON says what was wrong, after which the topic holds exactly what it
held before (a client that retries a refused request must not double anything).
At the end every acknowledged record is read back, in place.

In process, over aiohttp's test server, on memory://; the proxy is the one
`streams broker --http` serves.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any, TypeVar

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from yarl import URL

from runtime.broker.rest import RestProxy
from runtime.transport import EmbeddedTransport
from runtime.types import TopicPartition

pytestmark = pytest.mark.slow  # the fault-injection suite; bounded, runs in CI

T = TypeVar("T")
REQUEST_TIMEOUT_S = 10.0
TOPICS = {"t": 3, "small": 2}  # name -> partitions
SMALL_MAX_MESSAGE_BYTES = 600  # some posts fit, some do not, some fit in one partition only
_settings = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

_scalar = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
_json = st.recursive(
    _scalar,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_key = st.none() | st.text(max_size=12) | _json
_value = st.text(max_size=40) | st.text(min_size=200, max_size=400) | _json
_partition = st.none() | st.integers(-1, 3) | _json
_headers = st.none() | st.dictionaries(st.text(max_size=8), st.none() | st.text(max_size=8)) | _json
_record = st.fixed_dictionaries(  # mostly well-formed; partition and headers may not be
    {"value": _value},
    optional={"key": _key, "partition": _partition, "headers": _headers},
)
_any_record = st.fixed_dictionaries(
    {}, optional={"key": _key, "value": _value, "partition": _json, "headers": _json}
)
_sized_record = st.fixed_dictionaries(  # around the small topic's limit, per partition
    {"value": st.integers(0, 700).map("v".__mul__), "partition": st.integers(0, 1)}
)
_body = (
    st.binary(max_size=60)
    | _json.map(orjson.dumps)
    | st.dictionaries(st.sampled_from(["records", "other"]), _json).map(orjson.dumps)
    | st.lists(_any_record | _json, max_size=6).map(lambda rs: orjson.dumps({"records": rs}))
    | st.lists(_record, min_size=1, max_size=6).map(lambda rs: orjson.dumps({"records": rs}))
    | st.lists(_sized_record, min_size=1, max_size=4).map(lambda rs: orjson.dumps({"records": rs}))
)
_query_value = st.text(max_size=12) | st.integers(-1, 40).map(str) | st.integers().map(str)


class Rest:
    """The proxy on an in-process server, driven from sync hypothesis examples,
    and the ledger of every record it acknowledged."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.transport = EmbeddedTransport("memory://", None)
        self.client: TestClient | None = None
        # (topic, partition) -> [(key, value, headers) as a reader sees them], by offset
        self.ledger: dict[tuple[str, int], list[tuple[Any, Any, Any]]] = {
            (topic, p): [] for topic, n in TOPICS.items() for p in range(n)
        }

    def __enter__(self) -> Rest:
        self.run(self._start())
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            if self.client is not None:
                self.run(self.client.close())
            self.run(self.transport.stop())
        finally:
            self.loop.close()

    async def _start(self) -> None:
        await self.transport.start()
        for topic, partitions in TOPICS.items():
            configs = (
                {"max.message.bytes": str(SMALL_MAX_MESSAGE_BYTES)} if topic == "small" else {}
            )
            await self.transport.create_topic(topic, partitions, configs)
        self.client = TestClient(TestServer(RestProxy(self.transport).app()))
        await self.client.start_server()

    def run(self, coro: Awaitable[T]) -> T:
        async def bounded() -> T:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                return await coro

        return self.loop.run_until_complete(bounded())

    def request(self, method: str, url: URL | str, body: bytes | None = None) -> tuple[int, Any]:
        async def call() -> tuple[int, Any]:
            assert self.client is not None
            async with self.client.request(method, url, data=body) as response:
                assert response.content_type == "application/json", response.content_type
                return response.status, orjson.loads(await response.read())

        return self.run(call())

    def ends(self, topic: str) -> list[int]:
        return [self.run(self.transport.offsets(tp))[1] for tp in _tps(topic)]


def _tps(topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in range(TOPICS[topic])]


def _assert_refused(status: int, answer: Any) -> None:
    assert 400 <= status < 500, (status, answer)
    assert isinstance(answer, dict) and answer.keys() >= {"error", "message"}, answer
    assert isinstance(answer["message"], str) and answer["message"], answer


def _as_read(key: Any, value: Any, headers: Any) -> tuple[Any, Any, Any]:
    """What a reader of the proxy gets back for a record posted like this (the
    module docstring's rules: string keys as UTF-8, the rest as JSON; read back
    as JSON when it parses, else as text)."""
    if isinstance(key, str):
        with contextlib.suppress(orjson.JSONDecodeError):
            key = orjson.loads(key.encode())
    shown_headers = None
    if headers:
        shown_headers = dict(headers)
    return key, value, shown_headers


def _shown(item: dict[str, Any]) -> tuple[Any, Any, Any]:
    return item.get("key"), item.get("value"), item.get("headers")


def _post(rest: Rest, topic: str, body: bytes) -> None:
    before = rest.ends(topic)
    status, answer = rest.request("POST", f"/topics/{topic}", body)
    assert status != 500, answer
    if status != 200:
        event(f"POST refused {status}")
        _assert_refused(status, answer)
        assert rest.ends(topic) == before, f"a refused POST wrote records: {answer}"
        return
    event("POST accepted")
    records = orjson.loads(body)["records"]
    offsets = answer["offsets"]
    assert len(offsets) == len(records), answer
    for record, where in zip(records, offsets, strict=True):
        p, offset = where["partition"], where["offset"]
        if record.get("partition") is not None:
            assert p == record["partition"]
        ledger = rest.ledger[(topic, p)]
        assert offset == len(ledger), f"offset {offset} after {len(ledger)} records"
        ledger.append(_as_read(record.get("key"), record["value"], record.get("headers")))
    assert rest.ends(topic) == [len(rest.ledger[(topic, p)]) for p in range(TOPICS[topic])]


def _check_partition(rest: Rest, topic: str, p: int, start: int = 0) -> None:
    """Everything acknowledged in (topic, p) from `start` is there, in place."""
    ledger = rest.ledger[(topic, p)]
    offset = start
    while offset < len(ledger):
        url = URL(f"/topics/{topic}/partitions/{p}/records").with_query(offset=offset)
        status, items = rest.request("GET", url)
        assert status == 200 and items, (status, items)
        for item in items:
            assert item["offset"] == offset
            assert _shown(item) == ledger[offset], (topic, p, offset)
            offset += 1


def test_posts_and_reads_of_arbitrary_json():
    with Rest() as rest:

        @_settings
        @given(st.sampled_from(sorted(TOPICS)), _body)
        def post(topic: str, body: bytes) -> None:
            _post(rest, topic, body)

        @_settings
        @given(
            st.sampled_from(sorted(TOPICS)),
            st.text(max_size=6) | st.integers(-2, 4).map(str),
            st.dictionaries(
                st.sampled_from(["offset", "max_bytes", "timeout_ms", "x"]), _query_value
            ),
        )
        def read(topic: str, partition: str, query: dict[str, str]) -> None:
            if _parses_to_wait(query.get("timeout_ms")):
                query["timeout_ms"] = "0"  # a long poll at the end would only slow the run
            url = URL.build(path=f"/topics/{topic}/partitions/{partition}/records", query=query)
            status, answer = rest.request("GET", url)
            assert status != 500, answer
            if status != 200:
                event(f"GET refused {status}")
                _assert_refused(status, answer)
                return
            event("GET answered")
            p, offset = int(partition), int(query.get("offset", "0"))
            for item in answer:
                assert item["offset"] >= offset
                assert _shown(item) == rest.ledger[(topic, p)][item["offset"]]

        post()
        read()
        for topic, partitions in TOPICS.items():
            for p in range(partitions):
                _check_partition(rest, topic, p)
        assert sum(map(len, rest.ledger.values())) > 0, "no POST was ever accepted"


def test_a_refused_post_writes_nothing_in_any_partition():
    too_big_for_one = {
        "records": [{"value": "x", "partition": 0}, {"value": "y" * 700, "partition": 1}]
    }
    with Rest() as rest:
        status, answer = rest.request("POST", "/topics/small", orjson.dumps(too_big_for_one))
        assert status == 413 and answer["error"] == "record_too_large", answer
        assert "nothing was written" in answer["message"]
        assert rest.ends("small") == [0, 0]


def test_a_boolean_partition_is_refused():
    with Rest() as rest:
        body = {"records": [{"value": 1, "partition": True}]}
        status, answer = rest.request("POST", "/topics/t", orjson.dumps(body))
        assert (status, answer["error"]) == (400, "bad_request"), answer
        assert "partition must be an integer" in answer["message"]
        assert rest.ends("t") == [0, 0, 0]


def test_header_values_other_than_strings_are_refused():
    with Rest() as rest:
        for value in (True, 1.5, {"a": 1}, [1]):
            body = {"records": [{"value": 1, "headers": {"h": value}}]}
            status, answer = rest.request("POST", "/topics/t", orjson.dumps(body))
            assert (status, answer["error"]) == (400, "bad_request"), (value, answer)
        body = {"records": [{"value": 1, "partition": 0, "headers": {"h": "v", "n": None}}]}
        assert rest.request("POST", "/topics/t", orjson.dumps(body))[0] == 200
        _, items = rest.request("GET", "/topics/t/partitions/0/records?offset=0")
        assert items[0]["headers"] == {"h": "v", "n": None}


def _parses_to_wait(raw: str | None) -> bool:
    try:
        return raw is not None and int(raw) > 0
    except ValueError:
        return False
