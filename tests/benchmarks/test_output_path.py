"""The output-path benchmark runs both workloads and checks what it stored."""

from __future__ import annotations

import asyncio

import pytest

from benchmarks import output_path


@pytest.mark.parametrize("workload", ["stateless", "join"])
def test_output_path_counts_what_it_sent(workload: str) -> None:
    wall, cpu = asyncio.run(output_path._run(workload, 2_000, 50, 4))
    assert wall > 0 and cpu > 0  # the run itself raises if the output lost a record
