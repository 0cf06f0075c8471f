"""One virtual environment per peer, outside the repository, so that a peer's
pins never meet ours.

    <cache>/<name>/            a venv made with this Python (`python -m venv`)
    <cache>/<name>/.installed  the requirement lines it was installed with

A venv whose `.installed` matches the wanted requirements is reused as it is;
otherwise it is (re)installed with pip. A failed install is reported, not
raised: that peer is then skipped with the pip output's tail as the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CACHE = Path(
    os.environ.get("STREAMS_BENCH_PEERS", Path.home() / ".cache" / "streams-bench" / "peers")
)
INSTALL_TIMEOUT_S = 900.0

# Pinned so that runs compare the same releases; the rocksdict extra gives
# faust its RocksDB store, bytewax's kafka extra its Kafka connectors.
REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "faust": ("faust-streaming[rocksdict]==0.15.3", "orjson"),
    "quix": ("quixstreams==3.28.1", "orjson"),
    "bytewax": ("bytewax[kafka]==0.21.1", "orjson"),
    "pathway": ("pathway==0.33.0", "orjson"),
}


@dataclass(frozen=True, slots=True)
class PeerEnv:
    name: str
    python: Path | None  # None: not installed
    detail: str  # versions installed, or why not


def ensure(name: str, cache: Path = DEFAULT_CACHE) -> PeerEnv:
    """The venv of peer `name`, created and installed if it is not there yet."""
    wanted = "\n".join(REQUIREMENTS[name]) + "\n"
    root = cache / name
    python = root / "bin" / "python"
    marker = root / ".installed"
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return PeerEnv(name, python, " ".join(REQUIREMENTS[name]))
    root.parent.mkdir(parents=True, exist_ok=True)
    steps = [
        [sys.executable, "-m", "venv", str(root)],
        [str(python), "-m", "pip", "install", "-q", *REQUIREMENTS[name]],
    ]
    for step in steps:
        try:
            done = subprocess.run(
                step, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            return PeerEnv(name, None, f"install timed out after {INSTALL_TIMEOUT_S:.0f} s")
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            return PeerEnv(name, None, f"install failed: {' / '.join(tail)}")
    marker.write_text(wanted)
    return PeerEnv(name, python, " ".join(REQUIREMENTS[name]))
