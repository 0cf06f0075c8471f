"""Broker, broker-logger and group configs (dynamic_config_api.py) over a real
log: layers and sources as Kafka reports them, changes checked config by config,
log defaults applied to the topics that do not set them, everything persisted."""

from __future__ import annotations

import logging

import pytest

from runtime.broker.broker_configs import (
    DEFAULT_CONFIG,
    DYNAMIC_BROKER_CONFIG,
    DYNAMIC_DEFAULT_BROKER_CONFIG,
    RefusedConfig,
)
from runtime.broker.dynamic_config_api import (
    BROKER,
    BROKER_LOGGER,
    GROUP,
    DynamicConfigResources,
)
from runtime.broker.group_configs import GROUP_CONFIG
from runtime.broker.settings import BrokerSettings
from runtime.log import Log
from runtime.protocol.codes import ErrorCode

SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
SETTINGS = BrokerSettings("127.0.0.1", 9092, default_partitions=3)


def op(name: str, operation: int, value: str | None = None) -> dict:
    return {"name": name, "config_operation": operation, "value": value}


def described(res: DynamicConfigResources, rtype: int, name: str) -> dict[str, dict]:
    entries = res.describe(rtype, name, synonyms=True, documentation=True)
    return {e["name"]: e for e in entries}


def test_broker_configs_in_layers_applied_to_topics_and_persisted(tmp_path):
    with Log.open(tmp_path) as log:
        log.create_topic("plain", 1)
        log.create_topic("own", 1, {"retention.ms": "1000"})
        res = DynamicConfigResources(log, SETTINGS)
        before = described(res, BROKER, "0")
        assert before["num.partitions"]["value"] == "3"
        assert before["num.partitions"]["read_only"]
        assert before["log.retention.ms"]["config_source"] == DEFAULT_CONFIG
        assert not before["log.retention.ms"]["read_only"]
        assert before["log.retention.ms"]["documentation"]
        assert described(res, BROKER, "") == {}  # no cluster-wide default set yet

        res.alter(
            BROKER, "", [op("log.retention.ms", SET, "7000")], incremental=True, validate_only=False
        )
        res.alter(
            BROKER,
            "0",
            [op("log.retention.ms", SET, "5000"), op("log.cleanup.policy", APPEND, "compact")],
            incremental=True,
            validate_only=False,
        )
        now = described(res, BROKER, "0")
        assert now["log.retention.ms"]["value"] == "5000"
        assert now["log.retention.ms"]["config_source"] == DYNAMIC_BROKER_CONFIG
        assert [(s["value"], s["source"]) for s in now["log.retention.ms"]["synonyms"]] == [
            ("5000", DYNAMIC_BROKER_CONFIG),
            ("7000", DYNAMIC_DEFAULT_BROKER_CONFIG),
            ("604800000", DEFAULT_CONFIG),
        ]
        assert now["log.cleanup.policy"]["value"] == "delete,compact"
        cluster = described(res, BROKER, "")
        assert set(cluster) == {"log.retention.ms"}
        assert cluster["log.retention.ms"]["config_source"] == DYNAMIC_DEFAULT_BROKER_CONFIG
        # topics follow the defaults in what they do not set themselves
        assert log.topic("plain").config.retention_ms == 5000
        assert log.topic("plain").config.compacts
        assert log.topic("own").config.retention_ms == 1000
        assert log.create_topic("later", 1).config.retention_ms == 5000
    with Log.open(tmp_path) as log:  # persisted: applied again on the next start
        res = DynamicConfigResources(log, SETTINGS)
        assert log.topic("plain").config.retention_ms == 5000
        assert described(res, BROKER, "0")["log.retention.ms"]["value"] == "5000"
        res.alter(
            BROKER, "0", [op("log.retention.ms", DELETE)], incremental=True, validate_only=False
        )
        assert log.topic("plain").config.retention_ms == 7000  # the cluster default, under it
        assert log.topic("plain").config.overrides == frozenset()


