"""`streams broker`: the built-in log served over the Kafka wire protocol.

This module is the broker's lifecycle: the log, the group coordinator, the
Kafka listeners and the REST proxy, started and stopped together. Accepting
connections is listener.py; serving one, serving.py; reading its frames,
connection.py; authenticating it, sasl.py.

Listeners (endpoints.py) each have a security protocol: PLAINTEXT, SSL,
SASL_PLAINTEXT, SASL_SSL. Their settings are checked before anything is
bound, and the broker refuses to start with a listener that would let anyone
in from the network (unless allowed): see endpoints.check_security. The
connection limits, the request budget and the idle timeout are the broker's,
shared by every listener.

Every resource a client can ask for has a limit (limits.py): connections in
total and per address (connection_limits.py), idle time, request size, bytes of
requests in memory (budget.py), topics and partitions (topic_creation.py). At
start the soft RLIMIT_NOFILE is lifted to the hard limit and the limits are
lowered, if they must, so that the broker at its limits still has file
descriptors left. Should accept() fail anyway (EMFILE and the like), it is
logged once per interval with a count, instead of a traceback per attempt: by
the Kafka listener itself, and for the REST proxy's (asyncio's) by the loop's
exception handler the broker installs.

Who may do what is decided by the ACLs in the data directory (acls.json,
managed with CreateAcls/DeleteAcls), the super users and the no-ACL rule
(authorize.py); the ACL file is read with the TLS and users files, before
the log is opened, so a broker that cannot read it starts nothing.

Lifecycle: `async with Broker(...) as broker: await broker.serve_until(stop)`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import ssl
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from runtime.broker.authorize import Access, AclStore
from runtime.broker.budget import ByteBudget
from runtime.broker.connection import Connection
from runtime.broker.connection_limits import ConnectionLimits
from runtime.broker.coordinator import GroupCoordinator
from runtime.broker.dashboard import BrokerDashboard
from runtime.broker.endpoints import (
    Address,
    Endpoint,
    SecurityProtocol,
    SecuritySettings,
    advertised,
    check_security,
)
from runtime.broker.handlers import BrokerSettings, Handlers
from runtime.broker.http_auth import HttpAuthenticator
from runtime.broker.limits import BrokerLimits, raise_open_files_limit
from runtime.broker.listener import OUT_OF_RESOURCES, Listener
from runtime.broker.metrics import BrokerCollector, BrokerMetrics, HealthRoutes
from runtime.broker.rest import RestProxy
from runtime.broker.sasl import SaslConfig
from runtime.broker.serving import ListenerContext, serve_connection
from runtime.broker.transactions import TransactionCoordinator, TransactionSettings
from runtime.broker.txn_api import producer_ids
from runtime.errors import UnknownTopicError
from runtime.log.config import FlushPolicy
from runtime.logs import RateLimitedLog
from runtime.schemas.http import RegistryApi
from runtime.schemas.registry import SchemaRegistry
from runtime.schemas.topic_log import TopicRegistryLog
from runtime.security.tls import server_context
from runtime.security.tokens import TokensFile
from runtime.security.users import UsersFile
from runtime.transport import EmbeddedTransport
from runtime.types import TopicPartition

__all__ = ["Address", "Broker", "Endpoint", "SecurityProtocol", "SecuritySettings"]

logger = logging.getLogger(__name__)

REQUEST_BYTES_MAX = BrokerLimits().request_bytes_max  # Kafka's socket.request.max.bytes
# the kernel caps it at net.core.somaxconn; a long queue lets a flood of
# connections be refused in batches instead of dropping a normal client's SYN
LISTEN_BACKLOG = 1024

_Security = tuple[ssl.SSLContext | None, SaslConfig | None]
"""A listener's TLS context and SASL settings (None: no TLS, no SASL)."""


