"""The count and window workloads on pathway (its own venv; see
benchmarks.peers.envs).

    <pathway venv>/bin/python benchmarks/peers/pathway_app.py

pathway's engine is Rust: events never pass through Python, so the probe cannot
tick per event, and a per-row Python callback would slow the engine down. So
the timing comes from a one-row running count of the input handed to Python
once per minibatch (autocommit every 50 ms): the run's first event is taken as
the end of the first minibatch, and the rate is the events after it over the
time after it. The results go to a JSON-lines file by pathway's own writer;
once the running count reaches BENCH_EVENTS, the file is read until its last
values per key sum to it, and that is the result checked. No persistence is
configured (nothing is changelogged). Stateless and join are not run: their
per-event output has no per-event time to take here. Settings come from
BENCH_* (benchmarks.peers.runner).
"""

from __future__ import annotations

import json
import os
import threading
import time as clock
from pathlib import Path
from typing import Any

import pathway as pw
from probe import from_env, window_key

WORKLOAD = os.environ.get("BENCH_WORKLOAD", "count")
WINDOW_S = 10
RESULT_WAIT_S = 60.0

probe = from_env()
results_path = Path(os.environ.get("BENCH_STATE_DIR", "pathway-state")) / "results.jsonl"
first_batch = 0


class Event(pw.Schema):
    user: str
    amount: int
    ts: float
    sent_ns: int


def on_progress(key: Any, row: dict[str, Any], time: int, is_addition: bool) -> None:
    global first_batch
    if not is_addition:
        return
    n = row["n"]
    if probe.first_ns == 0:
        probe.first_ns, probe.first_cpu_s = clock.time_ns(), clock.process_time()
        first_batch = n
    if n == probe.target and probe.last_ns == 0:
        probe.last_ns, probe.last_cpu_s = clock.time_ns(), clock.process_time()
        threading.Thread(target=finish, daemon=True).start()


def read_results() -> dict[str, int]:
    latest: dict[str, tuple[int, int]] = {}  # name -> (time, value) of the last addition
    for line in results_path.read_text().splitlines():
        row = json.loads(line)
        name = row["user"] if WORKLOAD == "count" else window_key(row["user"], row["start"])
        if row["diff"] > 0 and row["time"] >= latest.get(name, (-1, 0))[0]:
            latest[name] = (row["time"], row["n"])
    return {name: n for name, (_, n) in latest.items()}


def finish() -> None:
    deadline = clock.monotonic() + RESULT_WAIT_S
    found: dict[str, int] = {}
    while clock.monotonic() < deadline:
        if results_path.exists():
            found = read_results()
            if sum(found.values()) == probe.target:
                break
        clock.sleep(0.05)
    # The events after the first minibatch, over the time after it.
    probe.count = probe.target - first_batch
    probe.done(
        **{"counts" if WORKLOAD == "count" else "windows": found},
        first_batch=first_batch,
        seen=probe.target,
    )


def build() -> None:
    events = pw.io.kafka.read(
        {
            "bootstrap.servers": os.environ.get("BENCH_BOOTSTRAP", "127.0.0.1:9092"),
            "group.id": os.environ.get("BENCH_APP_ID", "peers-pathway"),
            "auto.offset.reset": "earliest",
        },
        os.environ.get("BENCH_INPUT", "events"),
        schema=Event,
        format="json",
        autocommit_duration_ms=50,
    )
    if WORKLOAD == "count":
        result = events.groupby(events.user).reduce(events.user, n=pw.reducers.count())
    else:
        result = events.windowby(
            events.ts, window=pw.temporal.tumbling(duration=WINDOW_S), instance=events.user
        ).reduce(user=pw.this._pw_instance, start=pw.this._pw_window_start, n=pw.reducers.count())
    results_path.parent.mkdir(parents=True, exist_ok=True)
    pw.io.jsonlines.write(result, results_path)
    pw.io.subscribe(events.reduce(n=pw.reducers.count()), on_progress)


if __name__ == "__main__":
    build()
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
