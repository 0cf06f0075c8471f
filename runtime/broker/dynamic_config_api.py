"""DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for the resources
that are not topics: BROKER (4), BROKER_LOGGER (8) and GROUP (32).

BROKER: resource name "0" (this broker) or "" (the cluster-wide defaults);
any other id is refused with INVALID_REQUEST, as a Kafka broker refuses a
request meant for another. Changes are checked config by config
(broker_configs.py), kept in the dynamic configs file, and the log defaults
among them applied to the log at once. AlterConfigs replaces the resource's
whole set of dynamic configs; IncrementalAlterConfigs changes those it names
(SET, DELETE, and APPEND / SUBTRACT on list configs).
BROKER_LOGGER: the broker's logger levels (logger_configs.py), by
IncrementalAlterConfigs only, as in Kafka.
GROUP: KIP-848 group configs (group_configs.py), by IncrementalAlterConfigs
only, kept per group id.

A refused change raises RefusedConfig (its error code), a bad value
ValueError (INVALID_CONFIG); either changes nothing of the resource.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runtime.broker import broker_configs, dynamic_configs, group_configs, logger_configs
from runtime.broker.broker_configs import BROKER_CONFIGS, RefusedConfig
from runtime.broker.dynamic_configs import DynamicConfigs
from runtime.broker.settings import NODE_ID, BrokerSettings
from runtime.log.offsets import OFFSETS_TOPIC
from runtime.log.topic_configs import ConfigType
from runtime.protocol.codes import ErrorCode

BROKER = 4
BROKER_LOGGER = 8
GROUP = 32
RESOURCE_TYPES = frozenset({BROKER, BROKER_LOGGER, GROUP})
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3


class DynamicConfigResources:
    """The broker's, its loggers' and the groups' configs, over one log."""

    def __init__(self, log: Any, settings: BrokerSettings) -> None:
        self._log = log
        self._settings = settings
        self._startup_default = log.default_config
        self._configs = dynamic_configs.load(log.path)
        self._apply_log_default(self._log_default(self._configs))

    # --- describing ----------------------------------------------------------

    def describe(self, rtype: int, name: str, *, synonyms: bool, documentation: bool) -> list[dict]:
        if rtype == BROKER:
            this = self._broker_layer(name)
            static = broker_configs.static_values(self._flags(), self._startup_default)
            broker = None if this is None else self._configs.broker
            return broker_configs.describe(
                static,
                self._configs.cluster,
                broker,
                synonyms=synonyms,
                documentation=documentation,
            )
        if rtype == BROKER_LOGGER:
            self._broker_layer(name, default_allowed=False)
            return logger_configs.describe()
        _check_group_name(name)
        own = self._configs.groups.get(name, {})
        return group_configs.describe(own, synonyms=synonyms, documentation=documentation)

    def _flags(self) -> dict[str, str]:
        limits = self._settings.limits
        offsets = self._log.topics().get(OFFSETS_TOPIC)
        flags = {
            "broker.id": str(NODE_ID),
            "node.id": str(NODE_ID),
            "auto.create.topics.enable": str(self._settings.auto_create_topics).lower(),
            "num.partitions": str(self._settings.default_partitions),
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "max.connections": str(limits.connections_max),
            "max.connections.per.ip": str(limits.connections_per_ip_max),
            "connections.max.idle.ms": str(limits.connections_max_idle_ms),
            "socket.request.max.bytes": str(limits.request_bytes_max),
            "queued.max.request.bytes": str(limits.queued_max_request_bytes),
            "sasl.server.max.receive.size": str(limits.sasl_receive_bytes_max),
        }
        if offsets is not None:
            flags["offsets.topic.num.partitions"] = str(offsets.partitions)
        return flags

    def topic_default_layers(self, topic_config: str) -> list[tuple[str, str, int]]:
        """(broker config, value, source) of the dynamic broker configs a topic's
        `topic_config` defaults to, this broker's first: what Kafka reports as
        the source and synonyms of a topic config the topic does not set."""
        broker = broker_configs.BY_TOPIC_CONFIG.get(topic_config)
        if broker is None:
            return []
        layers = []
        if broker in self._configs.broker:
            layers.append(
                (broker, self._configs.broker[broker], broker_configs.DYNAMIC_BROKER_CONFIG)
            )
        if broker in self._configs.cluster:
            value = self._configs.cluster[broker]
            layers.append((broker, value, broker_configs.DYNAMIC_DEFAULT_BROKER_CONFIG))
        return layers

    @property
    def startup_default(self) -> Any:
        """The log's default topic config before any dynamic broker config."""
        return self._startup_default

    # --- altering ------------------------------------------------------------

    def alter(
        self, rtype: int, name: str, configs: list[dict], *, incremental: bool, validate_only: bool
    ) -> None:
        if rtype == BROKER_LOGGER:
            self._broker_layer(name, default_allowed=False)
            if not incremental:
                raise RefusedConfig(
                    ErrorCode.INVALID_REQUEST,
                    "broker loggers change by IncrementalAlterConfigs only",
                )
            changes = logger_configs.check(configs)
            if not validate_only:
                for logger, level in changes:
                    logger.setLevel(level)
            return
        if rtype == BROKER:
            new = self._alter_broker(name, configs, incremental)
        else:
            new = self._alter_group(name, configs, incremental)
        log_default = self._log_default(new)  # ValueError if the defaults do not fit together
        if validate_only:
            return
        dynamic_configs.save(self._log.path, new)
        self._apply_log_default(log_default)
        self._configs = new

    def _apply_log_default(self, config: Any) -> None:
        if config != self._log.default_config:  # else the topics' catalog stays as it is
            self._log.set_default_config(config)

    def _alter_broker(self, name: str, configs: list[dict], incremental: bool) -> DynamicConfigs:
        this = self._broker_layer(name)
        layer = self._configs.cluster if this is None else self._configs.broker
        if incremental:
            changed = dict(layer)
            for c in configs:
                self._broker_operation(changed, c["name"], c["config_operation"], c["value"])
        else:
            changed = {
                c["name"]: broker_configs.check(c["name"], c["value"])
                for c in configs
                if c["value"] is not None
            }
        if this is None:
            return self._configs.replace(cluster=changed)
        return self._configs.replace(broker=changed)

    def _broker_operation(
        self, layer: dict[str, str], name: str, op: int, value: str | None
    ) -> None:
        if op == DELETE:
            broker_configs.changeable(name)
            layer.pop(name, None)
            return
        if value is None:
            raise ValueError(f"{name}: a value is needed")
        if op in (APPEND, SUBTRACT):
            config = BROKER_CONFIGS.get(name)
            if config is None or config.type is not ConfigType.LIST:
                raise RefusedConfig(
                    ErrorCode.INVALID_CONFIG,
                    f"{name} is not a list: APPEND and SUBTRACT apply to list configs only",
                )
            value = list_op(layer.get(name, self._effective(name)), value, op)
        elif op != SET:
            raise RefusedConfig(ErrorCode.INVALID_REQUEST, f"config operation {op} is not known")
        layer[name] = broker_configs.check(name, value)

    def _effective(self, name: str) -> str:
        for layer in (self._configs.broker, self._configs.cluster):
            if name in layer:
                return layer[name]
        return broker_configs.static_values(self._flags(), self._startup_default)[name]

    def _alter_group(self, name: str, configs: list[dict], incremental: bool) -> DynamicConfigs:
        _check_group_name(name)
        if not incremental:
            raise RefusedConfig(
                ErrorCode.INVALID_REQUEST, "group configs change by IncrementalAlterConfigs only"
            )
        own = dict(self._configs.groups.get(name, {}))
        for c in configs:
            config_name, op, value = c["name"], c["config_operation"], c["value"]
            if op == DELETE:
                group_configs.known(config_name)
                own.pop(config_name, None)
            elif op == SET:
                if value is None:
                    raise ValueError(f"{config_name}: a value is needed")
                own[config_name] = group_configs.check(config_name, value)
            else:
                raise RefusedConfig(
                    ErrorCode.INVALID_CONFIG,
                    f"{config_name}: only SET and DELETE apply to group configs",
                )
        group_configs.check_all(own)
        groups = {**self._configs.groups, name: own}
        if not own:
            del groups[name]
        return self._configs.replace(groups=groups)

    # --- shared --------------------------------------------------------------

    def _broker_layer(self, name: str, *, default_allowed: bool = True) -> int | None:
        """NODE_ID for this broker's name, None for the cluster default (""), or
        RefusedConfig for a name that is neither."""
        if name == "" and default_allowed:
            return None
        if name.strip() == str(NODE_ID):
            return NODE_ID
        expected = f"{NODE_ID} or an empty string" if default_allowed else str(NODE_ID)
        raise RefusedConfig(
            ErrorCode.INVALID_REQUEST, f"unexpected broker id {name!r}: expected {expected}"
        )

    def _log_default(self, configs: DynamicConfigs) -> Any:
        merged: Mapping[str, str] = {**configs.cluster, **configs.broker}
        return broker_configs.log_default(self._startup_default, merged)


def _check_group_name(name: str) -> None:
    if not name:
        raise RefusedConfig(ErrorCode.INVALID_REQUEST, "a group config needs a group id")


def list_op(current: str, value: str, op: int) -> str:
    items = [i for i in current.split(",") if i]
    given = [i.strip() for i in value.split(",") if i.strip()]
    if op == APPEND:
        return ",".join(items + [i for i in given if i not in items])
    return ",".join(i for i in items if i not in given)
