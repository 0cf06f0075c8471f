"""The systems compared, what each runs, and why it skips what it skips."""

from __future__ import annotations

from pathlib import Path

from benchmarks.peers import envs
from benchmarks.peers.runner import System
from benchmarks.peers.spec import WORKLOADS

NO_JOIN = "no stream-table join operator"
PEERS = ("faust", "quix", "bytewax", "pathway")
NAMES = ("streams-log", "streams-kafka", "floor", *PEERS)
LABELS = {
    "streams-log": "streams, log://",
    "streams-kafka": "streams, kafka://",
    "floor": "Python floor (confluent-kafka + orjson + dict)",
    "faust": "faust-streaming 0.15.3 (rocksdb, changelog)",
    "quix": "quixstreams 3.28.1 (rocksdb, changelog)",
    "bytewax": "bytewax 0.21.1 (state in the dataflow, no changelog)",
    "pathway": "pathway 0.33.0 (Rust engine, no persistence)",
}
PEER_WORKLOADS: dict[str, tuple[str, ...]] = {
    "faust": ("stateless", "count", "window"),
    "quix": ("stateless", "count", "window"),
    "bytewax": ("stateless", "count", "window"),
    "pathway": ("count", "window"),
}
PEER_SKIPS: dict[str, dict[str, str]] = {
    "faust": {"join": f"{NO_JOIN} (a table lookup in the agent is hand-written)"},
    "quix": {"join": f"{NO_JOIN} (join_asof joins two streams by time)"},
    "bytewax": {"join": f"{NO_JOIN} (its joins join streams)"},
    "pathway": {
        "stateless": "its per-event output cannot be timed without a per-row Python callback",
        "join": "not built: its outputs, like stateless, have no per-event time here",
    },
}


def build(
    only: tuple[str, ...], cache: Path, notes: dict[str, str]
) -> tuple[list[System], dict[str, dict[str, str]]]:
    """The systems to run (peers' venvs made on the way) and the skips to show."""
    systems: list[System] = []
    skipped: dict[str, dict[str, str]] = {}
    for name in only:
        if name in ("streams-log", "streams-kafka"):
            systems.append(System(name, LABELS[name], None, WORKLOADS))
        elif name == "floor":
            systems.append(System(name, LABELS[name], None, ("count",)))
        else:
            env = envs.ensure(name, cache)
            notes[name] = env.detail
            if env.python is None:
                skipped[name] = {w: env.detail for w in WORKLOADS}
                continue
            skipped[name] = PEER_SKIPS[name]
            systems.append(
                System(
                    name,
                    LABELS[name],
                    env.python,
                    PEER_WORKLOADS[name],
                    small_input=name == "faust",
                )
            )
    return systems, skipped
