"""A credentials file the broker re-reads when it changes (by inode, size and mtime).

The broker keeps serving while an operator edits its users or tokens: a file
that no longer parses leaves the last good contents in place, with one warning
per change; a file readable by others is warned about (it holds secrets'
digests, which are enough to mount offline guessing).
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from runtime.security.errors import SecurityError

logger = logging.getLogger(__name__)

T = TypeVar("T")


class WatchedFile(Generic[T]):
    """`current()` is `load(path)` of the file as it is now, or as it last parsed."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        load: Callable[[Path], T],
        *,
        what: str,
        noun: str,
        error: type[SecurityError],
        count: Callable[[T], int] = len,  # type: ignore[assignment]
    ) -> None:
        self.path = Path(path)
        self._load, self._what, self._noun = load, what, noun
        self._error, self._count = error, count
        self._version: tuple[int, int, int] | None = None
        self._contents: T | None = None
        self.current()

    def current(self) -> T:
        self._refresh()
        assert self._contents is not None
        return self._contents

    def _refresh(self) -> None:
        try:
            st = os.stat(self.path)
        except OSError as exc:
            if self._version is None:
                raise self._error(f"cannot read {self._what} {self.path}: {exc}") from exc
            return  # being replaced, or gone: keep what we have
        version = (st.st_ino, st.st_size, st.st_mtime_ns)
        if version == self._version:
            return
        first = self._version is None
        try:
            contents = self._load(self.path)
        except self._error as exc:
            if first:
                raise
            logger.warning("%s; keeping the %s read before", exc, self._noun)
            self._version = version  # one warning per change, not per login
            return
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            logger.warning(
                "%s %s is readable by others (mode %o): chmod 600 it",
                self._what,
                self.path,
                stat.S_IMODE(st.st_mode),
            )
        if not first:
            n = self._count(contents)
            logger.info("%s %s re-read: %d %s", self._what, self.path, n, self._noun)
        self._version, self._contents = version, contents
