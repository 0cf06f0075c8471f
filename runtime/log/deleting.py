"""File steps of deleting a topic (see manager.py for the order they are taken in).

A marker is a partition directory moved under `<data dir>/deleting/`: while one
exists, its topic counts as deleted.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

PARTITION_DIR = re.compile(r"(?P<topic>[a-zA-Z0-9._-]+)-(?P<partition>\d+)")


def rename_into(directory: Path, trash: Path, name: str) -> None:
    target = trash / name
    if target.exists():  # a marker of an earlier delete nobody finished
        shutil.rmtree(target)
    try:
        os.rename(directory / name, target)
    except FileNotFoundError:  # no directory to move: a marker all the same
        target.mkdir()


def entries(directory: Path) -> list[Path]:
    try:
        return list(directory.iterdir())
    except FileNotFoundError:
        return []


def marked_topics(trash: Path) -> set[str]:
    """Names of the topics that have a delete marker."""
    names = set()
    for entry in entries(trash):
        match = PARTITION_DIR.fullmatch(entry.name)
        if match:
            names.add(match["topic"])
    return names


def empty_directory(directory: Path) -> None:
    """Unlink what a directory holds but keep it (a marker stays a marker)."""
    for entry in entries(directory):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()
