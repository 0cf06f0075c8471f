"""Worker metrics: the workers' own metrics topic, aggregated per worker and per agent.

Run it from the repository root:

    streams -A examples.worker_metrics worker                 # until Ctrl-C
    python -m examples.worker_metrics --seconds 60            # for one minute
    streams -A examples.worker_metrics worker --broker kafka://HOST:PORT --web :6067

Every worker of every app writes its metrics into the `streams-metrics` topic
every few seconds (`App(metrics_topic=..., metrics_interval_s=...)`): events
in and out per second, lag, and per agent events/s, lag and the 99th
percentile of its time per event. This app reads that topic: one agent keeps,
per worker and agent, the latest figures and the highest p99 of each minute.
Every couple of seconds it prints them. On the embedded log it sees itself;
pointed at a broker that other apps' workers use (`--broker kafka://...`) it
sees every one of them.

The log and the tables live under ./streams-data ($STREAMS_DATA moves them).
Time scales, in seconds, from the environment: MONITOR_INTERVAL_S (5, how
often this app's own worker reports), MONITOR_REPORT_S (2).
"""

from __future__ import annotations

import time
from typing import Any

import streams
from examples._common import data_dir, env_seconds, main

INTERVAL_S = env_seconds("MONITOR_INTERVAL_S", 5.0)
REPORT_S = env_seconds("MONITOR_REPORT_S", 2.0)
STALE_S = 30.0  # a worker silent for longer is shown as gone

app = streams.App("monitor", data_dir=data_dir(), topic_partitions=1, metrics_interval_s=INTERVAL_S)

reports = app.topic("streams-metrics", key_type=str, partitions=1)
health = app.Table("agent-health", help="per app/worker/agent: the latest figures")
peak_p99 = app.Table("agent-p99-peak", default=float).tumbling(60.0, expires=600.0)


def agent_rows(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One metrics record -> per "app/worker/agent": events/s, lag, p99 (ms), seen at."""
    rows = {}
    for agent, figures in sorted(report.get("agents", {}).items()):
        rows[f"{report['app']}/{report['worker']}/{agent}"] = {
            "events_per_s": figures["events_per_s"],
            "lag": figures["lag"],
            "p99_ms": round(figures["p99_s"] * 1000, 3),
            "at": report["at"],
        }
    return rows


@app.agent(reports)
async def aggregate(stream: streams.Stream) -> None:
    """The latest figures and the minute's highest p99 per worker and agent."""
    async for report in stream:
        for key, row in agent_rows(report).items():
            health[key] = row
            peak_p99[key] = max(peak_p99[key].current(), row["p99_ms"])


def report_lines(now: float) -> list[str]:
    lines = [
        f"workers at {time.strftime('%H:%M:%S', time.localtime(now))}",
        f"  {'app/worker/agent':<44}{'events/s':>10}{'lag':>8}{'p99 ms':>9}{'peak':>9}",
    ]
    for key, row in sorted(health.items()):
        if now - row["at"] > STALE_S:
            continue
        peak = peak_p99[key].now()
        lines.append(
            f"  {key:<44}{row['events_per_s']:>10.1f}{row['lag']:>8}"
            f"{row['p99_ms']:>9.2f}{peak:>9.2f}"
        )
    return lines


@app.timer(REPORT_S)
def report() -> None:
    print("\n".join(report_lines(time.time())), flush=True)


if __name__ == "__main__":
    main(app)
