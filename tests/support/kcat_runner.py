"""Run the kcat command line (Debian's package) and return what it printed."""

from __future__ import annotations

import subprocess

TIMEOUT_S = 30.0


def kcat(*args: str, stdin: str | None = None, timeout_s: float = TIMEOUT_S) -> str:
    """kcat's stdout; fails the test (with kcat's stderr) if kcat exits non-zero."""
    done = subprocess.run(
        ["kcat", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
