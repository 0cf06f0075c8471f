"""Table lookups over HTTP, answered by the worker that owns the key's partition.

    GET /tables                              the app's tables, their partitions here
    GET /tables/{table}?limit=N              up to N (100) keys and values held here
    GET /tables/{table}/{key}                {"value": ...} (404: no such key)
    GET /tables/{table}/{key}?key_format=json   the key as JSON ([1, 2], 7, "a")

A windowed table answers every window of the key it holds, oldest first, and
the value of the window holding now (`current`).

Like Kafka Streams' interactive queries (and Faust's table_route): with
several workers on kafka://, each partition's owner is known from the group's
assignment (the workers put their web URLs in their subscriptions; the leader
hands every member the partition -> URL map). A lookup of a key another worker
owns is forwarded there once; the answer says which worker it came from.
A partition with no known owner (a rebalance under way) is a 503: retry.
"""

from __future__ import annotations

import itertools
import time
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
from aiohttp import web

from streams.table import _DELETED, Table, _hashable
from streams.web.responses import error_response, json_response

if TYPE_CHECKING:
    from streams.worker import Worker

FORWARDED_HEADER = "X-Streams-Forwarded"
FORWARD_TIMEOUT_S = 10.0
ITEMS_DEFAULT, ITEMS_MAX = 100, 10_000


class TableRoutes:
    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def add_to(self, app: web.Application) -> None:
        app.router.add_get("/tables", self.list_tables)
        app.router.add_get("/tables/{table}", self.items)
        app.router.add_get("/tables/{table}/{key:.+}", self.lookup)  # keys may hold '/'

    async def list_tables(self, request: web.Request) -> web.Response:
        tables = [
            {
                "name": t.name,
                "windowed": t.windowed is not None,
                "partitions": t.partition_count,
                "partitions_here": sorted(t.partitions),
                "changelog": t.changelog.name,
            }
            for t in sorted(self.worker.app.tables.values(), key=lambda t: t.name)
        ]
        return json_response({"tables": tables})

    async def items(self, request: web.Request) -> web.Response:
        """A look at what this worker holds of a table (not the other workers' part)."""
        name = request.match_info["table"]
        table = self.worker.app.tables.get(name)
        if table is None:
            return error_response(404, "unknown_table", f"no table {name!r} in this app")
        raw = request.query.get("limit", str(ITEMS_DEFAULT))
        if not raw.isdigit() or not 1 <= int(raw) <= ITEMS_MAX:
            return error_response(400, "bad_limit", f"limit must be 1..{ITEMS_MAX}, not {raw!r}")
        limit = int(raw)
        found = list(itertools.islice(table.items(), limit + 1))
        return json_response(
            {
                "table": name,
                "partitions_here": sorted(table.partitions),
                "items": [{"key": k, "value": v} for k, v in found[:limit]],
                "truncated": len(found) > limit,
                "worker": self._url(),
            }
        )

    async def lookup(self, request: web.Request) -> web.Response:
        name = request.match_info["table"]
        table = self.worker.app.tables.get(name)
        if table is None:
            return error_response(404, "unknown_table", f"no table {name!r} in this app")
        try:
            key = parse_key(table, request.match_info["key"], request.query.get("key_format"))
        except ValueError as exc:
            return error_response(400, "bad_key", str(exc))
        partition = table.partition_for(key)
        part = table.partitions.get(partition)
        if part is None:
            return await self._forward(request, table, partition)
        here = self._url()
        if table.windowed is not None:
            return json_response(_windows(table, key, partition, here))
        value = part.get(key)
        if value is _DELETED:
            # A table written outside a group_by holds keys in their events'
            # partitions: whatever else is here may have it.
            value = next(
                (v for p in table.partitions.values() if (v := p.get(key)) is not _DELETED),
                _DELETED,
            )
        if value is _DELETED:
            return error_response(
                404, "not_found", f"table {name!r} has no key {key!r}", partition=partition
            )
        return json_response(
            {"table": name, "key": key, "partition": partition, "value": value, "worker": here}
        )

    async def _forward(self, request: web.Request, table: Table, partition: int) -> web.Response:
        owner = self.worker.partition_hosts.get(partition)
        if request.headers.get(FORWARDED_HEADER) or owner is None or owner == self._url():
            return error_response(
                503,
                "owner_unknown",
                f"partition {partition} of table {table.name!r} is not served here and its "
                "owner is not known (a rebalance under way?): retry",
                partition=partition,
            )
        timeout = aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(
                    owner + str(request.rel_url), headers={FORWARDED_HEADER: self._url()}
                ) as response,
            ):
                body = await response.read()
                return web.Response(
                    status=response.status,
                    body=body,
                    content_type=response.content_type,
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            return error_response(
                502,
                "owner_unreachable",
                f"the owner of partition {partition} ({owner}) did not answer: {exc}",
                partition=partition,
            )

    def _url(self) -> str:
        web_server = self.worker.web
        return web_server.url if web_server is not None else ""


def parse_key(table: Table, text: str, key_format: str | None) -> Any:
    """The table key a URL names: JSON when asked, else by the table's key type."""
    if key_format == "json":
        try:
            return _hashable(orjson.loads(text))
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"key {text!r} is not JSON: {exc}") from None
    if key_format not in (None, "str"):
        raise ValueError(f"key_format must be str or json, not {key_format!r}")
    if table.key_type in (int, float):
        try:
            return table.key_type(text)
        except ValueError:
            raise ValueError(
                f"table {table.name!r} has {table.key_type.__name__} keys, not {text!r}"
            ) from None
    return text


def _windows(table: Table, key: Any, partition: int, here: str) -> dict[str, Any]:
    windowed = table.windowed
    assert windowed is not None
    part = table.partitions[partition]
    hidden = table.hidden_key  # the stream time, a sliding table's buffered records
    rows = []
    for wkey, value in part.items():
        if (hidden is not None and hidden(wkey)) or wkey[0] != key or value is _DELETED:
            continue
        # (key, start) of time windows, (key, start, end) of sessions
        end = wkey[2] if len(wkey) == 3 else wkey[1] + windowed.window.size_s
        rows.append((wkey[1], end, value))
    rows.sort(key=lambda row: row[:2])
    now = time.time()
    current: Any = None
    if hasattr(windowed.window, "current"):  # tumbling, hopping
        now_start = windowed.window.current(now).start
        current = next((v for start, _, v in rows if start == now_start), None)
    elif hasattr(windowed, "aggregate_at"):  # sliding: the last `size` up to now
        current = windowed.aggregate_at(key, now)
    if current is None and table.default is not None:
        current = table.default()
    return {
        "table": table.name,
        "key": key,
        "partition": partition,
        "windows": [{"start": s, "end": e, "value": v} for s, e, v in rows],
        "current": current,
        "worker": here,
    }
