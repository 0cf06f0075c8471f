"""A test double for the disk under the log: ENOSPC, EIO and short writes on cue.

`DiskFaults` stands in for the `os` module of the log's modules that write
(storage, index, manager, deleting, cleaner) while `installed()`; every call it does not
fail goes to the real `os`. Two kinds of fault:

- `fill(free_bytes)`: the disk has that many bytes left. A write that does
  not fit writes what fits and returns the short count (as Linux does); the
  next write, with nothing left, raises ENOSPC. `free()` ends it.
- `fail(call, errno, times, after)`: after `after` more calls of `call`
  ("writev", "write", "fdatasync", "fsync", "ftruncate", "rename", "replace",
  "open") go through, the next `times` raise OSError(errno) without doing
  anything. `on_call` hooks let a test look at the files at the moment of a call.

    faults = DiskFaults()
    with faults.installed():
        faults.fill(100)
        with pytest.raises(StorageError):
            log.append(tp, batch)

Only what these modules call through `os.` is faked; pathlib and shutil go to
the real disk. Not thread-safe: one test at a time drives it.
"""

from __future__ import annotations

import contextlib
import errno as errnos
import importlib
import os
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["MODULES", "DiskFaults"]

MODULES = (
    "runtime.log.storage",
    "runtime.log.index",
    "runtime.log.manager",
    "runtime.log.deleting",
    "runtime.log.cleaner",
)
_FAILABLE = ("writev", "write", "fdatasync", "fsync", "ftruncate", "rename", "replace", "open")


class DiskFaults:
    """`os` for the log's modules, with a disk that fills up or breaks when told."""

    def __init__(self) -> None:
        self.free_bytes: int | None = None  # None: room for everything
        self.calls: Counter[str] = Counter()
        self.on_call: dict[str, Callable[..., None]] = {}
        self._failures: dict[str, list[int | None]] = {}  # None: let one call through

    # --- what a test says ------------------------------------------------------

    def fill(self, free_bytes: int = 0) -> None:
        if free_bytes < 0:
            raise ValueError(f"free_bytes must be >= 0, got {free_bytes}")
        self.free_bytes = free_bytes

    def free(self) -> None:
        self.free_bytes = None

    def fail(self, call: str, error: int = errnos.EIO, *, times: int = 1, after: int = 0) -> None:
        if call not in _FAILABLE:
            raise ValueError(f"{call!r} is not one of {_FAILABLE}")
        self._failures.setdefault(call, []).extend([None] * after + [error] * times)

    def clear(self) -> None:
        """No more faults: a disk with room and no errors."""
        self.free_bytes = None
        self._failures.clear()

    @contextlib.contextmanager
    def installed(self) -> Iterator[DiskFaults]:
        modules = [importlib.import_module(name) for name in MODULES]
        saved = [module.os for module in modules]  # type: ignore[attr-defined]
        for module in modules:
            module.os = self  # type: ignore[attr-defined]
        try:
            yield self
        finally:
            for module, original in zip(modules, saved, strict=True):
                module.os = original  # type: ignore[attr-defined]

    # --- os ----------------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def _enter(self, call: str, *args: Any) -> None:
        self.calls[call] += 1
        hook = self.on_call.get(call)
        if hook is not None:
            hook(*args)
        pending = self._failures.get(call)
        if pending:
            code = pending.pop(0)
            if code is not None:
                raise OSError(code, os.strerror(code))

    def _room(self, want: int) -> int:
        if self.free_bytes is None:
            return want
        if self.free_bytes == 0 and want:
            raise OSError(errnos.ENOSPC, os.strerror(errnos.ENOSPC))
        return min(want, self.free_bytes)

    def _written(self, n: int) -> int:
        if self.free_bytes is not None:
            self.free_bytes -= n
        return n

    def writev(self, fd: int, buffers: Any) -> int:
        self._enter("writev", fd)
        data = b"".join(bytes(buffer) for buffer in buffers)
        room = self._room(len(data))
        return self._written(os.write(fd, data[:room]))

    def write(self, fd: int, data: Any) -> int:
        self._enter("write", fd)
        view = memoryview(data).cast("B")
        room = self._room(view.nbytes)
        return self._written(os.write(fd, view[:room]))

    def fdatasync(self, fd: int) -> None:
        self._enter("fdatasync", fd)
        os.fdatasync(fd)

    def fsync(self, fd: int) -> None:
        self._enter("fsync", fd)
        os.fsync(fd)

    def ftruncate(self, fd: int, size: int) -> None:
        self._enter("ftruncate", fd, size)
        os.ftruncate(fd, size)

    def rename(self, src: Any, dst: Any) -> None:
        self._enter("rename", src, dst)
        os.rename(src, dst)

    def replace(self, src: Any, dst: Any) -> None:
        self._enter("replace", src, dst)
        os.replace(src, dst)

    def open(self, path: Any, flags: int, mode: int = 0o777) -> int:
        self._enter("open", path, flags)
        return os.open(path, flags, mode)
