"""A small real filesystem for full-disk tests: a tmpfs of a given size.

Mounting needs root (CI runs as root); elsewhere the test is skipped with that
reason. The mount is always undone, lazily if something still holds it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def tmpfs(parent: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` (mount's syntax: "20m") mounted at parent/disk."""
    if os.geteuid() != 0:
        pytest.skip(f"mounting a {size} tmpfs needs root (CI runs as root)")
    mount = parent / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", mount], check=True)
    try:
        yield mount
    finally:
        if subprocess.run(["umount", mount], check=False).returncode != 0:
            subprocess.run(["umount", "-l", mount], check=True)
