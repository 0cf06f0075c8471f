"""What every `streams` subcommand shares: the app, the transport, the options.

Options given before the subcommand (`streams -A app --data D tail T`) and
after it (`streams tail T -A app --data D`) mean the same: each subcommand
takes them again, and a value given after the subcommand wins.

Read-only commands (`tail`, `topics`, `topics describe`, `groups`) never
create a data directory: on a log:// directory that does not exist they say
so. A log:// directory a running worker owns is reached through the worker
(runtime/shared_log.py); a kafka:// broker that cannot be reached within
CONNECT_TIMEOUT_S is one clear error.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from runtime.client.errors import KafkaConnectionError, KafkaTimeoutError
from runtime.errors import StreamsRuntimeError
from runtime.shared_log import log_directory, open_shared
from runtime.transport import Transport

F = TypeVar("F", bound=Callable[..., Any])

LOG_FORMAT = "[%(asctime)s] %(levelname)s %(name)s: %(message)s"
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
CONNECT_TIMEOUT_S = 5.0
DEFAULT_DATA_DIR = "./streams-data"


def load_app(spec: str) -> Any:
    """`package.module:attr` or `package.module` (its `app`)."""
    from streams.app import App

    module_name, _, attr = spec.partition(":")
    sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.BadParameter(f"cannot import {module_name!r}: {exc}", param_hint="-A") from exc
    app = getattr(module, attr or "app", None)
    if not isinstance(app, App):
        raise click.BadParameter(
            f"{spec!r} is not a streams.App (set -A module:attribute)", param_hint="-A"
        )
    return app


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, stream=sys.stderr)


class Context:
    """The command line's choices, filled in by the group and each subcommand."""

    def __init__(self, app_spec: str | None = None, app: Any = None) -> None:
        self.app_spec = app_spec
        self._app = app
        self.broker: str | None = None
        self.data: str | None = None
        self.loglevel: str | None = None

    @property
    def app(self) -> Any:
        if self._app is None:
            if not self.app_spec:
                raise click.UsageError("this command needs an app: streams -A module:app ...")
            self._app = load_app(self.app_spec)
        return self._app

    def has_app(self) -> bool:
        return self._app is not None or bool(self.app_spec)

    def broker_url(self) -> str:
        app = self.app if self.has_app() else None
        return self.broker or (app.broker if app else "log://")

    def log_dir(self) -> Path:
        """Where a log:// broker's files are (data dir/log, or the URL's path)."""
        app = self.app if self.has_app() else None
        data_dir = self.data or (app.data_dir if app else DEFAULT_DATA_DIR)
        return Path(data_dir) / "log"

    async def transport(self, *, read_only: bool) -> Transport:
        url = self.broker_url()
        directory = log_directory(url, self.log_dir())
        if read_only and directory is not None and not directory.is_dir():
            raise click.ClickException(
                f"no log in {directory}: nothing was written there yet "
                "(give --data DIR or --broker URL)"
            )
        if url.startswith("kafka:"):
            click.echo(f"connecting to {url} ...", err=True)
        return await open_shared(url, data_dir=self.log_dir(), connect_timeout_s=CONNECT_TIMEOUT_S)


def with_transport(
    ctx: Context,
    fn: Callable[[Transport], Coroutine[Any, Any, None]],
    *,
    read_only: bool = False,
) -> None:
    """Run `fn` with the options' transport, started, in a new event loop;
    the runtime's errors become one line, not a traceback."""

    setup_logging(ctx.loglevel or "warning")

    async def run() -> None:
        transport = await ctx.transport(read_only=read_only)
        try:
            await transport.start()
        except (KafkaConnectionError, KafkaTimeoutError, OSError) as exc:
            raise click.ClickException(
                f"cannot reach the broker {transport.url}: {exc}; giving up"
            ) from exc
        try:
            await fn(transport)
        finally:
            await transport.stop()

    try:
        asyncio.run(run())
    except (StreamsRuntimeError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    except KeyboardInterrupt:
        sys.exit(130)


def context_of(click_ctx: click.Context) -> Context:
    """The one Context of this command line (on the root: subcommands share it);
    an object the caller passed in (an App: `app.main()`) becomes its app."""
    root = click_ctx.find_root()
    if not isinstance(root.obj, Context):
        root.obj = Context(None, root.obj)
    return root.obj


def _set(field: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(click_ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        if value is not None:
            setattr(context_of(click_ctx), field, value)
        return value

    return callback


def common_options(command: F) -> F:
    """-A, --broker, --data, -l: accepted by the group and by every subcommand."""
    options = [
        click.option(
            "-l",
            "--loglevel",
            type=click.Choice(LOG_LEVELS, case_sensitive=False),
            default=None,
            expose_value=False,
            callback=_set("loglevel"),
            help="log level (default: info for workers, warning otherwise)",
        ),
        click.option(
            "-A",
            "--app",
            "app_spec",
            default=None,
            expose_value=False,
            callback=_set("app_spec"),
            help="the app: module or module:attr",
        ),
        click.option(
            "--broker",
            default=None,
            expose_value=False,
            callback=_set("broker"),
            help="memory://, log://PATH or kafka://HOST:PORT",
        ),
        click.option(
            "--data",
            default=None,
            expose_value=False,
            callback=_set("data"),
            help=f"data directory (default {DEFAULT_DATA_DIR})",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def parse_pairs(items: tuple[str, ...], hint: str) -> dict[str, str]:
    """KEY=VALUE items -> a dict (a bad item is a usage error naming the option)."""
    pairs = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not sep or not k:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint=hint)
        pairs[k] = v
    return pairs
