"""Broker loggers (the BROKER_LOGGER resource): the levels of the broker's
Python loggers, described by Kafka's level names and changed at run time by
IncrementalAlterConfigs, as `kafka-configs --entity-type broker-loggers` does
with a Kafka broker. Levels are not persisted (neither are Kafka's).
"""

from __future__ import annotations

import logging

from runtime.broker.broker_configs import RefusedConfig
from runtime.log.topic_configs import ConfigType
from runtime.protocol.codes import ErrorCode

DYNAMIC_BROKER_LOGGER_CONFIG = 6
ROOT = "root"
_PACKAGES = ("runtime", "streams", "stores")
_OFF = logging.CRITICAL + 10
# Kafka's (log4j's) level names; TRACE has no Python level below DEBUG to map to
_TO_PYTHON = {
    "TRACE": logging.DEBUG,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "ERROR": logging.ERROR,
    "FATAL": logging.CRITICAL,
    "OFF": _OFF,
}
_TO_KAFKA = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARN",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "FATAL",
    _OFF: "OFF",
}
SET, DELETE = 0, 1


def _level_name(level: int) -> str:
    known = [lv for lv in _TO_KAFKA if lv <= level]
    return _TO_KAFKA[max(known)] if known else "TRACE"


def _logger(name: str) -> logging.Logger:
    return logging.getLogger() if name == ROOT else logging.getLogger(name)


def describe() -> list[dict]:
    """The root logger and the broker's own, each with its effective level."""
    names = [
        name
        for name, found in logging.root.manager.loggerDict.items()
        if isinstance(found, logging.Logger) and name.split(".")[0] in _PACKAGES
    ]
    return [
        {
            "name": name,
            "value": _level_name(_logger(name).getEffectiveLevel()),
            "read_only": False,
            "is_default": False,
            "config_source": DYNAMIC_BROKER_LOGGER_CONFIG,
            "is_sensitive": False,
            "synonyms": [],
            "config_type": ConfigType.STRING,
            "documentation": None,
        }
        for name in [ROOT, *sorted(names)]
    ]


def check(configs: list[dict]) -> list[tuple[logging.Logger, int]]:
    """The (logger, level) changes of an IncrementalAlterConfigs, or RefusedConfig."""
    changes = []
    for c in configs:
        name, op, value = c["name"], c["config_operation"], c["value"]
        if not name:
            raise RefusedConfig(ErrorCode.INVALID_CONFIG, "a logger name is needed")
        if op == DELETE:
            if name == ROOT:
                raise RefusedConfig(
                    ErrorCode.INVALID_CONFIG, "the root logger's level cannot be removed"
                )
            changes.append((_logger(name), logging.NOTSET))
        elif op == SET:
            level = _TO_PYTHON.get((value or "").upper())
            if level is None:
                raise RefusedConfig(
                    ErrorCode.INVALID_CONFIG,
                    f"logger {name}: level {value!r} is not one of {', '.join(_TO_PYTHON)}",
                )
            changes.append((_logger(name), level))
        else:
            raise RefusedConfig(
                ErrorCode.INVALID_REQUEST, f"only SET and DELETE apply to broker loggers, not {op}"
            )
    return changes
