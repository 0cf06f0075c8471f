from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.errors import DataDirLockedError
from runtime.log import Log

ROOT = Path(__file__).resolve().parents[2]
HOLDER = """
import sys, time
from runtime.log import Log
log = Log.open(sys.argv[1])
print("ready", flush=True)
time.sleep(60)
"""


def test_second_open_in_same_process_raises(tmp_path):
    with (
        Log.open(tmp_path),
        pytest.raises(DataDirLockedError, match=rf"{tmp_path}.*pid {os.getpid()}"),
    ):
        Log.open(tmp_path)
    Log.open(tmp_path).close()  # released on close


def test_second_open_raises_lock_error_naming_holder(tmp_path):
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        with pytest.raises(DataDirLockedError) as info:
            Log.open(tmp_path)
        assert str(tmp_path) in str(info.value)
        assert f"pid {child.pid}" in str(info.value)
    finally:
        child.kill()
        child.wait(timeout=10)
        child.stdout.close()
    Log.open(tmp_path).close()  # a dead holder's lock is gone
