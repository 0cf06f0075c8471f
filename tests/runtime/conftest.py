from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(params=["memory", "disk"])
def log_path(request: pytest.FixtureRequest, tmp_path: Path) -> Path | None:
    """The data directory of a log under test: None (memory://) or a fresh directory."""
    return None if request.param == "memory" else tmp_path / "data"
