"""Every standard Kafka topic config: its type, Kafka's default, and its check.

A topic accepts and describes each of them, as a Kafka broker does. The log
honours those that change what one node does (TopicConfig's fields); the rest
(replication throttles, tiered storage, flush and index tuning, ...) are kept
and described, and change nothing here.

Invariants:
- parse(name, raw) returns the normalised string of a valid value or raises
  ValueError naming the config; it never accepts a name not in SPECS.
- Every default in SPECS passes its own check.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

LONG_MAX = 2**63 - 1
INT_MAX = 2**31 - 1


class ConfigType(IntEnum):
    """DescribeConfigs v3+ `config_type` (Kafka's ConfigDef.Type order)."""

    BOOLEAN = 1
    STRING = 2
    INT = 3
    SHORT = 4
    LONG = 5
    DOUBLE = 6
    LIST = 7
    CLASS = 8
    PASSWORD = 9


@dataclass(frozen=True, slots=True)
class ConfigSpec:
    name: str
    type: ConfigType
    default: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()


COMPRESSION_TYPES = ("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")
TIMESTAMP_TYPES = ("CreateTime", "LogAppendTime")


def _long(name: str, default: int, minimum: int | None = None) -> ConfigSpec:
    return ConfigSpec(name, ConfigType.LONG, str(default), minimum, LONG_MAX)


def _int(name: str, default: int, minimum: int | None = None) -> ConfigSpec:
    return ConfigSpec(name, ConfigType.INT, str(default), minimum, INT_MAX)


_DAY_MS = 86_400_000
_SPECS = (
    ConfigSpec("cleanup.policy", ConfigType.LIST, "delete", choices=("delete", "compact", "")),
    ConfigSpec("compression.type", ConfigType.STRING, "producer", choices=COMPRESSION_TYPES),
    ConfigSpec("compression.gzip.level", ConfigType.INT, "-1", -1, 9),
    ConfigSpec("compression.lz4.level", ConfigType.INT, "9", 1, 17),
    ConfigSpec("compression.zstd.level", ConfigType.INT, "3", -131072, 22),
    _long("delete.retention.ms", _DAY_MS, 0),
    _long("file.delete.delay.ms", 60_000, 0),
    _long("flush.messages", LONG_MAX, 1),
    _long("flush.ms", LONG_MAX, 0),
    ConfigSpec("follower.replication.throttled.replicas", ConfigType.LIST, ""),
    _int("index.interval.bytes", 4096, 0),
    ConfigSpec("leader.replication.throttled.replicas", ConfigType.LIST, ""),
    _long("local.retention.bytes", -2, -2),
    _long("local.retention.ms", -2, -2),
    _long("max.compaction.lag.ms", LONG_MAX, 1),
    _int("max.message.bytes", 1_048_588, 0),
    ConfigSpec("message.downconversion.enable", ConfigType.BOOLEAN, "true"),
    ConfigSpec("message.format.version", ConfigType.STRING, "3.0-IV1"),
    _long("message.timestamp.after.max.ms", LONG_MAX, 0),
    _long("message.timestamp.before.max.ms", LONG_MAX, 0),
    _long("message.timestamp.difference.max.ms", LONG_MAX, 0),
    ConfigSpec("message.timestamp.type", ConfigType.STRING, "CreateTime", choices=TIMESTAMP_TYPES),
    ConfigSpec("min.cleanable.dirty.ratio", ConfigType.DOUBLE, "0.5", 0.0, 1.0),
    _long("min.compaction.lag.ms", 0, 0),
    _int("min.insync.replicas", 1, 1),
    ConfigSpec("preallocate", ConfigType.BOOLEAN, "false"),
    ConfigSpec("remote.log.copy.disable", ConfigType.BOOLEAN, "false"),
    ConfigSpec("remote.log.delete.on.disable", ConfigType.BOOLEAN, "false"),
    ConfigSpec("remote.storage.enable", ConfigType.BOOLEAN, "false"),
    _long("retention.bytes", -1, -1),
    _long("retention.ms", 7 * _DAY_MS, -1),
    _int("segment.bytes", 1 << 30, 14),
    _int("segment.index.bytes", 10 * 1024 * 1024, 4),
    _long("segment.jitter.ms", 0, 0),
    _long("segment.ms", 7 * _DAY_MS, 1),
    ConfigSpec("unclean.leader.election.enable", ConfigType.BOOLEAN, "false"),
)
SPECS: dict[str, ConfigSpec] = {spec.name: spec for spec in _SPECS}


def parse(name: str, raw: object) -> str:
    """The normalised value of config `name` given `raw`; ValueError if it is not valid."""
    spec = SPECS.get(name)
    if spec is None:
        raise ValueError(f"unknown topic config {name!r}")
    text = str(raw).strip()
    if spec.type is ConfigType.BOOLEAN:
        if text.lower() not in ("true", "false"):
            raise ValueError(f"{name} must be true or false, got {raw!r}")
        return text.lower()
    if spec.type in (ConfigType.INT, ConfigType.LONG):
        try:
            number: float = int(text)
        except ValueError:
            raise ValueError(f"{name} must be an integer, got {raw!r}") from None
        _check_range(spec, number)
        return str(number)
    if spec.type is ConfigType.DOUBLE:
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{name} must be a number, got {raw!r}") from None
        _check_range(spec, number)
        return text
    if spec.type is ConfigType.LIST:
        items = [item.strip() for item in text.split(",") if item.strip()]
        if spec.choices:
            bad = [item for item in items if item not in spec.choices]
            if bad:
                raise ValueError(f"{name} {raw!r} is invalid: use {', '.join(spec.choices[:-1])}")
        return ",".join(items)
    if spec.choices and text not in spec.choices:
        raise ValueError(f"{name} {raw!r} is invalid: use one of {', '.join(spec.choices)}")
    return text


def _check_range(spec: ConfigSpec, number: float) -> None:
    if spec.minimum is not None and number < spec.minimum:
        raise ValueError(f"{spec.name} is {number}, must be >= {spec.minimum}")
    if spec.maximum is not None and number > spec.maximum:
        raise ValueError(f"{spec.name} is {number}, must be <= {spec.maximum}")
