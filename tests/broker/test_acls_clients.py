"""ACLs with unmodified clients, against one `streams broker` with SASL and PLAINTEXT
listeners, no ACL-less access (`--deny-if-no-acl`) and `--super-user User:admin`.

A user without an ACL is refused produce, consume, group join and topic
creation with Kafka's errors; the super user creates ACLs with
confluent-kafka's AdminClient, and the same requests then succeed. Each test
uses its own users and topics (ACLs persist across the module's tests);
the restart test comes last in the module.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from broker_process import REPO, BrokerProcess, free_port, free_ports
from click.testing import CliRunner
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicCollection
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)
from kcat_runner import kcat
from secure_setup import Listeners, Login, Pki, add_user, broker_args
from waiting import wait_until

from streams.cli import cli

with warnings.catch_warnings():
    # kafka-python 3.0 loads its schemas with importlib.resources.read_text
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka.admin import NewTopic as NewTopicKp

pytestmark = pytest.mark.slow

TIMEOUT_S = 30.0
QUIET = {"log_level": 3}
MECHANISM = "SCRAM-SHA-256"


@dataclass
class AclBroker:
    process: BrokerProcess
    users_file: object
    listeners: Listeners
    pki: Pki

    def conf(self, user: str) -> dict:
        return {
            "bootstrap.servers": f"127.0.0.1:{self.listeners.sasl_plaintext}",
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": MECHANISM,
            "sasl.username": user,
            "sasl.password": password_of(user),
        } | QUIET

    def add_user(self, user: str) -> None:
        add_user(self.users_file, user, password_of(user))  # type: ignore[arg-type]

    def admin(self) -> AdminClient:
        return AdminClient(self.conf("admin"))


def password_of(user: str) -> str:
    return f"{user}-secret-password"


@pytest.fixture(scope="module")
def acl_broker(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AclBroker]:
    directory = tmp_path_factory.mktemp("acls")
    users_file = directory / "users.json"
    add_user(users_file, "admin", password_of("admin"))
    while True:  # three listener ports, none the process's own PLAINTEXT or HTTP port
        ports = free_ports(3)
        listeners = Listeners(*ports)
        args = (*broker_args(pki, users_file, listeners, acls=True), "--super-user", "User:admin")
        process = BrokerProcess(directory / "data", args)
        if len({*ports, process.port, process.http_port}) == 5:
            break
    process.start()
    try:
        yield AclBroker(process, users_file, listeners, pki)
    finally:
        process.close()
        log = process.log_text()
        assert "secret-password" not in log


def binding(
    rtype: ResourceType,
    name: str,
    user: str,
    operation: AclOperation,
    *,
    pattern: ResourcePatternType = ResourcePatternType.LITERAL,
    permission: AclPermissionType = AclPermissionType.ALLOW,
) -> AclBinding:
    return AclBinding(rtype, name, pattern, f"User:{user}", "*", operation, permission)


def create_acls(admin: AdminClient, *acls: AclBinding) -> None:
    for future in admin.create_acls(list(acls), request_timeout=TIMEOUT_S).values():
        future.result(TIMEOUT_S)


def create_topic(admin: AdminClient, name: str) -> None:
    admin.create_topics([NewTopic(name, 1, 1)], request_timeout=TIMEOUT_S)[name].result(TIMEOUT_S)


def produce_error(conf: dict, topic: str, **extra: object) -> KafkaError | None:
    """The delivery error of one record (None: delivered)."""
    errors: list[KafkaError | None] = []
    producer = Producer(conf | {"message.timeout.ms": 10_000} | extra)
    producer.produce(topic, b"v", on_delivery=lambda err, _msg: errors.append(err))
    assert producer.flush(TIMEOUT_S) == 0
    return errors[0]


def first_consumer_event(conf: dict, topic: str, group: str) -> KafkaError | bytes:
    """The first error a group consumer meets, or the first value it reads."""
    consumer = Consumer(conf | {"group.id": group, "auto.offset.reset": "earliest"})
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error() is not None:
                return message.error()
            return message.value()
        raise AssertionError(f"nothing from {topic} in {TIMEOUT_S}s")
    finally:
        consumer.close()


def error_code(future_or_call) -> int:  # type: ignore[no-untyped-def]
    with pytest.raises(KafkaException) as caught:
        future_or_call()
    return caught.value.args[0].code()


def test_a_user_without_acls_is_refused_until_the_admin_grants(acl_broker) -> None:
    acl_broker.add_user("bob")
    bob = acl_broker.conf("bob")
    admin = acl_broker.admin()
    create_topic(admin, "bob-orders")  # the super user needs no ACL

    produced = produce_error(bob, "bob-orders")
    assert produced is not None and produced.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    consumed = first_consumer_event(bob, "bob-orders", "bob-group")
    assert isinstance(consumed, KafkaError)  # no READ on the group: no join
    assert consumed.code() == KafkaError.GROUP_AUTHORIZATION_FAILED
    bob_admin = AdminClient(bob)  # kept: a client collected meanwhile fails its futures
    creation = bob_admin.create_topics([NewTopic("bob-new", 1, 1)])["bob-new"]
    assert error_code(lambda: creation.result(TIMEOUT_S)) == KafkaError.TOPIC_AUTHORIZATION_FAILED

    T, G = ResourceType.TOPIC, ResourceType.GROUP
    create_acls(
        admin,
        binding(T, "bob-orders", "bob", AclOperation.WRITE),
        binding(G, "bob-group", "bob", AclOperation.READ),
    )
    assert produce_error(bob, "bob-orders", **{"enable.idempotence": True}) is None
    joined = first_consumer_event(bob, "bob-orders", "bob-group")
    assert isinstance(joined, KafkaError)  # READ on the group, none on the topic
    assert joined.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED

    create_acls(
        admin,
        binding(T, "bob-orders", "bob", AclOperation.READ),
        binding(T, "bob-", "bob", AclOperation.CREATE, pattern=ResourcePatternType.PREFIXED),
    )
    assert first_consumer_event(bob, "bob-orders", "bob-group") == b"v"
    create_topic(bob_admin, "bob-new")

    listed = admin.describe_acls(
        AclBindingFilter(
            ResourceType.ANY,
            None,
            ResourcePatternType.ANY,
            "User:bob",
            None,
            AclOperation.ANY,
            AclPermissionType.ANY,
        ),
        request_timeout=TIMEOUT_S,
    ).result(TIMEOUT_S)
    assert {(a.name, a.operation) for a in listed} == {
        ("bob-orders", AclOperation.WRITE),
        ("bob-orders", AclOperation.READ),
        ("bob-group", AclOperation.READ),
        ("bob-", AclOperation.CREATE),
    }

    deleted = admin.delete_acls(
        [
            AclBindingFilter(
                T,
                "bob-orders",
                ResourcePatternType.LITERAL,
                "User:bob",
                "*",
                AclOperation.WRITE,
                AclPermissionType.ALLOW,
            )
        ],
        request_timeout=TIMEOUT_S,
    )
    (gone,) = [f.result(TIMEOUT_S) for f in deleted.values()]
    assert [(a.name, a.operation) for a in gone] == [("bob-orders", AclOperation.WRITE)]
    again = produce_error(bob, "bob-orders")
    assert again is not None and again.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED

    # bob may not manage ACLs: ALTER on the cluster is the super user's
    mine = bob_admin.create_acls([binding(T, "x", "bob", AclOperation.ALL)])
    (future,) = mine.values()
    assert error_code(lambda: future.result(TIMEOUT_S)) == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    denials = acl_broker.process.log_text().count("denied principal=User:bob")
    assert 1 <= denials <= 8  # one line per class of denial and interval, not per request


def test_deny_wins_and_listings_show_only_describable_topics(acl_broker) -> None:
    acl_broker.add_user("carol")
    admin = acl_broker.admin()
    for name in ("pay-a", "pay-b", "pay-secret", "other-carol"):
        create_topic(admin, name)
    T, P = ResourceType.TOPIC, ResourcePatternType.PREFIXED
    create_acls(
        admin,
        binding(T, "pay-", "carol", AclOperation.READ, pattern=P),
        binding(T, "pay-secret", "carol", AclOperation.DESCRIBE, permission=AclPermissionType.DENY),
    )
    carol = acl_broker.conf("carol")
    carol_admin = AdminClient(carol)
    listed = carol_admin.list_topics(timeout=TIMEOUT_S).topics
    assert sorted(listed) == ["pay-a", "pay-b"]

    args = ["-b", carol["bootstrap.servers"], "-L", "-J"]
    for key in ("security.protocol", "sasl.mechanism", "sasl.username", "sasl.password"):
        args += ["-X", f"{key}={carol[key]}"]
    shown = json.loads(kcat(*args))
    assert sorted(t["topic"] for t in shown["topics"]) == ["pay-a", "pay-b"]
    named = carol_admin.list_topics(topic="pay-secret", timeout=TIMEOUT_S)
    assert named.topics["pay-secret"].error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    described = carol_admin.describe_topics(
        TopicCollection(["pay-a"]), include_authorized_operations=True
    )
    ops = described["pay-a"].result(TIMEOUT_S).authorized_operations
    assert set(ops) == {AclOperation.READ, AclOperation.DESCRIBE}
    cluster = carol_admin.describe_cluster(include_authorized_operations=True)
    assert not cluster.result(TIMEOUT_S).authorized_operations  # none (librdkafka: None)


def test_plaintext_clients_are_anonymous_and_refused(acl_broker) -> None:
    conf = {"bootstrap.servers": acl_broker.process.bootstrap} | QUIET
    create_topic(acl_broker.admin(), "anon-topic")
    refused = produce_error(conf, "anon-topic")
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    create_acls(
        acl_broker.admin(),
        binding(ResourceType.TOPIC, "anon-topic", "ANONYMOUS", AclOperation.WRITE),
    )
    assert produce_error(conf, "anon-topic") is None


def test_a_transactional_id_needs_write_on_it(acl_broker) -> None:
    acl_broker.add_user("dan")
    dan = acl_broker.conf("dan")
    producer = Producer(dan | {"transactional.id": "dan-txn"})
    code = error_code(lambda: producer.init_transactions(TIMEOUT_S))
    assert code == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    create_acls(
        acl_broker.admin(),
        binding(ResourceType.TRANSACTIONAL_ID, "dan-txn", "dan", AclOperation.WRITE),
        binding(ResourceType.TOPIC, "dan-out", "dan", AclOperation.WRITE),
    )
    create_topic(acl_broker.admin(), "dan-out")
    producer = Producer(dan | {"transactional.id": "dan-txn"})
    producer.init_transactions(TIMEOUT_S)
    producer.begin_transaction()
    producer.produce("dan-out", b"in a transaction")
    producer.commit_transaction(TIMEOUT_S)


def kafka_python_admin(acl_broker: AclBroker, user: str):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka import KafkaAdminClient
    return KafkaAdminClient(
        bootstrap_servers=f"127.0.0.1:{acl_broker.listeners.sasl_plaintext}",
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=MECHANISM,
        sasl_plain_username=user,
        sasl_plain_password=password_of(user),
        request_timeout_ms=int(TIMEOUT_S * 1000),
    )


def test_kafka_python_admin_sees_authorized_operations(acl_broker) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka.admin import (
            ACL,
            ACLFilter,
            ACLOperation,
            ACLPermissionType,
            ResourcePattern,
            ResourcePatternFilter,
        )
        from kafka.admin import ACLResourcePatternType as Pattern
        from kafka.admin import ResourceType as KpResource
    acl_broker.add_user("erin")
    admin = kafka_python_admin(acl_broker, "admin")
    erin = kafka_python_admin(acl_broker, "erin")
    try:
        admin.create_topics([NewTopicKp("erin-t", 1, 1), NewTopicKp("not-erins", 1, 1)])
        created = admin.create_acls(
            [
                ACL(
                    "User:erin",
                    "*",
                    op,
                    ACLPermissionType.ALLOW,
                    ResourcePattern(rtype, name, Pattern.LITERAL),
                )
                for rtype, name, op in [
                    (KpResource.TOPIC, "erin-t", ACLOperation.READ),
                    (KpResource.GROUP, "erin-g", ACLOperation.READ),
                ]
            ]
        )
        assert len(created["succeeded"]) == 2 and not created["failed"]
        acls, _ = admin.describe_acls(
            ACLFilter(
                "User:erin",
                None,
                ACLOperation.ANY,
                ACLPermissionType.ANY,
                ResourcePatternFilter(KpResource.ANY, None, Pattern.ANY),
            )
        )
        assert len(acls) == 2
        # the admin sees every topic, erin only hers; both with real bit sets
        assert {"erin-t", "not-erins"} <= set(admin.list_topics())
        assert erin.list_topics() == ["erin-t"]
        (topic,) = erin.describe_topics(["erin-t"])
        assert set(topic["authorized_operations"]) == {"READ", "DESCRIBE"}
        groups = erin.describe_groups(["erin-g"], include_authorized_operations=True)
        assert set(groups["erin-g"]["authorized_operations"]) == {"READ", "DESCRIBE"}
        assert erin.describe_cluster()["authorized_operations"] == []
        assert "ALTER" in admin.describe_cluster()["authorized_operations"]
    finally:
        erin.close()
        admin.close()


def test_kafka_python_admin_on_a_plaintext_broker(broker) -> None:
    """Every listener PLAINTEXT: no ACLs needed, and kafka-python's admin reads the
    bit sets (it failed on the "not asked" value: `31 is not a valid ACLOperation`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka import KafkaAdminClient
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        admin.create_topics([NewTopicKp("plain-t", 1, 1)])
        assert "plain-t" in admin.list_topics()
        (topic,) = admin.describe_topics(["plain-t"])
        assert {"READ", "WRITE", "DESCRIBE", "DELETE"} <= set(topic["authorized_operations"])
        groups = admin.describe_groups(["plain-g"], include_authorized_operations=True)
        assert set(groups["plain-g"]["authorized_operations"]) == {"READ", "DESCRIBE", "DELETE"}
        assert "ALTER" in admin.describe_cluster()["authorized_operations"]
    finally:
        admin.close()


def test_confluent_admin_manages_scram_users(acl_broker) -> None:
    from confluent_kafka.admin import (
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialDeletion,
        UserScramCredentialUpsertion,
    )

    admin = acl_broker.admin()
    sha256 = ScramMechanism.SCRAM_SHA_256
    upsert = UserScramCredentialUpsertion(
        "frank", ScramCredentialInfo(sha256, 8192), password_of("frank").encode()
    )
    for future in admin.alter_user_scram_credentials([upsert]).values():
        future.result(TIMEOUT_S)
    assert "secret-password" not in acl_broker.users_file.read_text()  # type: ignore[attr-defined]
    described = admin.describe_user_scram_credentials(["frank"])["frank"].result(TIMEOUT_S)
    (info,) = described.scram_credential_infos
    assert (info.mechanism, info.iterations) == (sha256, 8192)
    # frank logs in with the new credential (no ACL: a cluster-wide listing is empty)
    frank = AdminClient(acl_broker.conf("frank"))
    assert frank.list_topics(timeout=TIMEOUT_S).topics == {}
    # frank may not manage users: ALTER on the cluster is the super user's
    mine = frank.alter_user_scram_credentials([UserScramCredentialDeletion("admin", sha256)])
    (future,) = mine.values()
    assert error_code(lambda: future.result(TIMEOUT_S)) == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    deleted = admin.alter_user_scram_credentials([UserScramCredentialDeletion("frank", sha256)])
    for future in deleted.values():
        future.result(TIMEOUT_S)
    missing = admin.describe_user_scram_credentials(["frank"])["frank"]
    assert error_code(lambda: missing.result(TIMEOUT_S)) == KafkaError.RESOURCE_NOT_FOUND


def test_a_corrupt_acl_file_or_a_bad_super_user_stops_the_broker_at_start(tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "acls.json").write_text('{"format": "streams-acls", "version": 1, "acls": [{}]}')

    def refused(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "streams", "broker", "--data", str(data), *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
        assert done.returncode != 0 and "broker ready" not in done.stderr, done.stderr
        return done.stderr

    said = refused("--listen", f"127.0.0.1:{free_port()}")
    assert "ACL file" in said and "entry 0" in said and "Traceback" not in said
    assert sorted(p.name for p in data.iterdir()) == ["acls.json"]  # the log was not opened
    said = refused("--listen", f"127.0.0.1:{free_port()}", "--super-user", "admin")
    assert "principal 'admin' is not TYPE:NAME" in said


def test_a_client_certificate_is_its_subjects_principal(acl_broker) -> None:
    pki = acl_broker.pki
    conf = {
        "bootstrap.servers": f"127.0.0.1:{acl_broker.listeners.ssl}",
        "security.protocol": "SSL",
        "ssl.ca.location": str(pki.ca),
        "ssl.certificate.location": str(pki.client_cert),
        "ssl.key.location": str(pki.client_key),
    } | QUIET
    create_topic(acl_broker.admin(), "alice-certified")
    refused = produce_error(conf, "alice-certified")
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # the certificate's CN is alice: User:alice, whatever SASL user of that name there is
    create_acls(
        acl_broker.admin(),
        binding(ResourceType.TOPIC, "alice-certified", "alice", AclOperation.WRITE),
    )
    assert produce_error(conf, "alice-certified") is None


def streams_acls(acl_broker: AclBroker, user: str, *args: str) -> subprocess.CompletedProcess:
    login = Login("SASL_PLAINTEXT", MECHANISM, user, password_of(user))
    url, env = login.streams_url(acl_broker.pki, acl_broker.listeners.sasl_plaintext)
    # in this process: a second's start-up saved per call
    command = ["acls", *args, "--broker", url]
    done = CliRunner().invoke(cli, command, env=env)
    return subprocess.CompletedProcess(command, done.exit_code, done.stdout, done.stderr)


def test_the_streams_acls_command_adds_lists_and_removes(acl_broker) -> None:
    acl_broker.add_user("gina")
    create_topic(acl_broker.admin(), "gina-orders")
    prefixed = ("--topic", "gina-", "--resource-pattern-type", "prefixed")
    added = streams_acls(
        acl_broker, "admin", "add", "--allow-principal", "User:gina",
        "--operation", "write", "--operation", "read", *prefixed,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.stdout.splitlines() == [
        "added ALLOW User:gina WRITE from * on TOPIC:PREFIXED:gina-",
        "added ALLOW User:gina READ from * on TOPIC:PREFIXED:gina-",
    ]
    listed = streams_acls(acl_broker, "admin", "list", "--principal", "User:gina")
    assert len(listed.stdout.splitlines()) == 2, listed.stderr
    assert produce_error(acl_broker.conf("gina"), "gina-orders") is None

    removed = streams_acls(
        acl_broker, "admin", "remove", "--principal", "User:gina", "--operation", "write",
        *prefixed,
    )  # fmt: skip
    assert removed.stdout.splitlines() == [
        "removed ALLOW User:gina WRITE from * on TOPIC:PREFIXED:gina-"
    ], removed.stderr
    refused = produce_error(acl_broker.conf("gina"), "gina-orders")
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # gina may not change ACLs: the broker's refusal is the command's error
    own = streams_acls(acl_broker, "gina", "add", "--allow-principal", "User:gina",
                       "--operation", "all", "--cluster")  # fmt: skip
    assert own.returncode != 0 and "CLUSTER_AUTHORIZATION_FAILED" in own.stderr, own.stderr
    assert "Traceback" not in own.stderr


def test_acls_survive_a_restart(acl_broker) -> None:
    admin = acl_broker.admin()
    everything = AclBindingFilter(
        ResourceType.ANY,
        None,
        ResourcePatternType.ANY,
        None,
        None,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    before = admin.describe_acls(everything).result(TIMEOUT_S)
    assert len(before) >= 6
    acl_broker.process.restart()

    fresh = AdminClient(acl_broker.conf("admin"))

    def after() -> list:
        return fresh.describe_acls(everything).result(TIMEOUT_S)

    assert sorted(map(str, wait_until(after, timeout_s=TIMEOUT_S, what="ACLs"))) == sorted(
        map(str, before)
    )
    bob = acl_broker.conf("bob")
    bob_admin = AdminClient(bob)
    create_topic(bob_admin, "bob-after-restart")  # the PREFIXED CREATE is back
    refused = produce_error(bob, "bob-orders")  # and the deleted WRITE stays deleted
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
