"""Topic configuration, flush policy and Kafka's topic-name rule.

Invariants:
- A TopicConfig is always valid: every constructor path (direct, from_configs,
  replace) runs the same checks and raises ValueError naming the bad setting.
- cleanup_policy is normalised to "delete", "compact" or "compact,delete".
- Topic names match [a-zA-Z0-9._-]{1,249} and are neither "." nor "..", so a
  name joined to the data directory never leaves it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass

from runtime.errors import InvalidTopicError
from runtime.log.topic_configs import LONG_MAX, SPECS, parse

TOPIC_NAME_MAX_CHARS = 249
_TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]+")
_INT32_MAX = 2**31 - 1

_POLICIES = {
    "delete": "delete",
    "compact": "compact",
    "compact,delete": "compact,delete",
    "delete,compact": "compact,delete",
}

# Kafka config name -> (field name, minimum allowed value)
_INT_CONFIGS: dict[str, tuple[str, int]] = {
    "retention.ms": ("retention_ms", -1),
    "retention.bytes": ("retention_bytes", -1),
    "segment.bytes": ("segment_bytes", 14),
    "segment.ms": ("segment_ms", 1),
    "max.message.bytes": ("max_message_bytes", 0),
    "delete.retention.ms": ("delete_retention_ms", 0),
    "min.compaction.lag.ms": ("min_compaction_lag_ms", 0),
    "max.compaction.lag.ms": ("max_compaction_lag_ms", 1),
    "min.insync.replicas": ("min_insync_replicas", 1),
}
# the honoured configs that are not integers: Kafka config name -> field name
_OTHER_FIELDS: dict[str, str] = {
    "cleanup.policy": "cleanup_policy",
    "compression.type": "compression_type",
    "message.timestamp.type": "message_timestamp_type",
    "min.cleanable.dirty.ratio": "min_cleanable_dirty_ratio",
}
_DAY_MS = 24 * 3600 * 1000


def validate_topic_name(name: str) -> None:
    """Raise InvalidTopicError unless `name` follows Kafka's topic-name rule."""
    if not isinstance(name, str) or not name:
        raise InvalidTopicError(f"topic name {name!r} is invalid: it must not be empty")
    if name in (".", ".."):
        raise InvalidTopicError(f"topic name {name!r} is invalid: '.' and '..' are not allowed")
    if len(name) > TOPIC_NAME_MAX_CHARS:
        raise InvalidTopicError(
            f"topic name {name[:40]!r}... is invalid: {len(name)} characters, "
            f"at most {TOPIC_NAME_MAX_CHARS} allowed",
            topic=name,
        )
    if not _TOPIC_NAME.fullmatch(name):
        raise InvalidTopicError(
            f"topic name {name!r} is invalid: only ASCII letters, digits, '.', '_' and '-' "
            "are allowed",
            topic=name,
        )


