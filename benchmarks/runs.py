"""Best-of-N bookkeeping shared by the benchmarks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
