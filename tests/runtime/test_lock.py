"""The data-directory lock: held on the directory itself, so no file in it can
release it; the error names the holder."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.errors import DataDirLockedError
from runtime.log import Log
from runtime.log import lock as lock_module
from runtime.log.lock import LOCK_FILE, DataDirLock, lock_directories

ROOT = Path(__file__).resolve().parents[2]
CHILD_TIMEOUT_S = 30
HOLDER = """
import sys
from runtime.log import Log
log = Log.open(sys.argv[1])
print("ready", flush=True)
sys.stdin.read()  # hold the log until the test closes our stdin (or kills us)
"""
OPENER = """
import sys
from runtime.errors import DataDirLockedError
from runtime.log import Log
try:
    Log.open(sys.argv[1]).close()
except DataDirLockedError as exc:
    print("locked:", exc)
else:
    print("opened")
"""


def _python(script: str, *args: str, **kwargs) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        **kwargs,
    )


class Holder:
    """A child process holding a Log on `path` until stopped, killed at the latest."""

    def __init__(self, path: Path) -> None:
        self.proc = _python(HOLDER, str(path), stdin=subprocess.PIPE)
        self.pid = self.proc.pid

    def __enter__(self) -> Holder:
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            if not selector.select(CHILD_TIMEOUT_S):
                self.__exit__()
                raise AssertionError(f"the holder did not open the log in {CHILD_TIMEOUT_S}s")
        assert self.proc.stdout.readline().strip() == "ready"  # EOF if it died
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.proc.kill()
        self.proc.wait(timeout=CHILD_TIMEOUT_S)
        for stream in (self.proc.stdin, self.proc.stdout):
            assert stream is not None
            stream.close()


def _open_in_another_process(path: Path) -> str:
    """What a second process gets from Log.open(path)."""
    child = _python(OPENER, str(path))
    out, _ = child.communicate(timeout=CHILD_TIMEOUT_S)
    assert child.returncode == 0, out
    return out.strip()


def test_second_open_in_same_process_raises(tmp_path):
    with (
        Log.open(tmp_path),
        pytest.raises(DataDirLockedError, match=rf"{tmp_path}.*pid {os.getpid()}"),
    ):
        Log.open(tmp_path)
    Log.open(tmp_path).close()  # released on close


def test_second_open_raises_lock_error_naming_holder(tmp_path):
    with Holder(tmp_path) as holder:
        with pytest.raises(DataDirLockedError) as info:
            Log.open(tmp_path)
        assert str(tmp_path) in str(info.value)
        assert f"pid {holder.pid}" in str(info.value)
    Log.open(tmp_path).close()  # a dead holder's lock is gone


def test_deleting_the_lock_file_does_not_release_the_directory(tmp_path):
    with Holder(tmp_path) as holder:
        (tmp_path / LOCK_FILE).unlink()
        outcome = _open_in_another_process(tmp_path)
        assert outcome.startswith("locked:"), outcome
        assert f"pid {holder.pid}" in outcome  # named by the kernel, the file being gone
        assert not (tmp_path / LOCK_FILE).exists()  # the loser wrote nothing
        with pytest.raises(DataDirLockedError, match=f"pid {holder.pid}"):
            Log.open(tmp_path)
    assert _open_in_another_process(tmp_path) == "opened"


def test_replacing_the_lock_file_does_not_release_the_directory(tmp_path):
    with Holder(tmp_path) as holder:
        (tmp_path / LOCK_FILE).unlink()
        (tmp_path / LOCK_FILE).write_text("1\n")  # a new file, nobody's lock
        outcome = _open_in_another_process(tmp_path)
        assert outcome.startswith("locked:") and f"pid {holder.pid}" in outcome, outcome


def test_holder_named_from_the_lock_file_without_proc_locks(tmp_path, monkeypatch):
    monkeypatch.setattr(lock_module, "_PROC_LOCKS", tmp_path / "no-proc-locks")
    with Holder(tmp_path) as holder:
        with pytest.raises(DataDirLockedError, match=f"pid {holder.pid}"):
            DataDirLock(tmp_path)
        (tmp_path / LOCK_FILE).unlink()
        with pytest.raises(DataDirLockedError, match="pid unknown"):
            DataDirLock(tmp_path)


def test_lock_file_names_the_holder(tmp_path):
    with DataDirLock(tmp_path):
        assert (tmp_path / LOCK_FILE).read_text() == f"{os.getpid()}\n"
        assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_FILE]  # no temporary left


def test_lock_directories_takes_all_or_none(tmp_path):
    free, held = tmp_path / "free", tmp_path / "held"
    held.mkdir()
    with DataDirLock(held):
        with pytest.raises(DataDirLockedError, match=str(held)):
            lock_directories([free, held])
        DataDirLock(free).release()  # the first was released when the second failed
    locks = lock_directories([free, held])
    with pytest.raises(DataDirLockedError):
        DataDirLock(free)
    for lock in locks:
        lock.release()
        lock.release()  # idempotent
    DataDirLock(free).release()
