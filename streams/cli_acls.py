"""`streams acls`: a broker's ACLs, listed, added and removed over the Kafka protocol.

    streams acls list --broker kafka://admin@host:9093?security_protocol=SASL_SSL&...
    streams acls add --allow-principal User:alice --operation read --topic orders \\
        --resource-pattern-type prefixed --broker ...
    streams acls remove --principal User:alice --topic orders --broker ...

Like Kafka's kafka-acls: a resource (--topic, --group, --transactional-id,
--cluster), principals to allow or deny, operations, hosts (default `*`). The
broker URL is a `kafka://` one, the password from the environment or a file
(runtime/client/security.py); the caller needs ALTER on the cluster to change
ACLs, DESCRIBE to list them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import click

from runtime.errors import StreamsRuntimeError
from runtime.security.acls import (
    CLUSTER_NAME,
    Acl,
    AclFilter,
    InvalidAclError,
    Operation,
    PatternType,
    Permission,
    ResourceType,
    check_acl,
)

_OPERATIONS = [o.name.lower() for o in Operation if o > Operation.ANY]
_PATTERNS = ["literal", "prefixed"]


def _resource_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--topic", help="the topic (or prefix) the ACL is about"),
        click.option("--group", help="the consumer group (or prefix)"),
        click.option("--transactional-id", help="the transactional id (or prefix)"),
        click.option("--cluster", is_flag=True, help="the cluster (kafka-cluster)"),
        click.option(
            "--resource-pattern-type",
            type=click.Choice(_PATTERNS),
            default=None,
            help="the name is a LITERAL one (or *), or a PREFIXED one [add: literal]",
        ),
        click.option(
            "--broker",
            required=True,
            envvar="STREAMS_BROKER",
            help="kafka://[USER@]HOST:PORT[?OPTIONS] of the broker (or $STREAMS_BROKER)",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _resource(
    topic: str | None, group: str | None, transactional_id: str | None, cluster: bool
) -> tuple[ResourceType, str] | None:
    given = [
        (rtype, name)
        for rtype, name in (
            (ResourceType.TOPIC, topic),
            (ResourceType.GROUP, group),
            (ResourceType.TRANSACTIONAL_ID, transactional_id),
            (ResourceType.CLUSTER, CLUSTER_NAME if cluster else None),
        )
        if name is not None
    ]
    if len(given) > 1:
        raise click.UsageError(
            "name one resource: --topic, --group, --transactional-id or --cluster"
        )
    return given[0] if given else None


def _run(broker: str, work: Callable[[Any], Coroutine[Any, Any, None]]) -> None:
    from runtime.kafka_transport import KafkaTransport

    if not broker.startswith("kafka://"):
        raise click.UsageError("ACLs live on a broker: give --broker kafka://HOST:PORT")

    async def run() -> None:
        transport = KafkaTransport(broker)
        await transport.start()
        try:
            await work(transport.cluster)
        finally:
            await transport.stop()

    try:
        asyncio.run(run())
    except (StreamsRuntimeError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
def acls() -> None:
    """A broker's ACLs: list, add, remove (over the Kafka protocol)."""


@acls.command("list")
@click.option("--principal", help="only the ACLs of this principal")
@_resource_options
def acls_list(principal: str | None, **values: Any) -> None:
    """List the ACLs (of a resource, a principal, or all of them)."""
    selector = _selector(principal, None, **values)

    async def work(cluster: Any) -> None:
        from runtime.client.acls import describe_acls

        for acl in await describe_acls(cluster, selector):
            click.echo(str(acl))

    _run(values["broker"], work)


def _selector(
    principal: str | None,
    host: str | None,
    *,
    topic: str | None,
    group: str | None,
    transactional_id: str | None,
    cluster: bool,
    resource_pattern_type: str | None,
    broker: str,
    operation: Operation = Operation.ANY,
) -> AclFilter:
    resource = _resource(topic, group, transactional_id, cluster)
    rtype, name = resource if resource else (ResourceType.ANY, None)
    pattern = PatternType[resource_pattern_type.upper()] if resource_pattern_type else None
    if pattern is None:
        pattern = PatternType.LITERAL if name is not None else PatternType.ANY
    return AclFilter(rtype, name, pattern, principal, host, operation)


@acls.command("add")
@click.option("--allow-principal", multiple=True, help="User:NAME to allow (repeatable)")
@click.option("--deny-principal", multiple=True, help="User:NAME to deny (repeatable)")
@click.option(
    "--operation", "operations", multiple=True, required=True, type=click.Choice(_OPERATIONS)
)
@click.option("--host", "hosts", multiple=True, help="client address the ACL is for [*]")
@_resource_options
def acls_add(
    allow_principal: tuple[str, ...],
    deny_principal: tuple[str, ...],
    operations: tuple[str, ...],
    hosts: tuple[str, ...],
    **values: Any,
) -> None:
    """Add ACLs: each principal, operation and host, on one resource."""
    resource = _resource(
        values["topic"], values["group"], values["transactional_id"], values["cluster"]
    )
    if resource is None:
        raise click.UsageError(
            "name the resource: --topic, --group, --transactional-id or --cluster"
        )
    if not allow_principal and not deny_principal:
        raise click.UsageError("give --allow-principal or --deny-principal")
    pattern = PatternType[(values["resource_pattern_type"] or "literal").upper()]
    principals = [(p, Permission.ALLOW) for p in allow_principal]
    principals += [(p, Permission.DENY) for p in deny_principal]
    try:
        bindings = [
            check_acl(Acl(*resource, pattern, p, host, Operation[op.upper()], permission))
            for p, permission in principals
            for op in operations
            for host in hosts or ("*",)
        ]
    except InvalidAclError as exc:
        raise click.BadParameter(str(exc)) from exc

    async def work(cluster: Any) -> None:
        from runtime.client.acls import create_acls

        await create_acls(cluster, bindings)
        for acl in bindings:
            click.echo(f"added {acl}")

    _run(values["broker"], work)


@acls.command("remove")
@click.option("--principal", help="only this principal's ACLs")
@click.option("--operation", type=click.Choice(_OPERATIONS), help="only this operation's")
@click.option("--host", help="only the ACLs for this host")
@_resource_options
def acls_remove(
    principal: str | None, operation: str | None, host: str | None, **values: Any
) -> None:
    """Remove the ACLs matching the options (at least a resource or a principal)."""
    if principal is None and not any(
        values[k] for k in ("topic", "group", "transactional_id", "cluster")
    ):
        raise click.UsageError("name a resource or a --principal: not every ACL at once")
    chosen = Operation[operation.upper()] if operation else Operation.ANY
    selector = _selector(principal, host, operation=chosen, **values)

    async def work(cluster: Any) -> None:
        from runtime.client.acls import delete_acls

        for acl in await delete_acls(cluster, [selector]):
            click.echo(f"removed {acl}")

    _run(values["broker"], work)
