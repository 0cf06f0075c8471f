"""The workloads on bytewax (its own venv; see benchmarks.peers.envs).

    <bytewax venv>/bin/python benchmarks/peers/bytewax_app.py

One worker (bytewax.testing.run_main). State lives in the dataflow with no
recovery store configured, so nothing is changelogged. The throughput runs read
the input to its end offsets (KafkaSource tail=False) and the dataflow then
completes; the latency runs follow it (tail=True). The window is count_window
on event time (EventClock with 30 s of waiting, as partitions interleave).
bytewax's joins join streams, not a stream with a table, so it runs stateless,
count, window. Settings come from BENCH_* (benchmarks.peers.runner).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import bytewax.operators as op
import orjson
from bytewax.connectors.kafka import KafkaSink, KafkaSinkMessage, KafkaSource
from bytewax.dataflow import Dataflow
from bytewax.operators.windowing import EventClock, TumblingWindower, count_window
from bytewax.testing import run_main
from probe import from_env, window_key

WORKLOAD = os.environ.get("BENCH_WORKLOAD", "count")
BOOTSTRAP = os.environ.get("BENCH_BOOTSTRAP", "127.0.0.1:9092")
WINDOW = timedelta(seconds=10)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

probe = from_env()
seen: dict[str, int] = {}


def parse(msg: Any) -> dict[str, Any]:
    value = orjson.loads(msg.value)
    probe.tick()
    return value


def build() -> Dataflow:
    flow = Dataflow("peers")
    source = KafkaSource(
        [BOOTSTRAP], [os.environ.get("BENCH_INPUT", "events")], tail=probe.target == 0
    )
    values = op.map("parse", op.input("in", flow, source), parse)
    if WORKLOAD == "stateless":
        kept = op.filter("even", values, lambda v: v["amount"] % 2 == 0)
        out = op.map(
            "encode", kept, lambda v: KafkaSinkMessage(v["user"].encode(), orjson.dumps(v))
        )
        op.output("out", out, KafkaSink([BOOTSTRAP], os.environ.get("BENCH_OUTPUT", "output")))
    elif WORKLOAD == "count":
        keyed = op.key_on("key", values, lambda v: v["user"])

        def add(state: int | None, _value: Any) -> tuple[int, int]:
            n = (state or 0) + 1
            return n, n

        counted = op.stateful_map("count", keyed, add)
        op.inspect("note", counted, lambda _step, kv: seen.__setitem__(kv[0], kv[1]))
    elif WORKLOAD == "window":
        clock = EventClock(
            ts_getter=lambda v: datetime.fromtimestamp(v["ts"], tz=UTC),
            wait_for_system_duration=timedelta(seconds=30),
        )
        windower = TumblingWindower(length=WINDOW, align_to=EPOCH)
        counted = count_window("window", values, clock, windower, key=lambda v: v["user"])

        def note(_step: str, item: tuple[str, tuple[int, int]]) -> None:
            key, (window_id, n) = item
            seen[window_key(key, window_id * WINDOW.total_seconds())] = n

        op.inspect("note", counted.down, note)
    return flow


if __name__ == "__main__":
    run_main(build())
    if WORKLOAD == "stateless":
        probe.done()
    else:
        probe.done(**{"counts" if WORKLOAD == "count" else "windows": seen})
