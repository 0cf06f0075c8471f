"""The data-directory lock: one Log per directory, across processes.

File format: `<data dir>/.lock` holds the decimal pid of the holder. The lock is
an exclusive, non-blocking flock(2) on that file, held for the life of the Log
and released by closing the descriptor (also when the process dies). flock locks
belong to an open file description, so a second open in the same process
conflicts too. The file itself is never deleted (that would race with openers).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from runtime.errors import DataDirLockedError

LOCK_FILE = ".lock"


class DataDirLock:
    """An exclusive lock on a data directory, taken at construction."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / LOCK_FILE
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise DataDirLockedError(
                f"data directory {directory} is locked by another Log "
                f"(holder pid {holder}, lock file {self.path})"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)  # closing drops the flock


def _read_pid(fd: int) -> str:
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return text if text.isdigit() else "unknown"
