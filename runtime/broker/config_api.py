"""DescribeConfigs, AlterConfigs and IncrementalAlterConfigs.

Topics accept and describe every standard Kafka topic config
(runtime/log/topic_configs.py); a change is persisted in the topic catalog and
applies from the next append, retention or compaction pass. AlterConfigs
replaces a topic's whole set of overrides (the configs it does not name go
back to their defaults), IncrementalAlterConfigs changes only those it names.
A request with a bad config changes nothing of that resource and answers
INVALID_CONFIG naming it. The broker's, its loggers' and the groups' configs
are dynamic_config_api.py's. Describing needs DESCRIBE_CONFIGS, altering
ALTER_CONFIGS, on the topic, the group or (for the broker's) the cluster.
"""

from __future__ import annotations

from typing import Any

from runtime.broker.authorize import Access, Operation
from runtime.broker.broker_configs import RefusedConfig as ConfigError
from runtime.broker.dynamic_config_api import (
    BROKER,
    BROKER_LOGGER,
    GROUP,
    RESOURCE_TYPES,
    DynamicConfigResources,
    list_op,
)
from runtime.broker.settings import BrokerSettings, Handler, Peer
from runtime.errors import StorageError, UnknownTopicError
from runtime.log.config import TopicConfig
from runtime.log.topic_configs import SPECS, ConfigType
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.protocol.frames import RequestHeader
from runtime.transport import EmbeddedTransport

TOPIC = 2
# DescribeConfigs config_source
DYNAMIC_TOPIC_CONFIG = 1
DEFAULT_CONFIG = 5
# IncrementalAlterConfigs config_operation
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3


