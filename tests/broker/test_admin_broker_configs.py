"""Broker, broker-logger and group configs with real clients (confluent-kafka's
AdminClient, kafka-python) against a `streams broker` process: described with
Kafka's sources and read-only flags, changed at run time (or refused config by
config), applied to the topics and kept across a restart (group configs' own
restart test: tests/runtime/test_dynamic_configs.py)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from broker_process import BrokerProcess
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewTopic,
    ResourceType,
)

with warnings.catch_warnings():
    # kafka-python 3.0 loads its schemas with importlib.resources.read_text
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka.admin import ConfigResource as KpConfigResource
    from kafka.admin import ConfigResourceType, KafkaAdminClient

pytestmark = pytest.mark.slow
TIMEOUT_S = 30.0
SET = AlterConfigOpType.SET


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    process = BrokerProcess(Path(tmp_path_factory.mktemp("broker-configs")), ("--partitions", "2"))
    process.start()
    yield process
    process.close()


def kp_client(broker: BrokerProcess) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10_000)


def describe(admin: AdminClient, rtype: ResourceType, name: str) -> dict:
    resource = ConfigResource(rtype, name)
    return admin.describe_configs([resource])[resource].result(TIMEOUT_S)


def alter(admin: AdminClient, rtype: ResourceType, name: str, **configs: str) -> None:
    entries = [
        ConfigEntry(k.replace("_", "."), v, incremental_operation=SET) for k, v in configs.items()
    ]
    resource = ConfigResource(rtype, name, incremental_configs=entries)
    admin.incremental_alter_configs([resource])[resource].result(TIMEOUT_S)


def test_broker_configs_are_described_changed_applied_and_kept(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    before = describe(admin, ResourceType.BROKER, "0")
    assert before["num.partitions"].value == "2"  # the --partitions flag
    assert before["num.partitions"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert before["num.partitions"].is_read_only
    assert before["log.retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    assert not before["log.retention.ms"].is_read_only

    alter(admin, ResourceType.BROKER, "0", log_retention_ms="3600000", background_threads="9")
    admin.create_topics([NewTopic("bc-plain", 1, 1)])["bc-plain"].result(TIMEOUT_S)
    retention = describe(admin, ResourceType.TOPIC, "bc-plain")["retention.ms"]
    assert retention.value == "3600000"
    assert retention.source == ConfigSource.DYNAMIC_BROKER_CONFIG.value  # as Kafka reports it
    first = next(iter(retention.synonyms.values()))
    assert (first.name, first.source) == (
        "log.retention.ms",
        ConfigSource.DYNAMIC_BROKER_CONFIG.value,
    )
    with pytest.raises(KafkaException) as refused:
        alter(admin, ResourceType.BROKER, "0", num_partitions="5", log_retention_ms="1000")
    assert refused.value.args[0].code() == KafkaError.INVALID_REQUEST
    assert "num.partitions" in refused.value.args[0].str()
    assert describe(admin, ResourceType.BROKER, "0")["log.retention.ms"].value == "3600000"

    # kafka-python: what is modified, then AlterConfigs (which keeps the others it read)
    kp = kp_client(broker)
    try:
        broker_0 = KpConfigResource(ConfigResourceType.BROKER, "0")
        modified = kp.describe_configs([broker_0])["broker"]["0"]
        assert modified["log.retention.ms"]["config_source"] == "DYNAMIC_BROKER_CONFIG"
        assert modified["background.threads"]["value"] == "9"
        changed = KpConfigResource(ConfigResourceType.BROKER, "0", {"log.retention.ms": "7200000"})
        kp.alter_configs([changed], incremental=False)
    finally:
        kp.close()  # kafka-python leaks sockets the restart breaks
    broker.restart()  # kept in the data directory, applied again
    fresh = AdminClient({"bootstrap.servers": broker.bootstrap})
    after = describe(fresh, ResourceType.BROKER, "0")
    assert after["log.retention.ms"].value == "7200000"
    assert after["log.retention.ms"].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    assert after["background.threads"].value == "9"
    assert describe(fresh, ResourceType.TOPIC, "bc-plain")["retention.ms"].value == "7200000"


def test_group_configs_and_broker_loggers(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    fresh = describe(admin, ResourceType.GROUP, "never-joined")  # any group id has configs
    assert fresh["consumer.session.timeout.ms"].value == "45000"
    assert fresh["consumer.session.timeout.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    alter(admin, ResourceType.GROUP, "gc", consumer_session_timeout_ms="50000")
    with pytest.raises(KafkaException) as refused:
        alter(admin, ResourceType.GROUP, "gc", consumer_session_timeout_ms="1000")
    assert refused.value.args[0].code() == KafkaError.INVALID_CONFIG
    assert "45000" in refused.value.args[0].str()  # the bound it broke
    kept = describe(admin, ResourceType.GROUP, "gc")["consumer.session.timeout.ms"]
    assert (kept.value, kept.source) == ("50000", ConfigSource.GROUP_CONFIG.value)

    kp = kp_client(broker)
    try:
        group = KpConfigResource(ConfigResourceType.GROUP, "gc")
        described = kp.describe_configs([group])["group"]["gc"]
        assert described["consumer.session.timeout.ms"]["value"] == "50000"
        loggers = KpConfigResource(ConfigResourceType.BROKER_LOGGER, "0")
        levels = kp.describe_configs([loggers], config_filter="all")["broker_logger"]["0"]
        assert levels["root"]["value"] in ("INFO", "WARN", "DEBUG")
        quiet = KpConfigResource(
            ConfigResourceType.BROKER_LOGGER, "0", {"runtime.broker.coordinator": "WARN"}
        )
        kp.alter_configs([quiet], incremental=True, raise_on_unknown=False)
        levels = kp.describe_configs([loggers], config_filter="all")["broker_logger"]["0"]
        assert levels["runtime.broker.coordinator"]["value"] == "WARN"
    finally:
        kp.close()