class Broker:
    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None,
        *,
        listen: Address | Sequence[Endpoint],
        advertise: Address | None = None,
        http: Address | None = None,
        security: SecuritySettings = SecuritySettings(),  # noqa: B008 (frozen value)
        flush: FlushPolicy | None = None,
        auto_create_topics: bool = True,
        default_partitions: int = 1,
        limits: BrokerLimits = BrokerLimits(),  # noqa: B008 (frozen value)
        min_session_timeout_ms: int = 1000,
        initial_rebalance_delay_ms: int = 0,
        transactions: TransactionSettings | None = None,
        transport: EmbeddedTransport | None = None,
    ) -> None:
        if isinstance(listen, Address):  # one PLAINTEXT listener, as before listeners had protocols
            listen = [Endpoint(SecurityProtocol.PLAINTEXT, listen, advertise)]
        elif advertise is not None:
            raise ValueError("advertise= is for one Address; give each Endpoint its advertise")
        self._endpoints = list(listen)
        self._security = security
        self._http = http
        self._auto_create = auto_create_topics
        self._default_partitions = default_partitions
        self.limits = limits  # as asked; start() may lower them to fit the fd limit
        self._min_session_timeout_ms = min_session_timeout_ms
        self._initial_rebalance_delay_ms = initial_rebalance_delay_ms
        # where the ACL file lives: a broker serving another owner's log keeps none
        self._data_dir = Path(data_dir) if data_dir is not None else None
        self._users: UsersFile | None = None
        self.acls: AclStore | None = None
        # A transport given is another owner's log (a log:// worker sharing its
        # own): served while the broker runs, closed by its owner, not here.
        self._owns_transport = transport is None
        if transport is None:
            url = f"log://{Path(data_dir).resolve()}" if data_dir is not None else "memory://"
            transport = EmbeddedTransport(url, data_dir, flush=flush)
        elif data_dir is not None:
            raise ValueError("give the broker a data_dir or a transport, not both")
        self.transport = transport
        self._ratelog = RateLimitedLog(logger, limits.log_interval_ms / 1000)
        self.connection_limits = ConnectionLimits(
            limits.connections_max, limits.connections_per_ip_max, self._ratelog
        )
        self.budget = ByteBudget(limits.queued_max_request_bytes)
        self._listeners: list[Listener] = []
        self._listener_contexts: dict[SecurityProtocol, ListenerContext] = {}
        self._http_runner: web.AppRunner | None = None
        self._http_tls: ssl.SSLContext | None = None
        self._http_auth: HttpAuthenticator | None = None
        self._coordinator: GroupCoordinator | None = None
        self._transactions: TransactionCoordinator | None = None
        self._txn_settings = transactions or TransactionSettings()
        self._next_producer_id = producer_ids()
        self._handlers: Handlers | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._housekeeping: asyncio.Task[None] | None = None
        self._loop_handler: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.address: Address | None = None  # the first listener's, bound
        self.addresses: dict[SecurityProtocol, Address] = {}  # every listener's, bound
        self.advertised: dict[SecurityProtocol, Address] = {}
        self.http_address: Address | None = None
        self.metrics = BrokerMetrics()
        self._dashboard: BrokerDashboard | None = None

    async def __aenter__(self) -> Broker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        check_security(self._endpoints, self._security, self._http)
        # TLS files and the users file are read before the log is opened: a
        # broker that cannot use them stops having touched nothing
        contexts = self._security_contexts()
        self.acls = AclStore.open(
            self._data_dir,
            super_users=self._security.super_users,
            allow_everyone_if_no_acl=self._security.allows_everyone_if_no_acl(self._endpoints),
        )
        self._fit_limits_to_open_files()
        self._install_loop_handler()
        await self.transport.start()
        try:
            self._coordinator = GroupCoordinator(
                self.transport.offset_store,
                min_session_timeout_ms=self._min_session_timeout_ms,
                initial_rebalance_delay_ms=self._initial_rebalance_delay_ms,
                partition_exists=self._partition_exists,
            )
            await self._coordinator.start()
            if self._owns_transport:
                self._transactions = TransactionCoordinator(
                    self.transport.log,
                    self.transport.offset_store,
                    self._next_producer_id,
                    notify_append=self.transport.notify_append,
                    settings=self._txn_settings,
                )
                await self._transactions.start()
            else:
                # another owner's log (a log:// worker sharing its own): one coordinator
                # per log, the owner's, which its exactly_once commits use too
                self._transactions = await self.transport.transaction_coordinator()
            await self._start_kafka(contexts)
            if self._http is not None:
                await self._start_http(self._http)
            self._housekeeping = asyncio.create_task(self._flush_logs_periodically())
        except BaseException:
            await self.stop()
            raise
        for endpoint in self._endpoints:
            logger.info(
                "broker listening on %s://%s (advertised %s) data=%s",
                endpoint.protocol,
                self.addresses[endpoint.protocol],
                self.advertised[endpoint.protocol],
                self.transport.url,
            )

    def _partition_exists(self, tp: TopicPartition) -> bool:
        """Whether commits for `tp` may be kept (OffsetCommit answers
        UNKNOWN_TOPIC_OR_PARTITION otherwise, as Kafka does)."""
        try:
            return 0 <= tp.partition < self.transport.log.topic(tp.topic).partitions
        except UnknownTopicError:
            return False

    def _fit_limits_to_open_files(self) -> None:
        open_files = raise_open_files_limit()
        self.limits, lowered = self.limits.fit_to_open_files(open_files)
        if lowered:
            logger.warning(
                "limits lowered to fit %d open files (RLIMIT_NOFILE): %s",
                open_files,
                " ".join(lowered),
            )
        self.connection_limits.total_max = self.limits.connections_max
        self.connection_limits.per_host_max = self.limits.connections_per_ip_max
        logger.info(
            "limits open_files=%d connections_max=%d connections_per_ip_max=%d "
            "partitions_max=%d topics_max=%d queued_max_request_bytes=%d",
            open_files,
            self.limits.connections_max,
            self.limits.connections_per_ip_max,
            self.limits.partitions_max,
            self.limits.topics_max,
            self.limits.queued_max_request_bytes,
        )

    async def _start_kafka(self, contexts: dict[SecurityProtocol, _Security]) -> None:
        assert self._coordinator is not None and self._transactions is not None
        assert self.acls is not None
        for endpoint in self._endpoints:
            self._bind(endpoint, *contexts[endpoint.protocol])
        first = self._endpoints[0].protocol
        settings = BrokerSettings(
            self.advertised[first].host,
            self.advertised[first].port,
            auto_create_topics=self._auto_create,
            default_partitions=self._default_partitions,
            limits=self.limits,
        )
        self._handlers = Handlers(
            self.transport,
            self._coordinator,
            settings,
            self._ratelog,
            self._transactions,
            self._next_producer_id,
            Access(self.acls, self._ratelog),
            self._users,
        )
        self._handlers.metrics = self.metrics
        for listener in self._listeners:
            listener.start()

    def _security_contexts(self) -> dict[SecurityProtocol, _Security]:
        """Per protocol: the TLS context and the SASL settings its listener uses.
        Also makes the REST proxy's (self._http_tls, self._http_auth)."""
        settings = self._security
        protocols = {e.protocol for e in self._endpoints}
        server_tls = mutual_tls = None
        if any(p.tls for p in protocols) or (self._http is not None and settings.http_tls):
            assert settings.tls_cert is not None and settings.tls_key is not None
            server_tls = server_context(settings.tls_cert, settings.tls_key)
        if SecurityProtocol.SSL in protocols:
            assert settings.tls_cert is not None and settings.tls_key is not None
            # only SSL listeners ask for client certificates: SASL_SSL clients
            # authenticate with SASL, and most have no certificate to show
            mutual_tls = server_context(settings.tls_cert, settings.tls_key, settings.tls_client_ca)
        users = UsersFile(settings.users) if settings.users is not None else None
        self._users = users  # also the SCRAM-credential APIs'
        sasl = None
        if any(p.sasl for p in protocols):
            assert users is not None
            sasl = SaslConfig(
                users,
                settings.sasl_mechanisms,
                session_lifetime_ms=settings.sasl_session_lifetime_ms,
            )
        self._http_tls = server_tls if settings.http_tls else None
        if settings.http_auth:
            tokens = TokensFile(settings.http_tokens) if settings.http_tokens else None
            self._http_auth = HttpAuthenticator(
                settings.http_auth, users=users, tokens=tokens, ratelog=self._ratelog
            )
        return {
            SecurityProtocol.PLAINTEXT: (None, None),
            SecurityProtocol.SSL: (mutual_tls, None),
            SecurityProtocol.SASL_PLAINTEXT: (None, sasl),
            SecurityProtocol.SASL_SSL: (server_tls, sasl),
        }

    def _bind(
        self, endpoint: Endpoint, tls: ssl.SSLContext | None, sasl: SaslConfig | None
    ) -> None:
        protocol = endpoint.protocol
        listener = Listener(
            endpoint.address.host,
            endpoint.address.port,
            backlog=LISTEN_BACKLOG,
            limits=self.connection_limits,
            protocol_factory=functools.partial(self._new_connection, protocol=protocol),
            ratelog=self._ratelog,
            ssl_context=tls,
            handshake_timeout_s=self.limits.request_timeout_ms / 1000,
        )
        self._listeners.append(listener)
        listener.bind()
        bound = Address(endpoint.address.host, listener.port)
        self.addresses[protocol] = bound
        self.advertised[protocol] = advertised(endpoint, listener.port)  # known once bound
        self.address = self.address or bound
        self._listener_contexts[protocol] = ListenerContext(
            protocol, self.advertised[protocol], sasl
        )

    async def _start_http(self, address: Address) -> None:
        auth = [self._http_auth.middleware] if self._http_auth is not None else []
        assert self.acls is not None and self._handlers is not None  # Kafka side first
        proxy = RestProxy(
            self.transport,
            Access(self.acls, self._ratelog),
            auto_create_topics=self._auto_create,
            default_partitions=self._default_partitions,
            creator=self._handlers.creator,
        )
        app = proxy.app(before=auth)
        registry = SchemaRegistry(TopicRegistryLog(self.transport))
        await registry.start()  # replays _schemas: the registry as it was
        RegistryApi(registry).add_routes(app)
        HealthRoutes(self._metrics_registry(), self._not_ready).add_to(app)
        self._dashboard = BrokerDashboard(
            self.transport, self.metrics, lambda: self._coordinator, lambda: len(self._connections)
        )
        self._dashboard.add_to(app)
        self._dashboard.start()
        self._http_runner = web.AppRunner(app, access_log=None)
        await self._http_runner.setup()
        site = web.TCPSite(
            self._http_runner, address.host, address.port, ssl_context=self._http_tls
        )
        await site.start()
        server = site._server  # the bound port, when asked for port 0
        port = server.sockets[0].getsockname()[1] if server is not None else address.port
        self.http_address = Address(address.host, port)
        scheme = "https" if self._http_tls is not None else "http"
        auth_text = "+".join(self._http_auth.schemes) if self._http_auth else "no authentication"
        logger.info(
            "REST proxy and schema registry listening on %s://%s (%s)",
            scheme,
            self.http_address,
            auth_text,
        )

    def _metrics_registry(self) -> CollectorRegistry:
        registry = CollectorRegistry(auto_describe=False)  # the broker's own, not the global
        coordinator = self._coordinator
        states = (lambda: [g.state for g in coordinator.list_groups()]) if coordinator else list
        registry.register(
            BrokerCollector(self.metrics, self.transport, lambda: len(self._connections), states)
        )
        return registry

    def _not_ready(self) -> list[str]:
        return [] if self._handlers is not None else ["the Kafka listeners to start"]

    async def stop(self) -> None:
        for listener in self._listeners:
            listener.close()
        self._listeners = []
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._handlers is not None:
            await self._handlers.creator.idle()  # a thread may still be creating a topic
        if self._http_runner is not None:
            await self._http_runner.cleanup()
            self._http_runner = None
        if self._dashboard is not None:
            await self._dashboard.stop()
            self._dashboard = None
        if self._transactions is not None:
            if self._owns_transport:  # else the owner's transport stops it
                await self._transactions.stop()
            self._transactions = None
        if self._coordinator is not None:
            await self._coordinator.stop()
            self._coordinator = None
        if self._owns_transport:
            await self.transport.stop()
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            await asyncio.gather(self._housekeeping, return_exceptions=True)
            self._housekeeping = None
        self._ratelog.flush()
        self._restore_loop_handler()

    async def serve_until(self, stop: asyncio.Event) -> None:
        await stop.wait()

    async def _flush_logs_periodically(self) -> None:
        # counts of repeated warnings go out even when the repeats stop
        interval_s = self.limits.log_interval_ms / 1000
        while True:
            await asyncio.sleep(interval_s)
            self._ratelog.flush(due_only=True)

    # --- the loop's exception handler ----------------------------------------------

    def _install_loop_handler(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_handler = self._loop.get_exception_handler()
        self._loop.set_exception_handler(self._on_loop_exception)

    def _restore_loop_handler(self) -> None:
        if self._loop is not None:
            self._loop.set_exception_handler(self._loop_handler)
            self._loop = None

    def _on_loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        exc = context.get("exception")
        if "socket" in context and isinstance(exc, OSError) and exc.errno in OUT_OF_RESOURCES:
            # the REST proxy's listener is asyncio's, which reports accept
            # failures here, retrying (and so reporting) many times a second
            self._ratelog.log(
                logging.ERROR,
                ("http-accept", exc.errno),
                "REST proxy: accepting connections failed: %s",
                exc.strerror,
            )
        elif self._loop_handler is not None:
            self._loop_handler(loop, context)
        else:
            loop.default_exception_handler(context)

    # --- connections ---------------------------------------------------------------

    def _new_connection(
        self, host: str, release: Callable[[], None], *, protocol: SecurityProtocol
    ) -> Connection:
        listener = self._listener_contexts[protocol]
        return Connection(
            host,
            release,
            functools.partial(self._on_open, listener=listener),
            idle_s=self.limits.connections_max_idle_ms / 1000,
        )

    def _on_open(self, conn: Connection, *, listener: ListenerContext) -> None:
        task = asyncio.get_running_loop().create_task(self._serve(conn, listener))
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)

    async def _serve(self, conn: Connection, listener: ListenerContext) -> None:
        assert self._handlers is not None
        try:
            await serve_connection(
                conn, self._handlers, self.budget, self.limits, self._ratelog, listener
            )
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away
        except Exception:
            self._ratelog.log(
                logging.ERROR,
                ("failed", conn.host),
                "connection from %s failed: closing it",
                conn.host,
                exc_info=True,
            )
        finally:
            conn.close()
            conn.release()
            if conn.closed_because is not None:
                self._ratelog.log(
                    logging.INFO if conn.closed_because == "idle" else logging.WARNING,
                    ("timeout", conn.host, conn.closed_because),
                    "closed connection from %s: %s",
                    conn.host,
                    conn.closed_because,
                )