class ConfigApi:
    def __init__(
        self, transport: EmbeddedTransport, settings: BrokerSettings, access: Access
    ) -> None:
        self._transport = transport
        self._access = access
        self.settings = settings
        self._dynamic = DynamicConfigResources(transport.log, settings)
        self.by_key: dict[int, Handler] = {
            ApiKey.DESCRIBE_CONFIGS: self.describe_configs,
            ApiKey.ALTER_CONFIGS: self.alter_configs,
            ApiKey.INCREMENTAL_ALTER_CONFIGS: self.incremental_alter_configs,
        }

    @property
    def _log(self) -> Any:
        return self._transport.log

    # --- altering ------------------------------------------------------------

    async def alter_configs(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        def change(config: TopicConfig, defaults: TopicConfig, configs: list[dict]) -> TopicConfig:
            given = {c["name"]: c["value"] for c in configs if c["value"] is not None}
            reset = frozenset(config.overrides - given.keys())
            return TopicConfig.from_configs(given, config.without(reset, defaults))

        return {
            "responses": [await self._alter(res, body, change, peer) for res in body["resources"]]
        }

    async def incremental_alter_configs(
        self, header: RequestHeader, body: dict, peer: Peer
    ) -> dict:
        return {
            "responses": [
                await self._alter(res, body, _apply_operations, peer) for res in body["resources"]
            ]
        }

    async def _alter(self, res: dict, body: dict, change: Any, peer: Peer) -> dict:
        rtype, name = res["resource_type"], res["resource_name"]
        out = {"resource_type": rtype, "resource_name": name, "error_code": 0}
        denied = self._denied(peer, Operation.ALTER_CONFIGS, rtype, name)
        if denied is not None:
            out["error_code"], out["error_message"] = denied
            return out
        try:
            if rtype in RESOURCE_TYPES:
                self._dynamic.alter(
                    rtype,
                    name,
                    res["configs"],
                    incremental=change is _apply_operations,
                    validate_only=body.get("validate_only", False),
                )
                return out
            if rtype != TOPIC:
                raise ConfigError(
                    ErrorCode.INVALID_REQUEST, f"resource type {rtype} is not supported"
                )
            info = self._log.topic(name)
            config = change(info.config, self._log.default_config, res["configs"])
            if not body.get("validate_only", False):
                self._log.alter_config(name, config)
        except UnknownTopicError:
            out.update(error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
            out["error_message"] = f"topic {name!r} does not exist"
        except ConfigError as exc:
            out.update(error_code=exc.code, error_message=str(exc))
        except ValueError as exc:  # a value the topic config refuses
            out.update(error_code=ErrorCode.INVALID_CONFIG, error_message=str(exc))
        except StorageError as exc:
            out.update(error_code=ErrorCode.KAFKA_STORAGE_ERROR, error_message=str(exc))
        return out

    # --- describing ----------------------------------------------------------

    async def describe_configs(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        synonyms = body.get("include_synonyms", False)
        documentation = body.get("include_documentation", False)
        results = []
        for res in body["resources"]:
            rtype, name = res["resource_type"], res["resource_name"]
            entry: dict[str, Any] = {
                "error_code": ErrorCode.NONE,
                "error_message": None,
                "resource_type": rtype,
                "resource_name": name,
                "configs": [],
            }
            denied = self._denied(peer, Operation.DESCRIBE_CONFIGS, rtype, name)
            if denied is not None:
                entry["error_code"], entry["error_message"] = denied
            elif rtype == TOPIC:
                info = self._log.topics().get(name)
                if info is None:
                    entry["error_code"] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                    entry["error_message"] = f"unknown topic {name!r}"
                else:
                    entry["configs"] = self._topic_configs(info.config, synonyms)
            elif rtype in RESOURCE_TYPES:
                try:
                    entry["configs"] = self._dynamic.describe(
                        rtype, name, synonyms=synonyms, documentation=documentation
                    )
                except ConfigError as exc:
                    entry["error_code"], entry["error_message"] = exc.code, str(exc)
            else:
                entry["error_code"] = ErrorCode.INVALID_REQUEST
                entry["error_message"] = f"resource type {rtype} is not supported"
            keys = res["configuration_keys"]
            if keys is not None:
                entry["configs"] = [c for c in entry["configs"] if c["name"] in keys]
            results.append(entry)
        return {"results": results}

    def _denied(
        self, peer: Peer, operation: Operation, rtype: int, name: str
    ) -> tuple[int, str] | None:
        """The refusal of `operation` on a topic's or the broker's configs, or None."""
        if rtype == TOPIC and not self._access.topic(peer, operation, name):
            return ErrorCode.TOPIC_AUTHORIZATION_FAILED, f"not authorized: {operation.name}"
        if rtype in (BROKER, BROKER_LOGGER) and not self._access.cluster(peer, operation):
            return ErrorCode.CLUSTER_AUTHORIZATION_FAILED, f"not authorized: {operation.name}"
        if rtype == GROUP and not self._access.group(peer, operation, name):
            return ErrorCode.GROUP_AUTHORIZATION_FAILED, f"not authorized: {operation.name}"
        return None

    def _topic_configs(self, config: TopicConfig, synonyms: bool) -> list[dict]:
        """Each config with where its value comes from: the topic, a dynamic
        broker config (log.retention.ms for retention.ms), or the default."""
        values = config.to_configs()
        defaults = self._dynamic.startup_default.to_configs()
        out = []
        for name, value in sorted(values.items()):
            own = name in config.overrides
            layers = self._dynamic.topic_default_layers(name)
            source = DYNAMIC_TOPIC_CONFIG if own else (layers[0][2] if layers else DEFAULT_CONFIG)
            entry = _describe(name, value, source, SPECS[name].type)
            if synonyms:  # the topic's own value first, then those under it
                found = entry["synonyms"]
                if own:
                    found.append({"name": name, "value": value, "source": source})
                found += [{"name": n, "value": v, "source": s} for n, v, s in layers]
                found.append({"name": name, "value": defaults[name], "source": DEFAULT_CONFIG})
            out.append(entry)
        return out


def _apply_operations(
    config: TopicConfig, defaults: TopicConfig, configs: list[dict]
) -> TopicConfig:
    """IncrementalAlterConfigs' SET, DELETE, APPEND and SUBTRACT, in request order."""
    current = config.to_configs()
    sets: dict[str, str] = {}
    deletes: set[str] = set()
    for c in configs:
        name, op, value = c["name"], c["config_operation"], c["value"]
        spec = SPECS.get(name)
        if spec is None:
            raise ConfigError(ErrorCode.INVALID_CONFIG, f"unknown topic config {name!r}")
        if op == DELETE:
            deletes.add(name)
            sets.pop(name, None)
            continue
        if value is None:
            raise ConfigError(ErrorCode.INVALID_CONFIG, f"{name}: a value is needed")
        if op in (APPEND, SUBTRACT):
            if spec.type is not ConfigType.LIST:
                raise ConfigError(
                    ErrorCode.INVALID_CONFIG,
                    f"{name} is not a list: APPEND and SUBTRACT apply to list configs only",
                )
            value = list_op(sets.get(name, current[name]), value, op)
        elif op != SET:
            raise ConfigError(ErrorCode.INVALID_REQUEST, f"config operation {op} is not known")
        sets[name] = value
        deletes.discard(name)
    return TopicConfig.from_configs(sets, config.without(frozenset(deletes), defaults))


def _describe(
    name: str, value: str, source: int, config_type: int, *, read_only: bool = False
) -> dict:
    return {
        "name": name,
        "value": value,
        "read_only": read_only,
        "is_default": source == DEFAULT_CONFIG,
        "config_source": source,
        "is_sensitive": False,
        "synonyms": [],  # a new list per entry: synonyms are appended to it
        "config_type": config_type,
        "documentation": None,
    }
