"""The REST proxy holds its callers to the broker's ACLs: HTTP Basic users and
bearer-token principals get 403 without an ACL (whether the topic exists or not),
listings show only what they may describe, and the super user's grant over the
Kafka protocol lets them in."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from broker_process import BrokerProcess, free_port
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)
from secure_setup import Pki, add_user

from runtime.security.tokens import add_token

pytestmark = pytest.mark.slow

TIMEOUT_S = 30.0


class Rest:
    def __init__(self, base: str, context: ssl.SSLContext) -> None:
        self.base, self.context = base, context

    def call(self, path: str, auth: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data)
        request.add_header("Content-Type", "application/json")
        request.add_header("Authorization", auth)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S, context=self.context) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as error:
            with error:
                return error.code, json.loads(error.read())


def basic(user: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{user}-password".encode()).decode()


@pytest.fixture(scope="module")
def secured(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    directory = tmp_path_factory.mktemp("rest-acls")
    users, tokens = directory / "users.json", directory / "tokens.json"
    for user in ("admin", "bob"):
        add_user(users, user, f"{user}-password")
    token = add_token(tokens, "ci")
    sasl_port = free_port()
    args = (
        "--listen", f"SASL_PLAINTEXT://127.0.0.1:{sasl_port}",
        "--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key),
        "--http-auth", "basic", "--http-auth", "bearer",
        "--users", str(users), "--http-tokens", str(tokens),
        "--super-user", "User:admin",
    )  # fmt: skip
    process = BrokerProcess(directory / "data", args, http_scheme="https")
    process.start()
    admin = AdminClient(
        {
            "bootstrap.servers": f"127.0.0.1:{sasl_port}",
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": "admin",
            "sasl.password": "admin-password",
            "log_level": 3,
        }
    )
    try:
        rest = Rest(process.http, ssl.create_default_context(cafile=str(pki.ca)))
        yield rest, admin, token
    finally:
        process.close()


def grant(admin: AdminClient, user: str, topic: str, operation: AclOperation) -> None:
    acl = AclBinding(
        ResourceType.TOPIC,
        topic,
        ResourcePatternType.LITERAL,
        f"User:{user}",
        "*",
        operation,
        AclPermissionType.ALLOW,
    )
    for future in admin.create_acls([acl]).values():
        future.result(TIMEOUT_S)


def test_rest_callers_are_held_to_the_acls(secured) -> None:
    rest, admin, token = secured
    admin.create_topics([NewTopic("rest-orders", 1, 1)])["rest-orders"].result(TIMEOUT_S)
    records = {"records": [{"key": "k", "value": {"n": 1}}]}
    assert rest.call("/topics/rest-orders", basic("admin"), records)[0] == 200

    bob = basic("bob")
    assert rest.call("/topics", bob) == (200, [])  # nothing bob may describe
    status, body = rest.call("/topics/rest-orders", bob, records)
    assert (status, body["error"]) == (403, "topic_authorization_failed")
    # refused the same whether the topic exists or not: nothing to learn from it
    assert rest.call("/topics/no-such-topic", bob)[0] == 403

    grant(admin, "bob", "rest-orders", AclOperation.WRITE)
    assert rest.call("/topics/rest-orders", bob, records)[0] == 200
    status, listed = rest.call("/topics", bob)
    assert [t["name"] for t in listed] == ["rest-orders"]  # WRITE implies DESCRIBE
    reading = "/topics/rest-orders/partitions/0/records?offset=0"
    assert rest.call(reading, bob)[0] == 403

    ci = f"Bearer {token}"
    assert rest.call(reading, ci)[0] == 403
    grant(admin, "ci", "rest-orders", AclOperation.READ)
    status, read = rest.call(reading, ci)
    assert status == 200 and [r["value"] for r in read] == [{"n": 1}, {"n": 1}]
    assert rest.call("/groups", ci) == (200, [])
