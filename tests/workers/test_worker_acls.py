"""A `streams worker` on `kafka://` against a broker that denies what no ACL allows:
with the ACLs the README lists for an app (READ and DESCRIBE_CONFIGS on its
source topic, READ on its group, ALL on its own `APP-` topics) it counts every
event. The operator's side (topic
creation, producing, reading the table) is the PLAINTEXT listener on loopback,
whose `User:ANONYMOUS` is made a super user for the purpose."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from broker_process import BrokerProcess, free_ports
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)
from secure_setup import Listeners, Login, add_user, broker_args, make_pki
from worker_procs import create_topic, produce, read_table, wait_covered

pytestmark = pytest.mark.slow

EVENTS = 1_000
KEYS = [f"k{i % 37}" for i in range(EVENTS)]
TIMEOUT_S = 60.0
USER = "tally-worker"
PASSWORD = "tally-secret"


def test_a_worker_runs_with_just_the_acls_of_its_app(tmp_path: Path, workers) -> None:
    (tmp_path / "pki").mkdir()
    pki = make_pki(tmp_path / "pki")
    users_file = tmp_path / "users.json"
    add_user(users_file, USER, PASSWORD)
    listeners = Listeners(*free_ports(3))
    args = (*broker_args(pki, users_file, listeners, acls=True), "--super-user", "User:ANONYMOUS")
    broker = BrokerProcess(tmp_path / "broker", args)
    broker.start()
    try:
        create_topic(broker.bootstrap)
        produce(broker.bootstrap, KEYS)
        principal = f"User:{USER}"
        acls = [
            (ResourceType.TOPIC, "events", ResourcePatternType.LITERAL, AclOperation.READ),
            (
                ResourceType.TOPIC,
                "events",
                ResourcePatternType.LITERAL,
                AclOperation.DESCRIBE_CONFIGS,
            ),
            (ResourceType.GROUP, "tally", ResourcePatternType.LITERAL, AclOperation.READ),
            (ResourceType.TOPIC, "tally-", ResourcePatternType.PREFIXED, AclOperation.ALL),
        ]
        admin = AdminClient({"bootstrap.servers": broker.bootstrap, "log_level": 3})
        bindings = [
            AclBinding(t, n, p, principal, "*", op, AclPermissionType.ALLOW) for t, n, p, op in acls
        ]
        for future in admin.create_acls(bindings).values():
            future.result(TIMEOUT_S)
        url, env = Login("SASL_SSL", "SCRAM-SHA-256", USER, PASSWORD).streams_url(
            pki, listeners.sasl_ssl
        )
        worker = workers(url, **env)
        wait_covered(tmp_path / "trace", EVENTS, TIMEOUT_S)
        worker.terminate()
        assert read_table(broker.bootstrap) == Counter(KEYS)
        assert "denied principal=User:tally-worker" not in broker.log_text()
    finally:
        broker.close()