@dataclass(frozen=True, slots=True)
class TopicConfig:
    """Per-topic settings, named and bounded as Kafka's topic configs.

    The fields are the configs the log honours; `others` holds the other
    standard Kafka topic configs set on the topic (topic_configs.SPECS), kept and
    described; `overrides` names the configs set on the topic rather than taken
    from the defaults (DescribeConfigs reports them as the topic's own)."""

    cleanup_policy: str = "delete"
    retention_ms: int = 7 * _DAY_MS
    retention_bytes: int = -1
    segment_bytes: int = 128 * 1024 * 1024
    segment_ms: int = 7 * _DAY_MS
    max_message_bytes: int = 1048588
    delete_retention_ms: int = _DAY_MS
    min_compaction_lag_ms: int = 0
    max_compaction_lag_ms: int = LONG_MAX
    min_cleanable_dirty_ratio: float = 0.5
    min_insync_replicas: int = 1
    compression_type: str = "producer"
    message_timestamp_type: str = "CreateTime"
    others: tuple[tuple[str, str], ...] = ()  # only values other than Kafka's default
    overrides: frozenset[str] = dataclasses.field(default=frozenset(), compare=False)

    def __post_init__(self) -> None:
        policy = _POLICIES.get(str(self.cleanup_policy).replace(" ", ""))
        if policy is None:
            raise ValueError(
                f"cleanup.policy {self.cleanup_policy!r} is invalid: "
                "use 'delete', 'compact' or 'compact,delete'"
            )
        object.__setattr__(self, "cleanup_policy", policy)
        for kafka_name, (field, minimum) in _INT_CONFIGS.items():
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{kafka_name} must be an integer, got {value!r}")
            if value < minimum:
                raise ValueError(f"{kafka_name} is {value}, must be >= {minimum}")
        if self.segment_bytes > _INT32_MAX:
            raise ValueError(f"segment.bytes is {self.segment_bytes}, must be <= {_INT32_MAX}")
        parse("compression.type", self.compression_type)
        parse("message.timestamp.type", self.message_timestamp_type)
        ratio = float(parse("min.cleanable.dirty.ratio", self.min_cleanable_dirty_ratio))
        object.__setattr__(self, "min_cleanable_dirty_ratio", ratio)
        for name, value in self.others:
            if name in _INT_CONFIGS or name in _OTHER_FIELDS:
                raise ValueError(f"{name} is a field of TopicConfig, not one of its others")
            parse(name, value)

    @property
    def deletes(self) -> bool:
        return "delete" in self.cleanup_policy

    @property
    def compacts(self) -> bool:
        return "compact" in self.cleanup_policy

    @property
    def log_append_time(self) -> bool:
        return self.message_timestamp_type == "LogAppendTime"

    @classmethod
    def from_configs(
        cls, configs: Mapping[str, str], base: TopicConfig | None = None
    ) -> TopicConfig:
        """Build from Kafka-named string settings, layered over `base` (default: defaults).

        Every name becomes one of the topic's overrides."""
        base = base if base is not None else cls()
        changes: dict[str, object] = {}
        others = dict(base.others)
        for name, raw in configs.items():
            value = parse(name, raw)  # ValueError for unknown names and bad values
            if name in _INT_CONFIGS:
                changes[_INT_CONFIGS[name][0]] = int(value)
            elif name in _OTHER_FIELDS:
                changes[_OTHER_FIELDS[name]] = str(raw) if name == "cleanup.policy" else value
            elif value == SPECS[name].default:
                others.pop(name, None)
            else:
                others[name] = value
        changes["others"] = tuple(sorted(others.items()))
        changes["overrides"] = base.overrides | frozenset(configs)
        return dataclasses.replace(base, **changes)

    def without(self, names: frozenset[str], defaults: TopicConfig) -> TopicConfig:
        """These configs back to `defaults` (no longer overrides): IncrementalAlterConfigs'
        DELETE, and AlterConfigs for every config it does not name."""
        changes: dict[str, object] = {}
        for name in names:
            if name in _INT_CONFIGS:
                field = _INT_CONFIGS[name][0]
            elif name in _OTHER_FIELDS:
                field = _OTHER_FIELDS[name]
            else:
                continue
            changes[field] = getattr(defaults, field)
        others = tuple((k, v) for k, v in self.others if k not in names)
        return dataclasses.replace(self, **changes, others=others, overrides=self.overrides - names)

    def to_configs(self) -> dict[str, str]:
        """Every standard topic config, by Kafka name, with its value for this topic."""
        out = {name: spec.default for name, spec in SPECS.items()}
        out.update(self.others)
        for kafka_name, field in _OTHER_FIELDS.items():
            out[kafka_name] = str(getattr(self, field))
        for kafka_name, (field, _) in _INT_CONFIGS.items():
            out[kafka_name] = str(getattr(self, field))
        return out

    def stored_configs(self) -> dict[str, str]:
        """What the topic catalog keeps: every honoured config (so that a later open
        with other defaults changes nothing), and the others that are not Kafka's
        defaults."""
        configs = self.to_configs()
        names = [*_INT_CONFIGS, *_OTHER_FIELDS, *(name for name, _ in self.others)]
        return {name: configs[name] for name in sorted(names)}

    def override_configs(self) -> dict[str, str]:
        """The configs set on the topic itself."""
        configs = self.to_configs()
        return {name: configs[name] for name in sorted(self.overrides)}

    def replace(self, **changes: object) -> TopicConfig:
        return dataclasses.replace(self, **changes)


_FLUSH_MODES = ("batch", "interval", "os")


@dataclass(frozen=True, slots=True)
class FlushPolicy:
    """When appends are fsynced.

    batch: after every append; interval: on the append that finds flush_interval_ms
    passed since the last fsync; os: never explicitly, except on roll and close.
    """

    mode: str = "os"
    flush_interval_ms: int = 1000

    def __post_init__(self) -> None:
        if self.mode not in _FLUSH_MODES:
            raise ValueError(f"flush mode {self.mode!r} is invalid: use one of {_FLUSH_MODES}")
        if self.flush_interval_ms < 0:
            raise ValueError(f"flush_interval_ms is {self.flush_interval_ms}, must be >= 0")


@dataclass(frozen=True, slots=True)
class TopicInfo:
    name: str
    partitions: int
    config: TopicConfig
