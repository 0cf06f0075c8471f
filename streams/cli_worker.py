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
from streams.cli_common import Context, common_options, setup_logging
from streams.gc_tuning import freeze_after_startup
from streams.progress import recovery_progress
from streams.status import DEFAULT_INTERVAL_S, report_forever

logger = logging.getLogger("streams")

LISTEN_OFF = "off"
# Lifecycle detail of the parts under a worker (each topic created, the shared
# log's coordinators and limits): summarised by the worker's own lines unless
# the level is debug.
QUIET_LOGGERS = ("runtime.log.manager", "runtime.broker")


def parse_listen(text: str) -> Address | None:
    """`HOST:PORT` (port 0: any free one), or `off`: ValueError otherwise."""
    if text.strip().lower() == LISTEN_OFF:
        return None
    return Address.parse(text, default_port=0)


def run_worker(
    app: Any,
    *,
    stop: asyncio.Event | None = None,
    listen: Address | None = DEFAULT_LISTEN,
    status_interval_s: float = DEFAULT_INTERVAL_S,
    web: Any = None,
) -> int:
    """Run a worker until SIGINT/SIGTERM (or `stop`); returns the exit status.
    `listen`: where a log:// worker serves its log (None: it does not);
    `status_interval_s`: how often a status line is logged (0: never);
    `web`: a streams.web.WebAddress to serve metrics, lookups and the dashboard on."""

    async def main() -> int:
        stop_event = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop_event.set)
        try:
            await _run(app, stop_event, listen, status_interval_s, web)
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


async def _run(
    app: Any, stop: asyncio.Event, listen: Address | None, status_interval_s: float, web: Any
) -> None:
    from streams.worker import Worker

    worker = Worker(app, web=web)
    worker.placement.progress = recovery_progress()
    transport = worker.transport
    shared = None
    if listen is not None and isinstance(transport, EmbeddedTransport) and transport.path:
        shared = SharedLog(transport, listen, groups=(app.id,))
    try:
        if shared is not None:
            await shared.start()  # opens the log: the worker's start finds it open
        before = None
        if isinstance(transport, EmbeddedTransport):
            await transport.start()  # (started already if shared) the worker's start finds it open
            before = set(await transport.topics())
        await worker.start()
        freeze_after_startup()
        click.echo(banner(app, transport, shared, worker), err=True)
        if before is not None:
            _log_topics(app.id, before, set(await transport.topics()))
        status = None
        if status_interval_s > 0:
            status = asyncio.create_task(report_forever(worker, status_interval_s))
        try:
            await worker.run_until(stop)
        finally:
            if status is not None:
                status.cancel()
                await asyncio.gather(status, return_exceptions=True)
            if shared is not None:
                await shared.stop()
            await worker.stop()
    finally:
        if shared is not None:
            await shared.stop()
        with contextlib.suppress(Exception):
            await transport.stop()  # a start that failed early left it to us


@click.command()
@common_options
@click.option(
    "--listen",
    default=str(DEFAULT_LISTEN),
    show_default=True,
    help="where a log:// worker serves its log to Kafka clients and `streams` commands "
    "(port 0: any free port, recorded in the data directory); off: not served",
)
@click.option(
    "--status-interval",
    type=click.FloatRange(min=0),
    default=DEFAULT_INTERVAL_S,
    show_default=True,
    help="seconds between status lines (events/s, lag, rebalances); 0: none",
)
@click.option(
    "--web",
    default=None,
    help="HOST:PORT of the web server (metrics, table lookups, dashboard), or none "
    "(default 127.0.0.1:6066, or a free port if that is taken)",
)
@click.option(
    "--web-allow-insecure",
    is_flag=True,
    help="serve the web server (no authentication) on a non-loopback address",
)
@click.option(
    "--processing-guarantee",
    type=click.Choice(["at_least_once", "exactly_once"]),
    default=None,
    envvar="STREAMS_PROCESSING_GUARANTEE",
    help="override the app's processing_guarantee",
)
@click.option(
    "--worker-name",
    default=None,
    envvar="STREAMS_WORKER_NAME",
    help="exactly_once: this worker's part of its transactional id (default: kept in --data)",
)
@click.pass_obj
def worker(
    ctx: Context,
    listen: str,
    status_interval: float,
    web: str | None,
    web_allow_insecure: bool,
    processing_guarantee: str | None,
    worker_name: str | None,
) -> None:
    """Run the app's agents, tables and timers until SIGINT/SIGTERM."""
    try:
        address = parse_listen(listen)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--listen") from exc
    web_address = _web_option(web, web_allow_insecure)
    level = ctx.loglevel or "info"
    setup_logging(level)
    if level.lower() != "debug":
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    app = ctx.app
    if ctx.broker:
        app.broker = ctx.broker
    if ctx.data:
        app.data_dir = ctx.data
    if processing_guarantee:
        app.set_processing_guarantee(processing_guarantee)
    if worker_name:
        app.worker_name = worker_name
    sys.exit(run_worker(app, listen=address, status_interval_s=status_interval, web=web_address))


def _web_option(value: str | None, allow_insecure: bool) -> Any:
    from streams.web.address import DEFAULT_WEB, parse_web_address

    try:
        # the default may be taken (a second worker here): then a free port
        return parse_web_address(
            value or DEFAULT_WEB, fallback=value is None, allow_insecure=allow_insecure
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--web") from None


def _log_topics(app_id: str, before: set[str], after: set[str]) -> None:
    created = sorted(after - before)
    logger.info(
        "topics app=%s in_log=%d created=%s",
        app_id,
        len(after),
        ",".join(created) if created else "-",
    )


def _url(transport: Any) -> str:
    if isinstance(transport, EmbeddedTransport) and transport.path is not None:
        return f"log://{Path(transport.path).resolve()}"
    return str(transport.url)


def banner(app: Any, transport: Any, shared: SharedLog | None, worker: Any = None) -> str:
    """What a worker says at start, like Faust's: where everything is."""
    from importlib.metadata import version

    served = "not served (--listen off)"
    if shared is not None and shared.address is not None:
        served = f"kafka://{shared.address} (kcat -b {shared.address} -L)"
    rows = [
        ("app", f"{app.id} (agents={len(app.agents)} tables={len(app.tables)})"),
        ("broker", _url(transport)),
        ("data", str(Path(app.data_dir).resolve())),
    ]
    if isinstance(transport, EmbeddedTransport):
        rows.append(("log served", served))
    web = getattr(getattr(worker, "web", None), "url", None)
    rows.append(("web", web or "off (--web none)"))
    rows.append(("pid", str(os.getpid())))
    width = max(len(name) for name, _ in rows)
    lines = [f"streams {version('streams')} worker"]
    lines += [f"  {name.ljust(width)}  {value}" for name, value in rows]
    return "\n".join(lines)
