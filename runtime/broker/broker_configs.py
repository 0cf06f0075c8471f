"""The broker's configs, as Kafka names them: what DescribeConfigs answers for the
BROKER resource, and which of them IncrementalAlterConfigs may change.

Each config is one of three kinds:
- LOG_DEFAULT: the cluster default of a topic config (log.retention.ms is the
  default of retention.ms). Dynamic, as in Kafka: a change applies at once to
  every topic that does not set that config itself.
- KEPT: dynamic in Kafka but about machinery this broker does not have (thread
  pools, Kerberos relogin): a change is validated, kept and described, and
  changes nothing here.
- READ_ONLY: a `streams broker` flag or fixed by the single-node design; a
  change is refused with INVALID_REQUEST, as Kafka refuses a static config.

Values come in layers, the first that has one wins: the broker's own dynamic
configs (resource name "0"), the cluster-wide dynamic defaults (resource name
""), the broker's start-up settings (STATIC_BROKER_CONFIG where they differ
from Kafka's default), Kafka's default.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from runtime.broker.group_configs import BROKER_GROUP_DEFAULTS
from runtime.log.config import TopicConfig
from runtime.log.topic_configs import INT_MAX, LONG_MAX, SPECS, ConfigType, parse
from runtime.protocol.codes import ErrorCode

# DescribeConfigs config_source
DYNAMIC_BROKER_CONFIG = 2
DYNAMIC_DEFAULT_BROKER_CONFIG = 3
STATIC_BROKER_CONFIG = 4
DEFAULT_CONFIG = 5


class Kind(enum.Enum):
    LOG_DEFAULT = "log default"
    KEPT = "kept"
    READ_ONLY = "read-only"


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    name: str
    type: ConfigType
    kind: Kind
    doc: str
    default: str = ""  # Kafka's; a LOG_DEFAULT takes its topic config's
    topic_config: str | None = None  # LOG_DEFAULT: the topic config it is the default of
    minimum: float | None = None


def _log(name: str, topic: str, doc: str) -> BrokerConfig:
    spec = SPECS[topic]
    return BrokerConfig(name, spec.type, Kind.LOG_DEFAULT, doc, spec.default, topic)


def _kept(name: str, type_: ConfigType, default: str, doc: str, minimum: float = 0) -> BrokerConfig:
    return BrokerConfig(name, type_, Kind.KEPT, doc, default, minimum=minimum)


def _fixed(name: str, type_: ConfigType, default: str, doc: str) -> BrokerConfig:
    return BrokerConfig(name, type_, Kind.READ_ONLY, doc, default)


_I, _L, _D, _B, _S = (
    ConfigType.INT,
    ConfigType.LONG,
    ConfigType.DOUBLE,
    ConfigType.BOOLEAN,
    ConfigType.STRING,
)
_CONFIGS = (
    _log("log.retention.ms", "retention.ms", "How long a topic keeps a segment (-1: forever)."),
    _log("log.retention.bytes", "retention.bytes", "Bytes a partition keeps (-1: no limit)."),
    _log("log.segment.bytes", "segment.bytes", "The size at which a segment is rolled."),
    _log("log.roll.ms", "segment.ms", "The age at which a segment is rolled."),
    _log("log.roll.jitter.ms", "segment.jitter.ms", "Random jitter subtracted from log.roll.ms."),
    _log("log.cleanup.policy", "cleanup.policy", "delete, compact, or both."),
    _log("message.max.bytes", "max.message.bytes", "The largest record batch a topic takes."),
    _log("compression.type", "compression.type", "The compression of stored batches."),
    _log("min.insync.replicas", "min.insync.replicas", "Replicas that must acknowledge acks=all."),
    _log("log.message.timestamp.type", "message.timestamp.type", "CreateTime or LogAppendTime."),
    _log(
        "log.message.timestamp.before.max.ms",
        "message.timestamp.before.max.ms",
        "How far in the past a record's timestamp may be.",
    ),
    _log(
        "log.message.timestamp.after.max.ms",
        "message.timestamp.after.max.ms",
        "How far in the future a record's timestamp may be.",
    ),
    _log(
        "log.cleaner.delete.retention.ms",
        "delete.retention.ms",
        "How long a compacted topic keeps tombstones.",
    ),
    _log(
        "log.cleaner.min.compaction.lag.ms",
        "min.compaction.lag.ms",
        "The least time a record stays uncompacted.",
    ),
    _log(
        "log.cleaner.max.compaction.lag.ms",
        "max.compaction.lag.ms",
        "The most time a record may stay uncompacted.",
    ),
    _log(
        "log.cleaner.min.cleanable.ratio",
        "min.cleanable.dirty.ratio",
        "The dirty share of a log at which it is compacted.",
    ),
    _log("log.flush.interval.messages", "flush.messages", "Records between forced flushes."),
    _log("log.flush.interval.ms", "flush.ms", "Time between forced flushes."),
    _log("log.index.interval.bytes", "index.interval.bytes", "Bytes between offset index entries."),
    _log("log.index.size.max.bytes", "segment.index.bytes", "The largest offset index."),
    _log("log.segment.delete.delay.ms", "file.delete.delay.ms", "Delay before a file is removed."),
    _log("log.preallocate", "preallocate", "Preallocate segment files."),
    _log(
        "unclean.leader.election.enable",
        "unclean.leader.election.enable",
        "Let an out-of-sync replica lead.",
    ),
    _kept("background.threads", _I, "10", "Threads for background tasks.", 1),
    _kept("num.io.threads", _I, "8", "Threads that handle requests.", 1),
    _kept("num.network.threads", _I, "3", "Threads that read and write sockets.", 1),
    _kept("num.replica.fetchers", _I, "1", "Threads that fetch from leaders.", 1),
    _kept("num.recovery.threads.per.data.dir", _I, "2", "Threads that recover logs.", 1),
    _kept("log.cleaner.threads", _I, "1", "Threads that compact logs."),
    _kept("log.cleaner.backoff.ms", _L, "15000", "Sleep of the cleaner when idle."),
    _kept("log.cleaner.dedupe.buffer.size", _L, "134217728", "Memory for compaction."),
    _kept("log.cleaner.io.buffer.size", _I, "524288", "I/O buffer of the cleaner."),
    _kept("log.cleaner.io.max.bytes.per.second", _D, "1.7976931348623157E308", "Cleaner I/O cap."),
    _kept(
        "sasl.kerberos.min.time.before.relogin",
        _L,
        "60000",
        "Login thread sleep between refresh attempts (Kerberos).",
    ),
    _kept("sasl.kerberos.ticket.renew.window.factor", _D, "0.8", "When to renew a ticket."),
    _kept("sasl.kerberos.ticket.renew.jitter", _D, "0.05", "Jitter of the renewal time."),
    _fixed("broker.id", _I, "-1", "This broker's id."),
    _fixed("node.id", _I, "-1", "This node's id."),
    _fixed("auto.create.topics.enable", _B, "true", "Create a topic a client names (flag)."),
    _fixed("num.partitions", _I, "1", "Partitions of an automatically created topic (flag)."),
    _fixed("default.replication.factor", _I, "1", "Replicas of a new topic: one node."),
    _fixed("offsets.topic.num.partitions", _I, "50", "Partitions of __consumer_offsets."),
    _fixed("offsets.topic.replication.factor", ConfigType.SHORT, "3", "Replicas of offsets."),
    _fixed(
        "transaction.state.log.replication.factor",
        ConfigType.SHORT,
        "3",
        "Replicas of __transaction_state.",
    ),
    _fixed("max.connections", _I, str(INT_MAX), "Connections the broker accepts (flag)."),
    _fixed("max.connections.per.ip", _I, str(INT_MAX), "Connections per address (flag)."),
    _fixed("connections.max.idle.ms", _L, "600000", "Idle connections close after (flag)."),
    _fixed("socket.request.max.bytes", _I, "104857600", "The largest request (flag)."),
    _fixed("queued.max.request.bytes", _L, "-1", "Request bytes queued at most (flag)."),
    _fixed("sasl.server.max.receive.size", _I, "524288", "The largest SASL frame (flag)."),
    *(
        _fixed(name, _I, value, "A group config's default or bound.")
        for name, value in BROKER_GROUP_DEFAULTS.items()
    ),
)
BROKER_CONFIGS: dict[str, BrokerConfig] = {c.name: c for c in _CONFIGS}
BY_TOPIC_CONFIG: dict[str, str] = {c.topic_config: c.name for c in _CONFIGS if c.topic_config}
"""The broker config that is the default of each topic config it names."""


class RefusedConfig(ValueError):
    """A broker config change that cannot be made: (error code, message)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def changeable(name: str) -> BrokerConfig:
    """The config `name`, or RefusedConfig if there is none or it may not change."""
    config = BROKER_CONFIGS.get(name)
    if config is None:
        raise RefusedConfig(ErrorCode.INVALID_CONFIG, f"unknown broker config {name!r}")
    if config.kind is Kind.READ_ONLY:
        raise RefusedConfig(
            ErrorCode.INVALID_REQUEST,
            f"Cannot update these configs dynamically: {name} "
            "(a `streams broker` flag or fixed on a single node)",
        )
    return config


