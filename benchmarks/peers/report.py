"""The one table: per workload, each system's events/s, CPU seconds per million
events and (on the stateless rows) p99 end-to-end latency at the fixed rate,
with the ratio of streams (kafka:// and log://) to it. A run whose result was
wrong shows FAILED and its reason instead of figures; a workload a system does
not run shows why. Markdown, so the README can show it as printed.
"""

from __future__ import annotations

from typing import Any

STREAMS = ("streams-kafka", "streams-log")


def _rate(o: dict[str, Any] | None) -> float | None:
    if o is None or o.get("error"):
        return None
    return float(o["events_per_s"])


def _ratio(ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs is None or theirs == 0:
        return "—"
    return f"{ours / theirs:.2f}x"


def rows(
    runs: list[dict[str, Any]],
    latencies: list[dict[str, Any]],
    skipped: dict[str, dict[str, str]],
    labels: dict[str, str],
    workloads: tuple[str, ...],
) -> list[dict[str, str]]:
    """The table's rows, as strings, in the order shown."""
    by = {(r["system"], r["workload"]): r for r in runs}
    lat = {r["system"]: r for r in latencies}
    out: list[dict[str, str]] = []
    for workload in workloads:
        ours = {s: _rate(by.get((s, workload))) for s in STREAMS}
        for system, label in labels.items():
            run = by.get((system, workload))
            why = skipped.get(system, {}).get(workload)
            if run is None and why is None:
                continue
            row = {"workload": workload, "system": label}
            if run is None:
                row["events/s"] = f"not run: {why}"
            elif run.get("error"):
                row["events/s"] = f"FAILED: {run['error']}"
            else:
                row["events"] = f"{int(run['events']):,}"
                row["events/s"] = f"{run['events_per_s']:,.0f}"
                row["CPU s / M events"] = f"{run['cpu_s_per_m']:.1f}"
                if system not in STREAMS:
                    theirs = _rate(run)
                    row["kafka:// ÷ it"] = _ratio(ours["streams-kafka"], theirs)
                    row["log:// ÷ it"] = _ratio(ours["streams-log"], theirs)
            if workload == "stateless" and system in lat:
                row["p99 ms"] = _latency(lat[system])
            out.append(row)
    return out


def _latency(r: dict[str, Any]) -> str:
    if r.get("skipped"):
        return f"not run: {r['skipped']}"
    if r.get("error"):
        return f"FAILED: {r['error']}"
    return f"{r['p99_ms']:.1f} (p50 {r['p50_ms']:.1f})"


COLUMNS = (
    "workload",
    "system",
    "events",
    "events/s",
    "CPU s / M events",
    "p99 ms",
    "kafka:// ÷ it",
    "log:// ÷ it",
)


def markdown(table_rows: list[dict[str, str]], rate: int) -> str:
    names = [c if c != "p99 ms" else f"p99 ms at {rate:,}/s" for c in COLUMNS]
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(COLUMNS)]
    for row in table_rows:
        cells = [row.get(c, "") for c in COLUMNS]
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
    return "\n".join(lines)
