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
    """Per-topic settings, named and bounded as Kafka's topic configs."""

    cleanup_policy: str = "delete"
    retention_ms: int = 7 * _DAY_MS
    retention_bytes: int = -1
    segment_bytes: int = 128 * 1024 * 1024
    segment_ms: int = 7 * _DAY_MS
    max_message_bytes: int = 1048588
    delete_retention_ms: int = _DAY_MS
    min_compaction_lag_ms: int = 0

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

    @property
    def deletes(self) -> bool:
        return "delete" in self.cleanup_policy

    @property
    def compacts(self) -> bool:
        return "compact" in self.cleanup_policy

    @classmethod
    def from_configs(
        cls, configs: Mapping[str, str], base: TopicConfig | None = None
    ) -> TopicConfig:
        """Build from Kafka-named string settings, layered over `base` (default: defaults)."""
        changes: dict[str, object] = {}
        for name, raw in configs.items():
            if name == "cleanup.policy":
                changes["cleanup_policy"] = str(raw)
                continue
            if name not in _INT_CONFIGS:
                raise ValueError(f"unknown topic config {name!r}")
            try:
                changes[_INT_CONFIGS[name][0]] = int(str(raw).strip())
            except ValueError:
                raise ValueError(f"{name} must be an integer, got {raw!r}") from None
        return dataclasses.replace(base if base is not None else cls(), **changes)

    def to_configs(self) -> dict[str, str]:
        out = {"cleanup.policy": self.cleanup_policy}
        for kafka_name, (field, _) in _INT_CONFIGS.items():
            out[kafka_name] = str(getattr(self, field))
        return out

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
