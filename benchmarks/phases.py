"""Timing one phase of a benchmark: wall time and CPU time, and paced sending.

`Phase` measures the wall time of a phase with the CPU seconds the broker and
this (client) process used in it; `paced_send` sends at a fixed rate, starting
the phase after the warm-up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.broker_process import BrokerProcess


@dataclass
class Phase:
    """Wall time, and CPU time of the broker and of this (client) process, of one phase."""

    broker: BrokerProcess
    elapsed_s: float = 0.0
    broker_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    _t0: float = 0.0
    _cpu0: float = 0.0
    _client0: float = 0.0

    def start(self) -> None:
        self._t0, self._cpu0 = time.perf_counter(), self.broker.cpu_s()
        self._client0 = time.process_time()

    def stop(self) -> None:
        self.elapsed_s = time.perf_counter() - self._t0
        self.broker_cpu_s = self.broker.cpu_s() - self._cpu0
        self.client_cpu_s = time.process_time() - self._client0

    @property
    def broker_cpu_share(self) -> float:
        return self.broker_cpu_s / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def client_cpu_share(self) -> float:
        return self.client_cpu_s / self.elapsed_s if self.elapsed_s else 0.0


def paced_send(
    send: Callable[[int], None],
    poll: Callable[[float], int],
    total: int,
    rate: int,
    warmup: int,
    phase: Phase,
) -> tuple[int, float, float]:
    """Send message i at start + i/rate (a late one goes at once, none are skipped).

    Returns (sent, when the first counted message went, when the last went)."""
    interval_s = 1.0 / rate
    start = time.perf_counter()
    measured_start = start
    i = 0
    while i < total:
        now = time.perf_counter()
        due = min(total, int((now - start) / interval_s) + 1)
        while i < due:
            if i == warmup:
                measured_start = time.perf_counter()
                phase.start()
            send(i)
            i += 1
        poll(0)
        wait_s = start + i * interval_s - time.perf_counter()
        if wait_s > 0:
            time.sleep(wait_s)
    return total, measured_start, time.perf_counter()
