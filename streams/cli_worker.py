"""`streams worker`: runs an app until SIGINT/SIGTERM, sharing a log:// log.

A worker on `log://` owns its log directory; so that `streams tail`, `send`,
kcat and every Kafka client can still reach the log while it runs, the worker
serves it over the Kafka protocol on loopback (runtime/shared_log.py) from the
moment the log is open until the worker stops: serving stops first, so no
client sees the log close under it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import click

from runtime.broker.endpoints import Address
from runtime.errors import StreamsRuntimeError
from runtime.shared_log import DEFAULT_LISTEN, SharedLog
from runtime.transport import EmbeddedTransport
from streams.cli_common import Context, common_options, loglevel_option, setup_logging

logger = logging.getLogger("streams")

LISTEN_OFF = "off"


def parse_listen(text: str) -> Address | None:
    """`HOST:PORT` (port 0: any free one), or `off`: ValueError otherwise."""
    if text.strip().lower() == LISTEN_OFF:
        return None
    return Address.parse(text, default_port=0)


def run_worker(
    app: Any, *, stop: asyncio.Event | None = None, listen: Address | None = DEFAULT_LISTEN
) -> int:
    """Run a worker until SIGINT/SIGTERM (or `stop`); returns the exit status.
    `listen`: where a log:// worker serves its log (None: it does not)."""

    async def main() -> int:
        stop_event = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop_event.set)
        try:
            await _run(app, stop_event, listen)
        except StreamsRuntimeError as exc:
            logger.error("%s", exc)
            return 1
        except Exception as exc:
            logger.error("worker stopped by an error: %s", exc)
            return 1
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        return 0

    return asyncio.run(main())


async def _run(app: Any, stop: asyncio.Event, listen: Address | None) -> None:
    from streams.worker import Worker

    worker = Worker(app)
    transport = worker.transport
    shared = None
    if listen is not None and isinstance(transport, EmbeddedTransport) and transport.path:
        shared = SharedLog(transport, listen, groups=(app.id,))
    try:
        if shared is not None:
            await shared.start()  # opens the log: the worker's start finds it open
        click.echo(banner(app, transport, shared), err=True)
        await worker.start()
        try:
            await worker.run_until(stop)
        finally:
            if shared is not None:
                await shared.stop()
            await worker.stop()
    finally:
        if shared is not None:
            await shared.stop()
        with contextlib.suppress(Exception):
            await transport.stop()  # a start that failed early left it to us


@click.command()
@loglevel_option
@common_options
@click.option(
    "--listen",
    default=str(DEFAULT_LISTEN),
    show_default=True,
    help="where a log:// worker serves its log to Kafka clients and `streams` commands "
    "(port 0: any free port, recorded in the data directory); off: not served",
)
@click.pass_obj
def worker(ctx: Context, listen: str) -> None:
    """Run the app's agents, tables and timers until SIGINT/SIGTERM."""
    try:
        address = parse_listen(listen)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--listen") from exc
    setup_logging(ctx.loglevel or "info")
    app = ctx.app
    if ctx.broker:
        app.broker = ctx.broker
    if ctx.data:
        app.data_dir = ctx.data
    sys.exit(run_worker(app, listen=address))


def banner(app: Any, transport: Any, shared: SharedLog | None) -> str:
    """What a worker says at start, like Faust's: where everything is."""
    from importlib.metadata import version

    served = "not served (--listen off)"
    if shared is not None and shared.address is not None:
        served = f"kafka://{shared.address} (kcat -b {shared.address} -L)"
    rows = [
        ("app", f"{app.id} (agents={len(app.agents)} tables={len(app.tables)})"),
        ("broker", transport.url),
        ("data", str(Path(app.data_dir).resolve())),
    ]
    if isinstance(transport, EmbeddedTransport):
        rows.append(("log served", served))
    rows.append(("pid", str(os.getpid())))
    width = max(len(name) for name, _ in rows)
    lines = [f"streams {version('streams')} worker"]
    lines += [f"  {name.ljust(width)}  {value}" for name, value in rows]
    return "\n".join(lines)
