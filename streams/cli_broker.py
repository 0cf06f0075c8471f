"""`streams broker`: its flags, turned into a runtime.broker.server.Broker."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
from collections.abc import Callable
from typing import Any

import click

from runtime.broker.limits import BrokerLimits
from runtime.broker.sasl import MECHANISMS
from runtime.errors import StreamsRuntimeError
from streams.cli_common import LOG_LEVELS


def limits_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """One --flag per BrokerLimits field, its default and help from the field."""
    for field in reversed(dataclasses.fields(BrokerLimits)):
        command = click.option(
            "--" + field.name.replace("_", "-"),
            field.name,
            type=click.IntRange(min=1),
            default=field.default,
            show_default=True,
            help=field.metadata["help"],
        )(command)
    return command


_PEM = click.Path(exists=True, dir_okay=False)


def security_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--tls-cert", type=_PEM, help="PEM certificate chain of SSL/SASL_SSL listeners"
        ),
        click.option("--tls-key", type=_PEM, help="PEM private key of --tls-cert (unencrypted)"),
        click.option(
            "--tls-client-ca",
            type=_PEM,
            help="PEM CA certificates: SSL listeners require client certificates they signed "
            "(mutual TLS; principal User:<CN>)",
        ),
        click.option(
            "--users",
            type=click.Path(dir_okay=False),
            help="users file of SASL listeners (SCRAM credentials: streams users add)",
        ),
        click.option(
            "--sasl-mechanism",
            "sasl_mechanisms",
            type=click.Choice(MECHANISMS),
            multiple=True,
            help="SASL mechanism to enable (repeatable; default: all of them)",
        ),
        click.option(
            "--super-user",
            "super_users",
            multiple=True,
            metavar="User:NAME",
            help="a principal every ACL check allows (repeatable)",
        ),
        click.option(
            "--allow-everyone-if-no-acl/--deny-if-no-acl",
            "allow_everyone_if_no_acl",
            default=None,
            help="whether a resource no ACL names is open to everyone "
            "[default: allow when every listener is PLAINTEXT, else deny]",
        ),
        click.option(
            "--sasl-session-lifetime-ms",
            type=click.IntRange(min=0),
            default=0,
            show_default=True,
            help="SASL sessions expire after this; clients re-authenticate (KIP-368) or are "
            "disconnected (Kafka: connections.max.reauth.ms; 0: never)",
        ),
        click.option(
            "--http-auth",
            "http_auth",
            type=click.Choice(["basic", "bearer"]),
            multiple=True,
            help="REST proxy authentication (repeatable): basic (the --users file), "
            "bearer (the --http-tokens file)",
        ),
        click.option(
            "--http-tokens",
            type=click.Path(dir_okay=False),
            help="bearer tokens of the REST proxy (streams tokens add)",
        ),
        click.option(
            "--allow-insecure",
            is_flag=True,
            help="allow listeners that authenticate nobody (and the REST proxy) on "
            "addresses other than loopback",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.command()
@click.option(
    "--data", default="./streams-data/broker", show_default=True, help="the log's data directory"
)
@click.option(
    "--listen",
    multiple=True,
    default=("127.0.0.1:9092",),
    show_default=True,
    help="[PROTOCOL://]HOST:PORT, PROTOCOL one of PLAINTEXT (the default), SSL, "
    "SASL_PLAINTEXT, SASL_SSL (repeatable: one listener per protocol)",
)
@click.option(
    "--advertise",
    multiple=True,
    help="[PROTOCOL://]HOST[:PORT] clients of that protocol's listener are sent to (repeatable)",
)
@click.option(
    "--http",
    "http",
    default=None,
    help="[http://|https://]HOST:PORT of the REST proxy (off by default; https uses --tls-cert)",
)
@click.option(
    "--partitions", default=1, show_default=True, help="partitions of auto-created topics"
)
@click.option("--no-auto-create", is_flag=True, help="do not create topics on first use")
@click.option(
    "--flush",
    type=click.Choice(["os", "batch", "interval"]),
    default="os",
    show_default=True,
    help="when appends are fsynced",
)
@click.option(
    "--initial-rebalance-delay-ms",
    default=0,
    show_default=True,
    help="how long a new group waits for more members before its first rebalance "
    "(Kafka's group.initial.rebalance.delay.ms)",
)
@click.option(
    "-l",
    "--loglevel",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default="info",
    show_default=True,
)
@security_options
@limits_options
def broker(
    data: str,
    listen: tuple[str, ...],
    advertise: tuple[str, ...],
    http: str | None,
    partitions: int,
    no_auto_create: bool,
    flush: str,
    initial_rebalance_delay_ms: int,
    loglevel: str,
    sasl_mechanisms: tuple[str, ...],
    **values: Any,
) -> None:
    """Serve the built-in log over the Kafka wire protocol (and HTTP/JSON)."""
    from runtime.broker.endpoints import (
        SecuritySettings,
        check_security,
        parse_endpoints,
        parse_http,
    )
    from runtime.log.config import FlushPolicy
    from runtime.security.acls import check_principal
    from streams.cli import setup_logging

    setup_logging(loglevel)
    security_fields = {f.name for f in dataclasses.fields(SecuritySettings)}
    security_values = {k: values.pop(k) for k in list(values) if k in security_fields}
    try:
        endpoints = parse_endpoints(listen, advertise)
        http_at, http_tls = parse_http(http) if http else (None, False)
        limits = BrokerLimits(**values)
        security_values["http_auth"] = tuple(dict.fromkeys(security_values["http_auth"]))
        security = SecuritySettings(
            **security_values, sasl_mechanisms=sasl_mechanisms or MECHANISMS, http_tls=http_tls
        )
        for principal in security.super_users:
            check_principal(principal)
        check_security(endpoints, security, http_at)
    except StreamsRuntimeError as exc:  # a listener that would let anyone in
        raise click.ClickException(str(exc)) from exc
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    try:
        asyncio.run(
            _serve(
                data,
                listen=endpoints,
                http=http_at,
                security=security,
                flush=FlushPolicy(flush),
                auto_create_topics=not no_auto_create,
                default_partitions=partitions,
                initial_rebalance_delay_ms=initial_rebalance_delay_ms,
                limits=limits,
            )
        )
    except (StreamsRuntimeError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc


async def _serve(data: str, **settings: Any) -> None:
    """Run a Broker until SIGINT or SIGTERM."""
    from runtime.broker.server import Broker, Endpoint

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Broker(data, **settings) as running:
        bound = [Endpoint(p, address) for p, address in running.addresses.items()]
        click.echo(f"broker ready on {' '.join(map(str, bound))}", err=True)
        await running.serve_until(stop)