def test_kept_configs_are_accepted_and_read_only_and_bad_ones_refused(tmp_path):
    with Log.open(tmp_path) as log:
        res = DynamicConfigResources(log, SETTINGS)
        kerberos = [op("sasl.kerberos.min.time.before.relogin", SET, "58000")]
        res.alter(BROKER, "0", kerberos, incremental=True, validate_only=False)
        threads = [op("background.threads", SET, "9")]
        res.alter(BROKER, "0", threads, incremental=False, validate_only=False)  # AlterConfigs
        now = described(res, BROKER, "0")
        assert now["background.threads"]["value"] == "9"
        # AlterConfigs replaced the broker's whole set
        assert now["sasl.kerberos.min.time.before.relogin"]["value"] == "60000"

        refusals = [
            ([op("num.partitions", SET, "4")], ErrorCode.INVALID_REQUEST, "dynamically"),
            ([op("broker.id", DELETE)], ErrorCode.INVALID_REQUEST, "broker.id"),
            ([op("no.such.config", SET, "1")], ErrorCode.INVALID_CONFIG, "no.such.config"),
            ([op("background.threads", APPEND, "1")], ErrorCode.INVALID_CONFIG, "not a list"),
        ]
        for configs, code, words in refusals:
            with pytest.raises(RefusedConfig, match=words) as refused:
                res.alter(BROKER, "0", configs, incremental=True, validate_only=False)
            assert refused.value.code == code
        for bad in ("log.retention.ms", "background.threads"):
            with pytest.raises(ValueError, match=bad):
                res.alter(BROKER, "0", [op(bad, SET, "-9")], incremental=True, validate_only=False)
        with pytest.raises(RefusedConfig) as other:
            res.describe(BROKER, "7", synonyms=False, documentation=False)
        assert other.value.code == ErrorCode.INVALID_REQUEST
        # validate_only changes nothing; nothing refused changed anything
        res.alter(
            BROKER, "0", [op("background.threads", SET, "4")], incremental=True, validate_only=True
        )
        assert described(res, BROKER, "0")["background.threads"]["value"] == "9"
        assert described(res, BROKER, "0")["num.partitions"]["value"] == "3"


def test_group_configs_described_for_any_group_altered_and_persisted(tmp_path):
    with Log.open(tmp_path) as log:
        res = DynamicConfigResources(log, SETTINGS)
        fresh = described(res, GROUP, "never-joined")
        assert fresh["consumer.session.timeout.ms"]["value"] == "45000"
        assert fresh["consumer.session.timeout.ms"]["config_source"] == DEFAULT_CONFIG
        assert fresh["consumer.session.timeout.ms"]["synonyms"][0]["name"] == (
            "group.consumer.session.timeout.ms"
        )
        session = [op("consumer.session.timeout.ms", SET, "50000")]
        res.alter(GROUP, "g", session, incremental=True, validate_only=False)
        for value, words in (("40000", r"\[45000, 60000\]"), ("soon", "integer")):
            with pytest.raises(ValueError, match=words):
                res.alter(
                    GROUP,
                    "g",
                    [op("consumer.session.timeout.ms", SET, value)],
                    incremental=True,
                    validate_only=False,
                )
        with pytest.raises(RefusedConfig) as legacy:
            res.alter(GROUP, "g", session, incremental=False, validate_only=False)
        assert legacy.value.code == ErrorCode.INVALID_REQUEST
    with Log.open(tmp_path) as log:
        res = DynamicConfigResources(log, SETTINGS)
        kept = described(res, GROUP, "g")["consumer.session.timeout.ms"]
        assert (kept["value"], kept["config_source"]) == ("50000", GROUP_CONFIG)
        assert described(res, GROUP, "other")["consumer.session.timeout.ms"]["value"] == "45000"
        res.alter(
            GROUP,
            "g",
            [op("consumer.session.timeout.ms", DELETE)],
            incremental=True,
            validate_only=False,
        )
        assert described(res, GROUP, "g")["consumer.session.timeout.ms"]["value"] == "45000"


def test_broker_loggers_are_described_and_set_by_kafka_level_names():
    with Log.open(None) as log:
        res = DynamicConfigResources(log, SETTINGS)
        target = logging.getLogger("runtime.broker.test_dynamic_configs_probe")
        try:
            res.alter(
                BROKER_LOGGER,
                "0",
                [op(target.name, SET, "WARN")],
                incremental=True,
                validate_only=False,
            )
            assert target.level == logging.WARNING
            loggers = described(res, BROKER_LOGGER, "0")
            assert loggers[target.name]["value"] == "WARN"
            assert "root" in loggers
            with pytest.raises(RefusedConfig, match="LOUD"):
                res.alter(
                    BROKER_LOGGER,
                    "0",
                    [op(target.name, SET, "LOUD")],
                    incremental=True,
                    validate_only=False,
                )
            with pytest.raises(RefusedConfig, match="root"):
                res.alter(
                    BROKER_LOGGER, "0", [op("root", DELETE)], incremental=True, validate_only=False
                )
            res.alter(
                BROKER_LOGGER, "0", [op(target.name, DELETE)], incremental=True, validate_only=False
            )
            assert target.level == logging.NOTSET
        finally:
            target.setLevel(logging.NOTSET)


def test_a_damaged_dynamic_configs_file_is_refused_naming_it(tmp_path):
    (tmp_path / "dynamic-configs.json").write_text("{not json")
    with Log.open(tmp_path) as log, pytest.raises(ValueError, match=r"dynamic-configs\.json"):
        DynamicConfigResources(log, SETTINGS)
