"""python -m benchmarks.peers: see benchmarks/peers/__init__.py."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.peers import envs, report, spec, systems
from benchmarks.peers.harness import run_all
from benchmarks.runs import write_json


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peers")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument(
        "--slow-events", type=int, default=20_000, help="faust's input (it runs ~3,000 events/s)"
    )
    parser.add_argument(
        "--only", default=",".join(systems.NAMES), help=f"systems, of {','.join(systems.NAMES)}"
    )
    parser.add_argument("--workloads", default=",".join(spec.WORKLOADS))
    parser.add_argument("--rate", type=int, default=10_000, help="events/s of the latency runs")
    parser.add_argument("--latency-s", type=float, default=5.0, help="0: no latency runs")
    parser.add_argument(
        "--cache",
        type=Path,
        default=envs.DEFAULT_CACHE,
        help="where the peers' virtual environments live",
    )
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON ('-': stdout)")
    args = parser.parse_args(argv)
    args.only = tuple(n for n in args.only.split(",") if n)
    args.workloads = tuple(w for w in args.workloads.split(",") if w)
    unknown = set(args.only) - set(systems.NAMES)
    if unknown:
        parser.error(f"--only: unknown {sorted(unknown)}; known: {', '.join(systems.NAMES)}")
    if set(args.workloads) - set(spec.WORKLOADS):
        parser.error(f"--workloads: of {', '.join(spec.WORKLOADS)}")
    if min(args.events, args.slow_events, args.rate) < 1 or args.latency_s < 0:
        parser.error("--events, --slow-events and --rate must be positive")
    return args


def main(argv: list[str]) -> None:
    args = parse(argv)
    results = run_all(args)
    info = results["machine"]
    print()
    print(
        f"{info['cpu']}, {info['cores']} cores, {info['python']}, {results['date']}; "
        f"load average {results['load_before'][0]:.2f} before, "
        f"{results['load_after'][0]:.2f} after; {results['elapsed_s']:.0f} s"
    )
    print(report.markdown(results["table"], args.rate))
    write_json(results, args.json)


if __name__ == "__main__":
    main(sys.argv[1:])
