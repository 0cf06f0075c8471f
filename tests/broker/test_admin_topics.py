"""The admin surface on topics, with real clients against a `streams broker`
process: CreatePartitions, DescribeConfigs / AlterConfigs /
IncrementalAlterConfigs (and the configs that change behaviour), DeleteRecords,
ListOffsets MAX_TIMESTAMP; each with confluent-kafka, kafka-python and kcat
where they offer it."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from broker_process import BrokerProcess
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka import TopicPartition as TP
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    ResourceType,
)
from kafka_wire import WireClient, batch, fetch_body, produce_body
from kcat_runner import kcat

from runtime.log.records import TIMESTAMP_LOG_APPEND, encode_batch, iter_batches
from runtime.protocol.codes import ApiKey, ErrorCode

with warnings.catch_warnings():
    # kafka-python 3.0 loads its schemas with importlib.resources.read_text
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka.admin import ConfigResource as KpConfigResource
    from kafka.admin import ConfigResourceType, KafkaAdminClient
    from kafka.admin import NewPartitions as KpNewPartitions
    from kafka.admin import OffsetSpec as KpOffsetSpec
    from kafka.structs import TopicPartition as KpTP

pytestmark = pytest.mark.slow
TIMEOUT_S = 30.0
APPEND = AlterConfigOpType.APPEND


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    process = BrokerProcess(Path(tmp_path_factory.mktemp("admin")), ())
    process.start()
    yield process
    process.close()


@pytest.fixture(scope="module")
def admin(broker: BrokerProcess) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap})


@pytest.fixture
def kp_admin(broker: BrokerProcess) -> Iterator[KafkaAdminClient]:
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10_000)
    yield client
    client.close()


def create(admin: AdminClient, name: str, partitions: int = 1, **config: str) -> None:
    admin.create_topics([NewTopic(name, partitions, 1, config=config)])[name].result(TIMEOUT_S)


def produce(bootstrap: str, topic: str, values: list[bytes], **options) -> list:
    """Produce to partition 0 (key b"k"); returns the delivered messages (or errors)."""
    delivered: list = []
    config = {"bootstrap.servers": bootstrap, "linger.ms": 0, **options.pop("config", {})}
    with Producer(config) as producer:
        for value in values:
            producer.produce(
                topic,
                value=value,
                key=options.get("key", b"k"),
                partition=0,
                on_delivery=lambda err, msg: delivered.append(err or msg),
                **({"timestamp": options["timestamp"]} if "timestamp" in options else {}),
            )
            producer.flush(TIMEOUT_S)
    return delivered


def consume(bootstrap: str, topic: str, count: int, **config: str) -> list:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{topic}-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **config,
        }
    )
    consumer.subscribe([topic])
    got: list = []
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while len(got) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got.append(msg)
    finally:
        consumer.close()
    return got


# --- CreatePartitions ---------------------------------------------------------


def test_create_partitions_with_confluent_kafka_kafka_python_and_kcat(broker, admin, kp_admin):
    create(admin, "grow")
    admin.create_partitions([NewPartitions("grow", 3)])["grow"].result(TIMEOUT_S)
    kp_admin.create_partitions({"grow": KpNewPartitions(total_count=5)})
    metadata = kcat("-b", broker.bootstrap, "-L", "-t", "grow", "-J")
    assert '"partition":4' in metadata.replace(" ", "")
    assert len(admin.list_topics("grow", timeout=TIMEOUT_S).topics["grow"].partitions) == 5
    with pytest.raises(KafkaException) as refused:
        admin.create_partitions([NewPartitions("grow", 4)])["grow"].result(TIMEOUT_S)
    assert refused.value.args[0].code() == KafkaError.INVALID_PARTITIONS
    with pytest.raises(KafkaException) as unknown:
        admin.create_partitions([NewPartitions("nope", 2)])["nope"].result(TIMEOUT_S)
    assert unknown.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    delivered = produce(broker.bootstrap, "grow", [b"to-4"])
    assert delivered[0].error() is None


# --- configs ------------------------------------------------------------------


def _describe(admin: AdminClient, topic: str) -> dict:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    return admin.describe_configs([resource])[resource].result(TIMEOUT_S)


def test_configs_are_described_altered_incrementally_and_persisted(broker, admin, kp_admin):
    create(admin, "cfg", **{"retention.ms": "100000", "preallocate": "true"})
    described = _describe(admin, "cfg")
    assert len(described) >= 30  # every standard topic config
    assert described["retention.ms"].value == "100000"
    assert described["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert described["segment.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    assert described["unclean.leader.election.enable"].value == "false"

    change = ConfigResource(
        ResourceType.TOPIC,
        "cfg",
        incremental_configs=[
            ConfigEntry(
                "cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND
            ),
            ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
            ConfigEntry("segment.ms", "60000", incremental_operation=AlterConfigOpType.SET),
        ],
    )
    admin.incremental_alter_configs([change])[change].result(TIMEOUT_S)
    described = _describe(admin, "cfg")
    assert described["cleanup.policy"].value == "compact,delete"
    assert described["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    assert described["segment.ms"].value == "60000"

    # kafka-python: describe only what is set on the topic, then AlterConfigs
    resource = KpConfigResource(ConfigResourceType.TOPIC, "cfg")
    modified = kp_admin.describe_configs([resource])["topic"]["cfg"]
    assert set(modified) == {"cleanup.policy", "segment.ms", "preallocate"}
    assert modified["segment.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"
    kp_admin.alter_configs(
        [KpConfigResource(ConfigResourceType.TOPIC, "cfg", {"max.message.bytes": "5000"})],
        incremental=False,
    )
    kp_admin.close()  # kafka-python leaks sockets the restart breaks
    broker.restart()  # persisted in the topic catalog
    described = _describe(admin, "cfg")
    assert described["max.message.bytes"].value == "5000"
    assert described["segment.ms"].value == "60000"
    # AlterConfigs replaces the whole set: what it does not name is default again
    replace = ConfigResource(ResourceType.TOPIC, "cfg", set_config={"retention.ms": "5000"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # confluent-kafka prefers incremental
        admin.alter_configs([replace])[replace].result(TIMEOUT_S)
    described = _describe(admin, "cfg")
    assert described["retention.ms"].value == "5000"
    assert described["segment.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    assert described["max.message.bytes"].value == "1048588"


def test_a_bad_config_is_refused_and_changes_nothing(admin):
    create(admin, "cfg-bad")
    bad = ConfigResource(
        ResourceType.TOPIC,
        "cfg-bad",
        incremental_configs=[
            ConfigEntry("retention.ms", "5", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("min.insync.replicas", "0", incremental_operation=AlterConfigOpType.SET),
        ],
    )
    with pytest.raises(KafkaException) as refused:
        admin.incremental_alter_configs([bad])[bad].result(TIMEOUT_S)
    assert refused.value.args[0].code() == KafkaError.INVALID_CONFIG
    assert "min.insync.replicas" in refused.value.args[0].str()
    assert _describe(admin, "cfg-bad")["retention.ms"].value == "604800000"


def test_log_append_time_is_stamped_by_the_broker(broker, admin):
    create(admin, "lat", **{"message.timestamp.type": "LogAppendTime"})
    before_ms = int(time.time() * 1000)
    [delivered] = produce(broker.bootstrap, "lat", [b"v"], timestamp=1_000)
    after_ms = int(time.time() * 1000)
    kind, stamp = delivered.timestamp()
    assert before_ms - 1000 <= stamp <= after_ms + 1000 and stamp != 1_000
    [read] = consume(broker.bootstrap, "lat", 1)
    assert read.timestamp() == (kind, stamp)
    assert kind == 2  # TIMESTAMP_LOG_APPEND_TIME


def test_compression_type_recompresses_and_every_client_reads_it(broker, admin):
    create(admin, "zstd-topic", **{"compression.type": "zstd"})
    values = [b"value-%d" % i for i in range(50)]
    with Producer({"bootstrap.servers": broker.bootstrap, "compression.type": "gzip"}) as p:
        for value in values:
            p.produce("zstd-topic", value=value, key=b"k", partition=0)
        assert p.flush(TIMEOUT_S) == 0
    with WireClient(broker.bootstrap) as wire:
        answer = wire.request(ApiKey.FETCH, 11, fetch_body("zstd-topic", 0, 0))
    records = answer["responses"][0]["partitions"][0]["records"]
    assert {h.compression for _, h in iter_batches(bytes(records))} == {4}  # zstd
    assert [m.value() for m in consume(broker.bootstrap, "zstd-topic", 50)] == values
    out = kcat("-b", broker.bootstrap, "-C", "-t", "zstd-topic", "-o", "beginning", "-e", "-q")
    assert out.split() == [v.decode() for v in values]


def test_keyless_records_are_refused_on_a_compacted_topic(broker, admin):
    create(admin, "compacted", **{"cleanup.policy": "compact"})
    [refused] = produce(broker.bootstrap, "compacted", [b"v"], key=None)
    assert refused.code() == KafkaError.INVALID_RECORD
    [stored] = produce(broker.bootstrap, "compacted", [b"v"], key=b"k")
    assert stored.error() is None and stored.offset() == 0
    # in one batch: the whole batch is refused, and the answer names the keyless
    # record (KIP-467's record_errors)
    mixed = bytes(encode_batch([(b"a", b"v", 1, ()), (None, b"v", 1, ()), (b"c", b"v", 1, ())]))
    with WireClient(broker.bootstrap) as wire:
        answer = wire.request(ApiKey.PRODUCE, 8, produce_body("compacted", 0, mixed))
    [partition] = answer["responses"][0]["partitions"]
    assert partition["error_code"] == ErrorCode.INVALID_RECORD
    assert [e["batch_index"] for e in partition["record_errors"]] == [1]
    latest = admin.list_offsets({TP("compacted", 0): OffsetSpec.latest()})
    assert latest[TP("compacted", 0)].result(TIMEOUT_S).offset == 1  # nothing of it stored


def test_min_insync_replicas_above_one_refuses_acks_all(broker, admin):
    create(admin, "isr", **{"min.insync.replicas": "2"})
    with WireClient(broker.bootstrap) as wire:
        for acks, code in ((-1, ErrorCode.NOT_ENOUGH_REPLICAS), (1, ErrorCode.NONE)):
            answer = wire.request(ApiKey.PRODUCE, 8, produce_body("isr", 0, batch(b"v"), acks))
            assert answer["responses"][0]["partitions"][0]["error_code"] == code
    # librdkafka retries NOT_ENOUGH_REPLICAS until the message times out
    timeouts = {"message.timeout.ms": 2000, "retry.backoff.ms": 100, "acks": "all"}
    [refused] = produce(broker.bootstrap, "isr", [b"v"], config=timeouts)
    assert refused.code() == KafkaError._MSG_TIMED_OUT
    latest = admin.list_offsets({TP("isr", 0): OffsetSpec.latest()})
    assert latest[TP("isr", 0)].result(TIMEOUT_S).offset == 1  # only the acks=1 record


# --- DeleteRecords, ListOffsets ---------------------------------------------------


def test_delete_records_moves_the_log_start(broker, admin, kp_admin):
    create(admin, "trim", **{"segment.bytes": "2000"})
    produce(broker.bootstrap, "trim", [b"x" * 200 for _ in range(40)])
    deleted = admin.delete_records([TP("trim", 0, 25)])
    assert deleted[TP("trim", 0, 25)].result(TIMEOUT_S).low_watermark == 25
    earliest = admin.list_offsets({TP("trim", 0): OffsetSpec.earliest()})
    assert earliest[TP("trim", 0)].result(TIMEOUT_S).offset == 25
    kp_admin.delete_records({KpTP("trim", 0): 30})
    kp_earliest = kp_admin.list_partition_offsets({KpTP("trim", 0): KpOffsetSpec.EARLIEST})
    assert kp_earliest[KpTP("trim", 0)].offset == 30
    with WireClient(broker.bootstrap) as wire:
        below = wire.request(ApiKey.FETCH, 11, fetch_body("trim", 0, 10))
    assert below["responses"][0]["partitions"][0]["error_code"] == ErrorCode.OFFSET_OUT_OF_RANGE
    kp_admin.close()  # kafka-python leaks sockets the restart breaks
    broker.restart()  # the log start offset is persisted
    out = kcat("-b", broker.bootstrap, "-C", "-t", "trim", "-o", "beginning", "-e", "-f", "%o\n")
    assert out.split()[0] == "30" and len(out.split()) == 10
    files = sorted(p.name for p in (broker.data_dir / "trim-0").glob("*.log"))
    assert int(files[0].split(".")[0]) > 0  # the segments wholly below are gone


def test_list_offsets_max_timestamp(broker, admin, kp_admin):
    create(admin, "maxts")
    for ts in (5_000, 90_000, 7_000, 90_000, 3_000):
        produce(broker.bootstrap, "maxts", [b"v"], timestamp=ts)
    found = admin.list_offsets({TP("maxts", 0): OffsetSpec.max_timestamp()})
    result = found[TP("maxts", 0)].result(TIMEOUT_S)
    assert (result.offset, result.timestamp) == (1, 90_000)
    kp_found = kp_admin.list_partition_offsets({KpTP("maxts", 0): KpOffsetSpec.MAX_TIMESTAMP})
    assert (kp_found[KpTP("maxts", 0)].offset, kp_found[KpTP("maxts", 0)].timestamp) == (1, 90_000)


def test_log_append_time_batches_are_marked_on_disk(broker, admin):
    create(admin, "lat-wire", **{"message.timestamp.type": "LogAppendTime"})
    produce(broker.bootstrap, "lat-wire", [b"a", b"b"])
    with WireClient(broker.bootstrap) as wire:
        answer = wire.request(ApiKey.FETCH, 11, fetch_body("lat-wire", 0, 0))
    records = bytes(answer["responses"][0]["partitions"][0]["records"])
    assert all(h.attributes & TIMESTAMP_LOG_APPEND for _, h in iter_batches(records))
