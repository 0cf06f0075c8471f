"""Group configs (KIP-848): the GROUP resource of DescribeConfigs and
IncrementalAlterConfigs, as Kafka 4.0 names and bounds them.

A group's config overrides, for that group, the broker's defaults
(group.consumer.session.timeout.ms, ...). Any group id may carry configs,
whether the group exists yet or not, as in Kafka; they are kept in the
broker's dynamic configs file and outlive restarts. This broker serves the
classic group protocol only, so the values are described and kept, and change
no member's timeouts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from runtime.log.topic_configs import ConfigType

# DescribeConfigs config_source
GROUP_CONFIG = 8
DEFAULT_CONFIG = 5

BROKER_GROUP_DEFAULTS: dict[str, str] = {
    "group.consumer.session.timeout.ms": "45000",
    "group.consumer.min.session.timeout.ms": "45000",
    "group.consumer.max.session.timeout.ms": "60000",
    "group.consumer.heartbeat.interval.ms": "5000",
    "group.consumer.min.heartbeat.interval.ms": "5000",
    "group.consumer.max.heartbeat.interval.ms": "15000",
    "group.share.session.timeout.ms": "45000",
    "group.share.min.session.timeout.ms": "45000",
    "group.share.max.session.timeout.ms": "60000",
    "group.share.heartbeat.interval.ms": "5000",
    "group.share.min.heartbeat.interval.ms": "5000",
    "group.share.max.heartbeat.interval.ms": "15000",
    "group.share.record.lock.duration.ms": "30000",
    "group.share.min.record.lock.duration.ms": "15000",
    "group.share.max.record.lock.duration.ms": "60000",
}
"""The broker configs group configs default to and are bounded by (read-only here)."""


@dataclass(frozen=True, slots=True)
class GroupConfig:
    name: str
    type: ConfigType
    doc: str
    broker_default: str | None  # the broker config it defaults to
    default: str
    bounds: tuple[str, str] | None = None  # broker configs: least and most
    choices: tuple[str, ...] = ()


def _timing(name: str, doc: str, least: str, most: str) -> GroupConfig:
    broker = f"group.{name}"
    return GroupConfig(
        name,
        ConfigType.INT,
        doc,
        broker,
        BROKER_GROUP_DEFAULTS[broker],
        (f"group.{least}", f"group.{most}"),
    )


_CONFIGS = (
    _timing(
        "consumer.session.timeout.ms",
        "Timeout to detect a failed client of a consumer group.",
        "consumer.min.session.timeout.ms",
        "consumer.max.session.timeout.ms",
    ),
    _timing(
        "consumer.heartbeat.interval.ms",
        "How often a consumer group's members heartbeat.",
        "consumer.min.heartbeat.interval.ms",
        "consumer.max.heartbeat.interval.ms",
    ),
    _timing(
        "share.session.timeout.ms",
        "Timeout to detect a failed client of a share group.",
        "share.min.session.timeout.ms",
        "share.max.session.timeout.ms",
    ),
    _timing(
        "share.heartbeat.interval.ms",
        "How often a share group's members heartbeat.",
        "share.min.heartbeat.interval.ms",
        "share.max.heartbeat.interval.ms",
    ),
    _timing(
        "share.record.lock.duration.ms",
        "How long a share group's consumer holds a record.",
        "share.min.record.lock.duration.ms",
        "share.max.record.lock.duration.ms",
    ),
    GroupConfig(
        "share.auto.offset.reset",
        ConfigType.STRING,
        "Where a share group starts without a position.",
        None,
        "latest",
        choices=("latest", "earliest"),
    ),
)
GROUP_CONFIGS: dict[str, GroupConfig] = {c.name: c for c in _CONFIGS}
_PAIRS = (
    ("consumer.heartbeat.interval.ms", "consumer.session.timeout.ms"),
    ("share.heartbeat.interval.ms", "share.session.timeout.ms"),
)


def known(name: str) -> GroupConfig:
    config = GROUP_CONFIGS.get(name)
    if config is None:
        raise ValueError(f"unknown group config {name!r}: use one of {', '.join(GROUP_CONFIGS)}")
    return config


def check(name: str, value: str) -> str:
    """The normalised value of group config `name`; ValueError naming it if bad."""
    config = known(name)
    text = value.strip()
    if config.choices:
        if text not in config.choices:
            raise ValueError(f"{name} {value!r} is invalid: use {' or '.join(config.choices)}")
        return text
    try:
        number = int(text)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if config.bounds is not None:
        least, most = (int(BROKER_GROUP_DEFAULTS[b]) for b in config.bounds)
        if not least <= number <= most:
            raise ValueError(
                f"{name} is {number}, must be within [{least}, {most}] "
                f"({config.bounds[0]}, {config.bounds[1]})"
            )
    return str(number)


def check_all(configs: Mapping[str, str]) -> None:
    """The checks across configs: a heartbeat interval below its session timeout."""
    values = {c.name: configs.get(c.name, c.default) for c in _CONFIGS}
    for heartbeat, session in _PAIRS:
        if int(values[heartbeat]) >= int(values[session]):
            raise ValueError(
                f"{heartbeat} ({values[heartbeat]}) must be less than {session} ({values[session]})"
            )


def describe(configs: Mapping[str, str], *, synonyms: bool, documentation: bool) -> list[dict]:
    """Every group config: the group's own (GROUP_CONFIG) or the broker's default."""
    out = []
    for config in _CONFIGS:
        layers = []
        if config.name in configs:
            layers.append((config.name, configs[config.name], GROUP_CONFIG))
        layers.append((config.broker_default or config.name, config.default, DEFAULT_CONFIG))
        _, value, source = layers[0]
        out.append(
            {
                "name": config.name,
                "value": value,
                "read_only": False,
                "is_default": source == DEFAULT_CONFIG,
                "config_source": source,
                "is_sensitive": False,
                "synonyms": (
                    [{"name": n, "value": v, "source": s} for n, v, s in layers] if synonyms else []
                ),
                "config_type": config.type,
                "documentation": config.doc if documentation else None,
            }
        )
    return out
