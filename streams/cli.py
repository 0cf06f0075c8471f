"""The `streams` command: a thin layer over App, Worker and the transports.

Each subcommand lives in its own module: worker (cli_worker.py), send and tail
(cli_send_tail.py), topics (cli_topics.py), groups (cli_groups.py), tables and
agents (cli_app.py), broker (cli_broker.py), users and tokens (cli_users.py),
schemas (cli_schemas.py), acls (cli_acls.py).
What they share (the app, the transport, common options) is cli_common.py.
"""

from __future__ import annotations

from typing import Any

import click

from streams.cli_acls import acls
from streams.cli_app import agents, tables
from streams.cli_broker import broker
from streams.cli_common import (
    Context,
    common_options,
    context_of,
    load_app,
    setup_logging,
)
from streams.cli_groups import groups
from streams.cli_schemas import schemas
from streams.cli_send_tail import send, tail
from streams.cli_topics import topics
from streams.cli_users import tokens, users
from streams.cli_worker import run_worker, worker

__all__ = ["Context", "cli", "load_app", "main", "run_worker", "setup_logging"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="streams", prog_name="streams")
@common_options
@click.pass_context
def cli(click_ctx: click.Context) -> None:
    """streams: stream processing with a built-in, Kafka-compatible log.

    Options such as -A, --broker and --data may come before the command or after it."""
    context_of(click_ctx)


for command in (
    worker,
    send,
    tail,
    topics,
    groups,
    tables,
    agents,
    broker,
    users,
    tokens,
    schemas,
    acls,
):
    cli.add_command(command)


def main(obj: Any = None) -> None:
    cli(obj=obj)
