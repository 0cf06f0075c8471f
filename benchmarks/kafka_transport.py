"""The kafka:// transport against `streams broker`: appends, fetch loops, broker CPU.

    python -m benchmarks.kafka_transport [--partitions P] [--batches B] [--records R]
                                         [--stream-s S] [--json FILE|-]

What the framework does on kafka://, without the framework: one fetch loop per
partition calling `KafkaTransport.fetch(tp, position)` (as a worker's conductor
does) and appends of encoded record batches (as its producer does).

1. Produce: P concurrent append loops, B batches of R records (100 bytes each)
   per partition, one batch in flight per partition. Records/s and broker CPU.
2. Consume: P fetch loops read everything back (fetch_max_wait 0.5 s, as a
   worker). Records/s and broker CPU; the records are counted, so a lost or
   repeated batch fails the run.
3. Stream: for S seconds a batch of 10 records arrives on each partition every
   20 ms (500 records/s per partition) while the P fetch loops follow. Broker
   CPU share and Fetch requests per second: what a worker following a live
   stream costs the broker (the appends cost the same in either design).

The broker is its own process (`python -m streams broker`, --flush os), started
and stopped here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from benchmarks.broker_process import create_topic, running_broker
from benchmarks.phases import Phase
from runtime.client.connection import Connection
from runtime.kafka_transport import KafkaTransport
from runtime.log.records import encode_batch, iter_batches
from runtime.protocol.codes import ApiKey
from runtime.types import TopicPartition

TOPIC = "transport-bench"
VALUE = b"x" * 100
FETCH_WAIT_S = 0.5


async def _append_loop(transport: KafkaTransport, tp: TopicPartition, batches: int, n: int):
    records = [(None, VALUE, int(time.time() * 1000), ()) for _ in range(n)]
    batch = bytes(encode_batch(records))
    for _ in range(batches):
        await transport.append(tp, batch)


async def _fetch_loop(
    transport: KafkaTransport, tp: TopicPartition, until: int | None, stop: asyncio.Event
) -> int:
    """Read from 0 until offset `until` (None: until `stop`); the records read."""
    position = 0
    count = 0
    while (until is None or position < until) and not stop.is_set():
        data = await transport.fetch(tp, position, max_wait_s=FETCH_WAIT_S)
        for _, header in iter_batches(data):
            if header.next_offset > position:
                count += header.next_offset - max(position, header.base_offset)
                position = header.next_offset
    return count


class _FetchCounter:
    """Counts Fetch requests sent by any connection of this process (the count
    the broker serves, whichever design of the transport is measured)."""

    def __init__(self) -> None:
        self.count = 0
        original = Connection.request
        counter = self

        async def request(conn: Connection, api_key: int, body: Any, **kwargs: Any) -> dict:
            if api_key == ApiKey.FETCH:
                counter.count += 1
            return await original(conn, api_key, body, **kwargs)

        Connection.request = request  # type: ignore[method-assign]


async def _phases(url: str, broker, args: argparse.Namespace) -> dict[str, Any]:
    tps = [TopicPartition(TOPIC, p) for p in range(args.partitions)]
    total = args.batches * args.records
    out: dict[str, Any] = {}
    counter = _FetchCounter()
    async with KafkaTransport(url) as transport:
        phase = Phase(broker)
        phase.start()
        await asyncio.gather(
            *(_append_loop(transport, tp, args.batches, args.records) for tp in tps)
        )
        phase.stop()
        out["produce"] = _figures(phase, total * len(tps))

        stop = asyncio.Event()
        phase = Phase(broker)
        phase.start()
        counts = await asyncio.gather(*(_fetch_loop(transport, tp, total, stop) for tp in tps))
        phase.stop()
        if counts != [total] * len(tps):
            raise RuntimeError(f"read {counts} records per partition, expected {total} each")
        out["consume"] = _figures(phase, total * len(tps))

        small = bytes(encode_batch([(None, VALUE, 0, ())] * 10))
        loops = [asyncio.create_task(_fetch_loop(transport, tp, None, stop)) for tp in tps]
        await asyncio.sleep(1.0)  # the loops reach the end of their partitions
        requests0 = counter.count
        phase = Phase(broker)
        phase.start()
        deadline = time.monotonic() + args.stream_s
        while time.monotonic() < deadline:
            await asyncio.gather(*(transport.append(tp, small) for tp in tps))
            await asyncio.sleep(0.02)
        phase.stop()
        stop.set()
        await asyncio.gather(*loops)
        requests = counter.count - requests0
        out["stream"] = {
            "seconds": round(phase.elapsed_s, 2),
            "broker_cpu_share": round(phase.broker_cpu_share, 3),
            "client_cpu_share": round(phase.client_cpu_share, 3),
            "fetch_requests_per_s": round(requests / phase.elapsed_s, 1),
        }
    return out


def _figures(phase: Phase, records: int) -> dict[str, Any]:
    return {
        "records": records,
        "seconds": round(phase.elapsed_s, 3),
        "records_per_s": round(records / phase.elapsed_s),
        "broker_cpu_share": round(phase.broker_cpu_share, 3),
        "broker_cpu_s_per_million": round(phase.broker_cpu_s / records * 1e6, 2),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    with running_broker("os") as broker:
        create_topic(broker.bootstrap, TOPIC, args.partitions)
        result = asyncio.run(_phases(f"kafka://{broker.bootstrap}", broker, args))
    result["partitions"] = args.partitions
    return result


def report(r: dict[str, Any]) -> str:
    lines = [f"kafka:// transport, {r['partitions']} partitions, against `streams broker`"]
    for name in ("produce", "consume"):
        f = r[name]
        lines.append(
            f"  {name:8} {f['records_per_s']:>10,} records/s"
            f"   broker CPU {f['broker_cpu_share']:.0%}"
            f"  ({f['broker_cpu_s_per_million']:.1f} CPU-s per million records)"
        )
    live = r["stream"]
    lines.append(
        f"  stream   broker CPU {live['broker_cpu_share']:.0%}, this process"
        f" {live['client_cpu_share']:.0%}, {live['fetch_requests_per_s']} Fetch requests/s:"
        f" {r['partitions']} fetch loops following 500 records/s per partition"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--batches", type=int, default=400, help="batches per partition")
    parser.add_argument("--records", type=int, default=100, help="records per batch")
    parser.add_argument("--stream-s", type=float, default=8.0)
    parser.add_argument("--json", metavar="FILE", help="write results as JSON ('-': stdout)")
    args = parser.parse_args(argv)
    result = run(args)
    print(report(result))
    if args.json:
        text = json.dumps(result, indent=2)
        if args.json == "-":
            sys.stdout.write(text + "\n")
        else:
            with open(args.json, "w") as f:
                f.write(text + "\n")


if __name__ == "__main__":
    main()