def check(name: str, value: str) -> str:
    """The normalised value of broker config `name`: RefusedConfig for a name that
    may not change, ValueError for a bad value."""
    config = changeable(name)
    if config.topic_config is None:
        return _check_kept(config, value)
    try:
        return parse(config.topic_config, value)
    except ValueError as exc:  # it names the topic config this one is the default of
        raise ValueError(f"{name}: {exc}") from None


def _check_kept(config: BrokerConfig, value: str) -> str:
    text = value.strip()
    try:
        number = float(text) if config.type is ConfigType.DOUBLE else int(text)
    except ValueError:
        kind = "a number" if config.type is ConfigType.DOUBLE else "an integer"
        raise ValueError(f"{config.name} must be {kind}, got {value!r}") from None
    maximum = INT_MAX if config.type is ConfigType.INT else LONG_MAX
    if config.minimum is not None and number < config.minimum:
        raise ValueError(f"{config.name} is {text}, must be >= {config.minimum:g}")
    if config.type is not ConfigType.DOUBLE and number > maximum:
        raise ValueError(f"{config.name} is {text}, must be <= {maximum}")
    return text


def static_values(settings: Mapping[str, str], startup_default: TopicConfig) -> dict[str, str]:
    """What the broker started with: its flags (`settings`, by Kafka name) and the
    log's default topic config."""
    topic = startup_default.to_configs()
    values = {c.name: c.default for c in _CONFIGS}
    for c in _CONFIGS:
        if c.topic_config is not None:
            values[c.name] = topic[c.topic_config]
    values.update(settings)
    return values


