"""Best-of-N bookkeeping and the results file, shared by the benchmarks."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def write_json(results: Any, dest: str | None) -> None:
    """`--json FILE`: the results as JSON in FILE, or on stdout for '-'."""
    if dest == "-":
        print(json.dumps(results))
    elif dest:
        Path(dest).write_text(json.dumps(results, indent=2) + "\n")


@dataclass
class Best:
    """The best of several runs of one measurement (by `key`), with the spread."""

    key: str
    runs: list[dict[str, Any]] = field(default_factory=list)

    def add(self, result: dict[str, Any]) -> None:
        self.runs.append(result)

    @property
    def best(self) -> dict[str, Any]:
        return max(self.runs, key=lambda r: r[self.key])

    def spread(self) -> str:
        rates = sorted(r[self.key] for r in self.runs)
        if len(rates) == 1:
            return "1 run"
        return f"best of {len(rates)}; runs {', '.join(f'{r:,.0f}' for r in rates)}"
