"""The REST proxy of a secured `streams broker`: HTTPS with the broker's certificate,
HTTP Basic with the broker's users or a bearer token, and the same ACLs as the Kafka
APIs. A request without credentials is refused (401); a user without an ACL is refused
(403) and allowed once the super user grants it over the Kafka protocol."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
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

from runtime.broker.endpoints import (
    Address,
    Endpoint,
    SecurityProtocol,
    SecuritySettings,
    check_security,
)
from runtime.broker.rest_auth import token_digest
from runtime.security.errors import InsecureConfigError

pytestmark = pytest.mark.slow

TIMEOUT_S = 30.0
TOKEN = "ci-token-0123456789abcdef"


class Rest:
    def __init__(self, base: str, ca: Path) -> None:
        self.base = base
        self.tls = ssl.create_default_context(cafile=str(ca))

    def call(
        self, method: str, path: str, body: Any = None, *, auth: str | None = None
    ) -> tuple[int, Any, dict]:
        """(status, decoded JSON, headers) of one request."""
        headers = {"Content-Type": "application/json"}
        if auth is not None:
            headers["Authorization"] = auth
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S, context=self.tls) as answer:
                return answer.status, json.loads(answer.read()), dict(answer.headers)
        except urllib.error.HTTPError as error:
            with error:
                return error.code, json.loads(error.read()), dict(error.headers)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture(scope="module")
def secured(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    directory = tmp_path_factory.mktemp("rest-secure")
    users = directory / "users.json"
    for user in ("admin", "bob"):
        add_user(users, user, f"{user}-password")
    tokens = directory / "tokens"
    tokens.write_text(f"# CI's token\nUser:ci {token_digest(TOKEN)}\n")
    sasl_port = free_port()
    args = (
        "--listen", f"SASL_PLAINTEXT://127.0.0.1:{sasl_port}",
        "--users", str(users),
        "--tls-cert", str(pki.server_cert),
        "--tls-key", str(pki.server_key),
        "--http-tls",
        "--http-tokens", str(tokens),
        "--super-user", "User:admin",
    )  # fmt: skip
    process = BrokerProcess(directory / "data", args)
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
        rest = Rest(f"https://127.0.0.1:{process.http_port}", pki.ca)
        yield process, rest, admin
    finally:
        process.close()
        assert "-password" not in process.log_text() and TOKEN not in process.log_text()


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


def test_requests_without_valid_credentials_are_refused(secured) -> None:
    process, rest, _ = secured
    for auth in (None, basic("bob", "wrong"), basic("nobody", "x"), "Bearer nope", "Digest x"):
        status, body, headers = rest.call("GET", "/topics", auth=auth)
        assert status == 401, (auth, body)
        assert body["error"] == "unauthorized"
        assert headers["WWW-Authenticate"] == 'Basic realm="streams"'
    assert any("REST request from 127.0.0.1 refused" in line for line in process.log)


def test_basic_and_bearer_principals_are_held_to_the_acls(secured) -> None:
    _, rest, admin = secured
    admin.create_topics([NewTopic("rest-orders", 1, 1)])["rest-orders"].result(TIMEOUT_S)
    admin_auth = basic("admin", "admin-password")
    bob = basic("bob", "bob-password")
    records = {"records": [{"key": "k", "value": {"n": 1}}]}
    assert rest.call("POST", "/topics/rest-orders", records, auth=admin_auth)[0] == 200

    assert rest.call("GET", "/topics", auth=bob)[1] == []  # nothing bob may describe
    status, body, _ = rest.call("POST", "/topics/rest-orders", records, auth=bob)
    assert (status, body["error"]) == (403, "topic_authorization_failed")
    # refused the same whether the topic exists or not: nothing to learn from it
    assert rest.call("GET", "/topics/no-such-topic", auth=bob)[0] == 403

    grant(admin, "bob", "rest-orders", AclOperation.WRITE)
    assert rest.call("POST", "/topics/rest-orders", records, auth=bob)[0] == 200
    listed = rest.call("GET", "/topics", auth=bob)[1]
    assert [t["name"] for t in listed] == ["rest-orders"]  # WRITE implies DESCRIBE
    reading = "/topics/rest-orders/partitions/0/records?offset=0"
    assert rest.call("GET", reading, auth=bob)[0] == 403

    ci = f"Bearer {TOKEN}"
    assert rest.call("GET", reading, auth=ci)[0] == 403
    grant(admin, "ci", "rest-orders", AclOperation.READ)
    status, read, _ = rest.call("GET", reading, auth=ci)
    assert status == 200 and [r["value"] for r in read] == [{"n": 1}, {"n": 1}]


def test_a_rest_proxy_beyond_loopback_needs_authentication_and_https(pki: Pki) -> None:
    endpoints = [Endpoint(SecurityProtocol.SASL_SSL, Address("127.0.0.1", 9093))]
    wide = Address("0.0.0.0", 8082)
    tls = {"tls_cert": str(pki.server_cert), "tls_key": str(pki.server_key)}
    users = {"users": "users.json"}
    with pytest.raises(InsecureConfigError, match="--http-tls"):
        check_security(endpoints, SecuritySettings(**tls, **users), wide)
    with pytest.raises(InsecureConfigError, match="--users or --http-tokens"):
        ssl_only = [Endpoint(SecurityProtocol.SSL, Address("127.0.0.1", 9093))]
        check_security(ssl_only, SecuritySettings(**tls, http_tls=True), wide)
    check_security(endpoints, SecuritySettings(**tls, **users, http_tls=True), wide)
    with pytest.raises(ValueError, match="give --http"):
        check_security(endpoints, SecuritySettings(**tls, **users, http_tls=True), None)
