"""What the examples share: settings from the environment and `python -m` runs."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

import streams
from streams.cli import run_worker, setup_logging
from streams.web.address import parse_web_address


def data_dir() -> str:
    """Where the embedded log and the table stores live: $STREAMS_DATA."""
    return os.environ.get("STREAMS_DATA", "./streams-data")


def env_seconds(name: str, default: float) -> float:
    """A positive duration from the environment variable `name`."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = float(raw)
    if not value > 0:
        raise ValueError(f"{name} must be a number of seconds > 0, got {raw!r}")
    return value


def main(app: streams.App, argv: Sequence[str] | None = None) -> None:
    """Run `app`'s worker until Ctrl-C, or for `--seconds N`; exit with its status."""
    parser = argparse.ArgumentParser(description=f"run the {app.id} example worker")
    parser.add_argument("--seconds", type=float, default=None, help="stop after N seconds")
    parser.add_argument("--data", default=None, help="data directory (default $STREAMS_DATA)")
    parser.add_argument("--broker", default=None, help="memory:// or log://PATH")
    parser.add_argument("-l", "--loglevel", default="warning", help="debug, info, warning")
    parser.add_argument(
        "--web", default="none", help="HOST:PORT of the web server and dashboard (default none)"
    )
    args = parser.parse_args(argv)
    if args.seconds is not None and not args.seconds > 0:
        parser.error("--seconds must be > 0")
    try:
        web = parse_web_address(args.web)
    except ValueError as exc:
        parser.error(str(exc))
    if args.data:
        app.data_dir = args.data
    if args.broker:
        app.broker = args.broker
    stop = asyncio.Event()
    if args.seconds is not None:

        async def stop_after() -> None:
            await asyncio.sleep(args.seconds)
            stop.set()

        app.task(stop_after)
    setup_logging(args.loglevel)
    sys.exit(run_worker(app, stop=stop, web=web))
