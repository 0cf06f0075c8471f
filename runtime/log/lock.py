"""The data-directory lock: one owner per directory, across processes.

The lock is an exclusive, non-blocking flock(2) on a read-only descriptor of
the directory itself, held for the life of its owner (a Log, a worker's state
stores) and dropped by the kernel when the descriptor is closed or the process
dies. Nothing inside the directory carries the lock, so deleting or replacing a
file there cannot hand the directory to a second process.

File format: `<dir>/.lock` holds the decimal pid of the holder, written once
the lock is taken. It only names the holder in the error a second opener gets;
deleting it releases nothing.

Invariants:
- At most one DataDirLock per directory at a time, across processes and within
  one (flock locks belong to open file descriptions: each lock opens its own).
- The holder an error names is the pid the kernel reports for the lock
  (/proc/locks, on Linux), else the pid in `.lock`, else "unknown".
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from runtime.errors import DataDirLockedError

logger = logging.getLogger(__name__)

LOCK_FILE = ".lock"
_PROC_LOCKS = Path("/proc/locks")


class DataDirLock:
    """An exclusive lock on an existing directory, taken at construction."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_FILE  # names the holder; not the lock
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd, self.path)
            os.close(fd)
            raise DataDirLockedError(
                f"data directory {self.directory} is locked by another process "
                f"(holder pid {holder}); stop it or use another directory"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        _write_pid(self.path)

    def release(self) -> None:
        """Drop the lock; calling it again does nothing."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)  # closing the last descriptor drops the flock

    def __enter__(self) -> DataDirLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def lock_directories(directories: Iterable[str | os.PathLike[str]]) -> list[DataDirLock]:
    """Lock every directory (created if missing), or none: on a failure the
    locks already taken are released before the error propagates."""
    locks: list[DataDirLock] = []
    try:
        for directory in directories:
            Path(directory).mkdir(parents=True, exist_ok=True)
            locks.append(DataDirLock(directory))
    except BaseException:
        for lock in locks:
            lock.release()
        raise
    return locks


def _write_pid(path: Path) -> None:
    # Written aside and renamed, so a reader never sees a half-written pid. Best
    # effort: the lock is held already, and a full disk must not refuse an open
    # over a note that /proc/locks can stand in for.
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(f"{os.getpid()}\n")
        os.replace(temporary, path)
    except OSError as exc:
        logger.warning("cannot write the lock holder's pid path=%s error=%s", path, exc)
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


def _holder(fd: int, lock_file: Path) -> str:
    return _kernel_holder(fd) or _file_holder(lock_file) or "unknown"


def _kernel_holder(fd: int) -> str | None:
    """The pid /proc/locks gives for the flock on `fd`'s inode, if any."""
    st = os.fstat(fd)
    inode = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        lines = _PROC_LOCKS.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        # "1: FLOCK  ADVISORY  WRITE 4242 fe:00:131090 0 EOF"; waiters have "->"
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK" or fields[5] != inode:
            continue
        if fields[4].isdigit() and fields[4] != "0":  # 0: in another pid namespace
            return fields[4]
    return None


def _file_holder(lock_file: Path) -> str | None:
    with contextlib.suppress(OSError):
        text = lock_file.read_text(errors="replace").strip()
        if text.isdigit():
            return text
    return None


def lock_holder(directory: str | os.PathLike[str]) -> int | None:
    """The pid holding `directory`'s lock, found without touching the lock: a
    probe that took it, even shared and for an instant, could refuse a worker
    starting at that moment. None: not locked (or the directory is missing);
    where /proc/locks cannot tell, the pid `.lock` names if that process lives."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        if _PROC_LOCKS.exists():
            kernel = _kernel_holder(fd)
            return int(kernel) if kernel is not None else None
    finally:
        os.close(fd)
    named = _file_holder(Path(directory) / LOCK_FILE)
    return int(named) if named is not None and _alive(int(named)) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
