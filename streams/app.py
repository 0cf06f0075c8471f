"""The App: where topics, agents, tables, timers and tasks are declared.

The app only holds definitions; a Worker runs them. Definitions reach the
running parts through one small Wiring (producer, transport, conductor).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from croniter import croniter

from runtime.compression import codec_id
from runtime.errors import InvalidTopicError
from streams.agent import Agent, AgentFun, Sink
from streams.codec import Codec
from streams.errors import ConfigurationError
from streams.exactly_once import COMMIT_INTERVAL_S, GUARANTEES
from streams.stream_joins import JoinWindows
from streams.table import GlobalTable, Table
from streams.topic import Topic
from streams.wiring import Wiring

F = TypeVar("F", bound=Callable[..., Any])

DECODE_ERROR_POLICIES = ("dead-letter", "stop", "skip")
DEAD_LETTER_SUFFIX = "-dead-letters"
RESERVED_PAGES = frozenset({"metrics", "health", "ready", "tables", "api", "static"})


class App:
    """A streams application.

    broker:            memory://, log://[PATH] (default: the embedded log under
                       data_dir/log) or kafka://HOST:PORT
    data_dir:          where the embedded log and table stores live
    store:             default table store, memory:// or rocksdb:// (default:
                       rocksdb:// unless the broker is memory://)
    on_decode_error:   what a worker does with a record whose key or value does
                       not decode (keys and values alike): "dead-letter"
                       (default): log it at ERROR with its coordinates, copy it
                       as it is to the topic `<id>-dead-letters` (headers
                       `__streams.errors.*` say where it came from and why) and
                       go on, so that nothing is lost and one bad record does
                       not stop the app on every restart; "stop": stop the
                       worker, naming topic, partition and offset; "skip": log
                       it at ERROR and go on.
    processing_guarantee: "at_least_once" (default): a crash replays the events
                       since the last commit, so tables and sinks may see them
                       twice; "exactly_once": each commit is one transaction
                       over the table changelogs, sink and repartition records
                       and the consumed offsets (read_committed readers see
                       each result once). See docs/guarantees.md for its cost.
    commit_interval_s: how often processed offsets are committed (default 1 s,
                       0.1 s under exactly_once: read_committed readers see
                       results when their transaction commits).
    worker_name:       under exactly_once, this worker's part of its
                       transactional id (default: one kept in data_dir).
    num_standby_replicas: with kafka://, how many other workers keep a warm copy
                       of each table partition (a takeover then replays only
                       what the standby had not applied yet).
    session_timeout_s: with kafka://, how long a silent worker keeps its
                       partitions before the group gives them to others.
    log_flush:         when the embedded log fsyncs: "os" (default: left to the
                       OS; survives a process crash, not a power loss), "batch"
                       (every append) or "interval" (every log_flush_interval_ms).
    schema_registry_url: the Confluent-API schema registry of topics with
                       value_serializer (or key_serializer) "avro", "protobuf" or
                       "json_schema" (default: $STREAMS_SCHEMA_REGISTRY; `streams
                       broker --http` serves one).
    metrics_topic:     where each worker writes its own metrics every
                       metrics_interval_s (streams/metrics_topic.py); None: nowhere.
    compression:       the codec of every batch the app writes: "gzip", "snappy",
                       "lz4", "zstd" or None (default); app.topic(compression=)
                       chooses per topic (streams/compression.py).
    """

    def __init__(
        self,
        id: str,
        *,
        broker: str = "log://",
        data_dir: str = "./streams-data",
        store: str | None = None,
        topic_partitions: int = 8,
        on_decode_error: str = "dead-letter",
        commit_interval_s: float | None = None,
        processing_guarantee: str = "at_least_once",
        worker_name: str | None = None,
        log_flush: str = "os",
        log_flush_interval_ms: int = 1000,
        num_standby_replicas: int = 0,
        session_timeout_s: float = 10.0,
        schema_registry_url: str | None = None,
        metrics_topic: str | None = "streams-metrics",
        metrics_interval_s: float = 5.0,
        compression: str | None = None,
    ) -> None:
        if not id:
            raise ConfigurationError("an app needs an id")
        if on_decode_error not in DECODE_ERROR_POLICIES:
            raise ConfigurationError(
                f"on_decode_error must be one of {DECODE_ERROR_POLICIES}, not {on_decode_error!r}"
            )
        if processing_guarantee not in GUARANTEES:
            raise ConfigurationError(
                f"processing_guarantee must be one of {GUARANTEES}, not {processing_guarantee!r}"
            )
        self._commit_interval_given = commit_interval_s is not None
        if commit_interval_s is None:
            commit_interval_s = COMMIT_INTERVAL_S[processing_guarantee]
        if commit_interval_s <= 0:
            raise ConfigurationError("commit_interval_s must be > 0")
        if log_flush not in ("os", "batch", "interval"):
            raise ConfigurationError(
                f"log_flush must be 'os', 'batch' or 'interval', not {log_flush!r}"
            )
        if num_standby_replicas < 0:
            raise ConfigurationError("num_standby_replicas must be >= 0")
        if session_timeout_s <= 0:
            raise ConfigurationError("session_timeout_s must be > 0")
        if metrics_interval_s <= 0:
            raise ConfigurationError("metrics_interval_s must be > 0")
        try:
            codec_id(compression)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        self.metrics_topic = metrics_topic
        self.metrics_interval_s = metrics_interval_s
        self.id = id
        self.num_standby_replicas = num_standby_replicas
        self.session_timeout_s = session_timeout_s
        self.log_flush = log_flush
        self.log_flush_interval_ms = log_flush_interval_ms
        self.broker = broker
        self.data_dir = data_dir
        self.store = store
        self.commit_interval_s = commit_interval_s
        self.processing_guarantee = processing_guarantee
        self.worker_name = worker_name
        self.wiring = Wiring(
            app_id=id,
            default_partitions=topic_partitions,
            on_decode_error=on_decode_error,
            schema_registry_url=schema_registry_url,
            compression=compression,
        )
        self.topics: dict[str, Topic] = {}
        self.agents: dict[str, Agent] = {}
        self.tables: dict[str, Table] = {}
        self.wiring.add_table = self._add_table
        self.startup_tasks: list[Callable[..., Any]] = []
        self.timers: list[tuple[float, Callable[..., Any]]] = []
        self.crontabs: list[tuple[str, Callable[..., Any]]] = []
        self.pages: list[tuple[str, Callable[..., Any]]] = []
        self._client: Any = None
        if on_decode_error == "dead-letter":
            try:
                self.wiring.dead_letters = self.topic(
                    id + DEAD_LETTER_SUFFIX, key_type=bytes, value_type=bytes, partitions=1
                )
            except InvalidTopicError as exc:
                raise ConfigurationError(
                    f"app id {id!r} names its topics ({id}{DEAD_LETTER_SUFFIX}, changelogs): {exc}"
                ) from exc

    def __repr__(self) -> str:
        return f"<App {self.id} broker={self.broker}>"

    def set_processing_guarantee(self, guarantee: str) -> None:
        """Change the guarantee before a worker starts (the CLI's option); the
        commit interval follows it unless one was given."""
        if guarantee not in GUARANTEES:
            raise ConfigurationError(
                f"processing_guarantee must be one of {GUARANTEES}, not {guarantee!r}"
            )
        self.processing_guarantee = guarantee
        if not self._commit_interval_given:
            self.commit_interval_s = COMMIT_INTERVAL_S[guarantee]

    # --- declarations ------------------------------------------------------------

    def topic(
        self,
        name: str,
        *,
        key_type: Any = None,
        value_type: Any = None,
        key_serializer: str | Codec | None = None,
        value_serializer: str | Codec | None = None,
        partitions: int | None = None,
        config: Mapping[str, str] | None = None,
        compression: str | None = None,
    ) -> Topic:
        topic = Topic(
            self.wiring,
            name,
            key_type=key_type,
            value_type=value_type,
            key_serializer=key_serializer,
            value_serializer=value_serializer,
            partitions=partitions,
            config=config,
            compression=compression,
        )
        self.topics[name] = topic
        return topic

    def agent(
        self,
        channel: Topic | str | None = None,
        *,
        name: str | None = None,
        concurrency: int = 1,
        sink: Sequence[Sink] | Sink | None = None,
    ) -> Callable[[AgentFun], Agent]:
        def register(fn: AgentFun) -> Agent:
            agent_name = name or fn.__name__
            if agent_name in self.agents:
                raise ConfigurationError(f"agent {agent_name!r} is declared twice")
            if channel is None:
                source = self.topic(f"{self.id}-{agent_name}")
            elif isinstance(channel, str):
                source = self.topics.get(channel) or self.topic(channel)
            else:
                source = channel
            sinks: Sequence[Sink]
            if sink is None:
                sinks = ()
            elif isinstance(sink, (list, tuple)):
                sinks = sink
            else:
                sinks = (sink,)  # type: ignore[assignment]
            agent = Agent(
                fn,
                wiring=self.wiring,
                name=agent_name,
                source=source,
                concurrency=concurrency,
                sinks=sinks,
            )
            agent.app = self
            self.agents[agent_name] = agent
            return agent

        return register

    def Table(self, name: str, *, default: Callable[[], Any] | None = None, **kwargs: Any) -> Table:
        return self._add_table(Table(self.wiring, name, default=default, **kwargs))

    def GlobalTable(
        self, name: str, *, default: Callable[[], Any] | None = None, **kwargs: Any
    ) -> GlobalTable:
        table = GlobalTable(self.wiring, name, default=default, **kwargs)
        self._add_table(table)
        return table

    def JoinWindows(self, name: str, **kwargs: Any) -> JoinWindows:
        """The changelogged buffers of a windowed stream-stream join (see
        streams.stream_joins): `within=` or `before=`/`after=` seconds, `grace=`."""
        windows = JoinWindows(self.wiring, name, **kwargs)
        self._add_table(windows)
        return windows

    def _add_table(self, table: Table) -> Table:
        if table.name in self.tables:
            raise ConfigurationError(f"table {table.name!r} is declared twice")
        self.tables[table.name] = table
        return table

    def task(self, fn: F) -> F:
        """Run `fn` once when the worker has started (tables recovered)."""
        self.startup_tasks.append(fn)
        return fn

    def timer(self, interval_s: float) -> Callable[[F], F]:
        """Run the decorated function every `interval_s` seconds."""
        if interval_s <= 0:
            raise ConfigurationError("timer interval must be > 0 seconds")

        def register(fn: F) -> F:
            self.timers.append((float(interval_s), fn))
            return fn

        return register

    def crontab(self, expr: str) -> Callable[[F], F]:
        """Run the decorated function on a cron schedule (`"*/5 * * * *"`)."""
        if not croniter.is_valid(expr):
            raise ConfigurationError(f"invalid crontab expression {expr!r}")

        def register(fn: F) -> F:
            self.crontabs.append((expr, fn))
            return fn

        return register

    def page(self, path: str) -> Callable[[F], F]:
        """Serve `fn(request, **path_args)` at GET `path` of the worker's web server
        (`"/surge/{zone}"`); it returns a dict or list (JSON), a str (HTML) or an
        aiohttp response."""
        if not path.startswith("/"):
            raise ConfigurationError(f"a page path starts with '/', not {path!r}")
        first = path.split("/")[1]
        if path == "/" or first in RESERVED_PAGES:
            raise ConfigurationError(
                f"page {path!r}: / and /{', /'.join(sorted(RESERVED_PAGES))} are the web "
                "server's own"
            )
        if any(p == path for p, _ in self.pages):
            raise ConfigurationError(f"page {path!r} is declared twice")

        def register(fn: F) -> F:
            self.pages.append((path, fn))
            return fn

        return register

    # --- running -------------------------------------------------------------------

    def worker(self, **kwargs: Any) -> Any:
        from streams.worker import Worker

        return Worker(self, **kwargs)

    async def __aenter__(self) -> App:
        """Start the app as a client (send to topics, read tables) without agents."""
        from streams.worker import Worker

        self._client = Worker(self, run_agents=False)
        await self._client.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.stop()

    def run_worker(self, stop: asyncio.Event | None = None) -> None:
        """Run a worker in this thread until SIGINT/SIGTERM (see streams.cli)."""
        from streams.cli import run_worker

        run_worker(self, stop=stop)

    def main(self) -> None:
        """`python myapp.py worker`: the CLI with this app preloaded."""
        from streams.cli import main

        main(obj=self)
