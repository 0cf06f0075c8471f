"""Metrics: rolling averages of the samples services report.

Run it from the repository root:

    streams -A examples.metrics worker          # until Ctrl-C
    python -m examples.metrics --seconds 60     # for one minute

A timer plays a few services reporting samples (latency, CPU, queue depth)
to the `metrics` topic, keyed by series ("service/metric"); now and then a
service has a bad spell and its latency climbs. One agent keeps, per series,
a hopping window of sums and counts (30 seconds long, every 5 seconds) and an
exponential moving average. Every couple of seconds the worker prints each
series: its rolling average over the last window, its moving average, and
how many samples the window holds.

The log and the tables live under ./streams-data ($STREAMS_DATA moves them).
Time scales, in seconds, from the environment: METRICS_WINDOW_S (30),
METRICS_STEP_S (5), METRICS_TICK_S (0.2, the services), METRICS_REPORT_S (2),
METRICS_INCIDENT_S (20, how often a bad spell starts somewhere).
"""

from __future__ import annotations

import random
import time

import streams
from examples._common import data_dir, env_seconds, main

WINDOW_S = env_seconds("METRICS_WINDOW_S", 30.0)
STEP_S = env_seconds("METRICS_STEP_S", 5.0)
TICK_S = env_seconds("METRICS_TICK_S", 0.2)
REPORT_S = env_seconds("METRICS_REPORT_S", 2.0)
INCIDENT_S = env_seconds("METRICS_INCIDENT_S", 20.0)

EMA_ALPHA = 0.2  # weight of the newest sample in the moving average

SERVICES = ("api", "billing", "search")
# metric -> (typical value, spread): each service reports each metric every tick.
METRICS = {"latency_ms": (40.0, 8.0), "cpu_pct": (35.0, 5.0), "queue_depth": (3.0, 2.0)}
SERIES = tuple(f"{service}/{metric}" for service in SERVICES for metric in METRICS)

app = streams.App("metrics", data_dir=data_dir(), topic_partitions=4)


class Sample(streams.Record):
    service: str
    metric: str
    value: float
    at: float


samples = app.topic("metrics", value_type=Sample)

expires_s = max(WINDOW_S, 2 * STEP_S)
sums = app.Table("metric-sums", default=float).hopping(WINDOW_S, STEP_S, expires=expires_s)
counts = app.Table("metric-counts", default=int).hopping(WINDOW_S, STEP_S, expires=expires_s)
ema = app.Table("metric-ema", help="exponential moving average per series")


def series(service: str, metric: str) -> str:
    return f"{service}/{metric}"


def moving_average(previous: float | None, value: float, alpha: float = EMA_ALPHA) -> float:
    """The next exponential moving average; the first sample starts it."""
    if previous is None:
        return value
    return previous + alpha * (value - previous)


@app.agent(samples)
async def aggregate(stream: streams.Stream) -> None:
    """Sums, counts and moving averages per series (the topic's key)."""
    async for sample in stream:
        key = series(sample.service, sample.metric)
        sums[key] += sample.value
        counts[key] += 1
        ema[key] = moving_average(ema.get(key), sample.value)


# --- the simulated services ------------------------------------------------------------

rng = random.Random()


def degraded(service: str, now: float) -> bool:
    """One service at a time has a bad spell: the first third of each period."""
    period = int(now // INCIDENT_S)
    return SERVICES[period % len(SERVICES)] == service and now % INCIDENT_S < INCIDENT_S / 3


@app.timer(TICK_S)
def emit_samples() -> None:
    now = time.time()
    for service in SERVICES:
        slow = degraded(service, now)
        for metric, (typical, spread) in METRICS.items():
            value = max(0.0, rng.gauss(typical, spread))
            if slow and metric != "cpu_pct":
                value *= 4
            samples.send_soon(
                key=series(service, metric),
                value=Sample(service=service, metric=metric, value=round(value, 2), at=now),
            )


# --- the report -----------------------------------------------------------------------


def rolling(now: float) -> dict[str, tuple[float, int]]:
    """Per series, (average, samples) of the oldest window holding `now`."""
    start = sums.window.earliest(now).start
    total = {key: s for (key, window_start), s in sums.items() if window_start == start}
    n = {key: c for (key, window_start), c in counts.items() if window_start == start}
    return {key: (total[key] / n[key], n[key]) for key in total if n.get(key)}


def report_lines(now: float) -> list[str]:
    averages, moving = rolling(now), dict(ema.items())
    lines = [
        f"metrics at {time.strftime('%H:%M:%S', time.localtime(now))}",
        f"  {'series':<20}{f'avg {WINDOW_S:g}s':>10}{'ema':>9}{'samples':>9}",
    ]
    for key in SERIES:
        if key not in averages or key not in moving:
            continue
        average, n = averages[key]
        lines.append(f"  {key:<20}{average:>10.1f}{moving[key]:>9.1f}{n:>9}")
    return lines


@app.timer(REPORT_S)
def report() -> None:
    print("\n".join(report_lines(time.time())), flush=True)


if __name__ == "__main__":
    main(app)