def log_default(startup_default: TopicConfig, dynamic: Mapping[str, str]) -> TopicConfig:
    """The log's default topic config under these dynamic broker configs."""
    changes: dict[str, str] = {}
    for name, value in dynamic.items():
        topic = BROKER_CONFIGS[name].topic_config if name in BROKER_CONFIGS else None
        if topic is not None:
            changes[topic] = value
    config = TopicConfig.from_configs(changes, startup_default)
    return config.replace(overrides=frozenset())


def describe(
    static: Mapping[str, str],
    cluster: Mapping[str, str],
    broker: Mapping[str, str] | None,
    *,
    synonyms: bool,
    documentation: bool,
) -> list[dict]:
    """DescribeConfigs entries. `broker` None describes the cluster-wide defaults
    (resource name ""): only the configs set there, as Kafka does."""
    out = []
    for config in _CONFIGS:
        layers = _layers(config, static, cluster, broker)
        if not layers:
            continue
        value, source = layers[0]
        entry = {
            "name": config.name,
            "value": value,
            "read_only": config.kind is Kind.READ_ONLY,
            "is_default": source == DEFAULT_CONFIG,
            "config_source": source,
            "is_sensitive": False,
            "synonyms": (
                [{"name": config.name, "value": v, "source": s} for v, s in layers]
                if synonyms
                else []
            ),
            "config_type": config.type,
            "documentation": config.doc if documentation else None,
        }
        out.append(entry)
    return sorted(out, key=lambda e: e["name"])


def _layers(
    config: BrokerConfig,
    static: Mapping[str, str],
    cluster: Mapping[str, str],
    broker: Mapping[str, str] | None,
) -> list[tuple[str, int]]:
    name = config.name
    if broker is None:
        return [(cluster[name], DYNAMIC_DEFAULT_BROKER_CONFIG)] if name in cluster else []
    layers = []
    if name in broker:
        layers.append((broker[name], DYNAMIC_BROKER_CONFIG))
    if name in cluster:
        layers.append((cluster[name], DYNAMIC_DEFAULT_BROKER_CONFIG))
    started = static.get(name, config.default)
    if started != config.default:
        layers.append((started, STATIC_BROKER_CONFIG))
    layers.append((config.default, DEFAULT_CONFIG))
    return layers
