"""What every benchmarked app records, with the standard library only (it runs in
each peer's own virtual environment, imported beside the app's script).

An app calls `probe.tick()` once per input event. The probe notes the wall time
and the process's CPU time (all its threads) at the first event and at the
`BENCH_EVENTS`-th; `done()` then writes them, with whatever result the app
hands over (counts per key, window counts), as JSON to `BENCH_RESULT`, which
the harness waits for. With BENCH_EVENTS=0 (the latency runs) it never fires.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any


class Probe:
    def __init__(self, target: int, result_path: str) -> None:
        self.target = target
        self.result_path = result_path
        self.count = 0
        self.first_ns = 0
        self.first_cpu_s = 0.0
        self.last_ns = 0
        self.last_cpu_s = 0.0

    def tick(self) -> bool:
        """Count one event; True exactly once, at the last one."""
        self.count += 1
        if self.count == 1:
            self.first_ns, self.first_cpu_s = time.time_ns(), time.process_time()
        if self.count == self.target:
            self.last_ns, self.last_cpu_s = time.time_ns(), time.process_time()
            return True
        return False

    def done(self, **result: Any) -> None:
        """Write the timings and `result` (written to a temporary name first, so
        the harness never reads half a file)."""
        payload = {
            "events": self.count,
            "first_ns": self.first_ns,
            "last_ns": self.last_ns,
            "cpu_s": self.last_cpu_s - self.first_cpu_s,
            **result,
        }
        partial = f"{self.result_path}.partial"
        with open(partial, "w") as f:
            json.dump(payload, f)
        os.replace(partial, self.result_path)


def from_env() -> Probe:
    return Probe(int(os.environ.get("BENCH_EVENTS", "0")), os.environ.get("BENCH_RESULT", ""))


def window_key(key: str, start_s: float) -> str:
    """How every app names a window in its result: `key|start` (whole seconds)."""
    return f"{key}|{round(start_s)}"
