"""The REST proxy over HTTPS with HTTP Basic (the SASL users) and bearer tokens:
a request without valid credentials is refused with 401 and a challenge, and
writes nothing; the same users' passwords and the tokens' digests work; a
plain-HTTP client on the HTTPS port gets no answer it could mistake for one."""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from broker_process import BrokerProcess
from confluent_kafka.admin import AdminClient, NewTopic
from secure_setup import add_user, make_pki

from runtime.security.tokens import add_token, load

pytestmark = pytest.mark.slow

TIMEOUT_S = 10.0
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rest(tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("rest")
    (directory / "pki").mkdir()
    pki = make_pki(directory / "pki")
    users, tokens = directory / "users.json", directory / "tokens.json"
    add_user(users, "alice", "alice-pässword")
    token = add_token(tokens, "ci")
    args = (
        "--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key),
        "--http-auth", "basic", "--http-auth", "bearer",
        "--users", str(users), "--http-tokens", str(tokens),
    )  # fmt: skip
    process = BrokerProcess(directory / "data", args, http_scheme="https")
    process.start()
    admin = AdminClient({"bootstrap.servers": process.bootstrap, "log_level": 3})
    for future in admin.create_topics([NewTopic(t, 1, 1) for t in ("guarded", "served")]).values():
        future.result(timeout=TIMEOUT_S)
    context = ssl.create_default_context(cafile=str(pki.ca))
    try:
        yield process, context, token, tokens
    finally:
        process.close()
        assert "alice-pässword" not in process.log_text() and token not in process.log_text()


def call(
    url: str, context: ssl.SSLContext, auth: str | None, body: Any = None
) -> tuple[int, Any, dict[str, str]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    request.add_header("Content-Type", "application/json")
    if auth is not None:
        request.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S, context=context) as answer:
            return answer.status, json.loads(answer.read()), dict(answer.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def streams_tokens(*args: str) -> str:
    """Run `streams tokens ARGS...`; its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "streams", "tokens", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


RECORDS = {"records": [{"key": "k", "value": {"n": 1}}]}


@pytest.mark.parametrize(
    "auth",
    [None, basic("alice", "wrong"), basic("mallory", "x"), "Bearer not-a-token", "Basic !!!"],
    ids=["none", "wrong-password", "unknown-user", "unknown-token", "malformed"],
)
def test_requests_without_valid_credentials_are_refused_and_write_nothing(rest, auth) -> None:
    process, context, _, _ = rest
    status, body, headers = call(f"{process.http}/topics/guarded", context, auth, RECORDS)
    assert status == 401 and body["error"] == "unauthorized"
    assert headers["WWW-Authenticate"] == 'Basic realm="streams", Bearer realm="streams"'
    alice = basic("alice", "alice-pässword")
    status, topic, _ = call(f"{process.http}/topics/guarded", context, alice)
    assert status == 200 and topic["partitions"][0]["high_watermark"] == 0


def test_basic_with_a_users_password_and_a_bearer_token_are_served(rest) -> None:
    process, context, token, _ = rest
    alice = basic("alice", "alice-pässword")
    status, answer, _ = call(f"{process.http}/topics/served", context, alice, RECORDS)
    assert status == 200 and answer["offsets"] == [{"partition": 0, "offset": 0}]
    status, records, _ = call(
        f"{process.http}/topics/served/partitions/0/records", context, f"Bearer {token}"
    )
    assert status == 200 and [r["value"] for r in records] == [{"n": 1}]


def test_a_removed_token_is_refused_while_the_broker_runs(rest) -> None:
    process, context, _, tokens = rest
    token = add_token(tokens, "short-lived")
    assert call(f"{process.http}/topics", context, f"Bearer {token}")[0] == 200
    streams_tokens("remove", "short-lived", "--tokens", str(tokens))
    assert "short-lived" not in load(tokens)
    assert call(f"{process.http}/topics", context, f"Bearer {token}")[0] == 401


def test_the_tokens_cli_prints_a_token_once_and_stores_only_its_digest(tmp_path) -> None:
    tokens = tmp_path / "tokens.json"
    token = streams_tokens("add", "ci", "--tokens", str(tokens)).strip()
    assert len(token) >= 43 and token not in tokens.read_text()
    assert oct(tokens.stat().st_mode & 0o777) == "0o600"


def test_plain_http_on_the_https_port_gets_no_answer(rest) -> None:
    process, _, _, _ = rest
    plain = process.http.replace("https://", "http://")
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        urllib.request.urlopen(f"{plain}/topics", timeout=TIMEOUT_S)
