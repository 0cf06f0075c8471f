"""The test suite's collection order: test files with `slow` tests (the process-heavy
reliability runs) first, every file's tests still together and in their order.

The suite runs on several pytest-xdist processes, one file at a time each
(`--dist loadfile --no-loadscope-reorder`, pyproject.toml). Handing out the long
files first keeps the run from ending with one process busy on a kill loop while
the others idle. (Here, not in tests/: a conftest there would put tests/ on
sys.path, where tests/stores would shadow the stores package.)
"""

from __future__ import annotations

import pytest
from hypothesis import settings

# No per-example deadline: property tests check results, not speed, and on a
# shared 2-core machine one example can take longer than hypothesis's 200 ms.
settings.register_profile("suite", deadline=None)
settings.load_profile("suite")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)  # stable: order kept within
