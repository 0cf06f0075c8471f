"""Safe defaults: `streams broker` refuses to start with a listener that would let
anyone in from the network, unless --allow-insecure; it never advertises a
wildcard address; settings a listener lacks (or no listener uses) are errors;
DescribeConfigs tells the limit on frames before authentication."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from broker_process import free_wildcard_port
from kafka_wire import WireClient, metadata_body
from secure_setup import add_user

from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.security.scram import ScramClient

pytestmark = pytest.mark.slow

REFUSED_WITHIN_S = 20.0
REPO = Path(__file__).resolve().parents[2]


def refused(tmp_path: Path, *args: str) -> str:
    """Start a broker that must refuse to start; its error output."""
    done = subprocess.run(
        [sys.executable, "-m", "streams", "broker", "--data", str(tmp_path / "data"), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=REFUSED_WITHIN_S,
        check=False,
    )
    assert done.returncode != 0, done.stderr
    assert "broker ready" not in done.stderr
    assert not (tmp_path / "data").exists()  # refused before the log was opened
    return done.stderr


@pytest.mark.parametrize(
    ("listen", "says"),
    [
        ("0.0.0.0:{port}", "PLAINTEXT authenticates nobody"),
        ("PLAINTEXT://[::]:{port}", "PLAINTEXT authenticates nobody"),
        ("SSL://0.0.0.0:{port}", "SSL without --tls-client-ca"),
        ("SASL_PLAINTEXT://0.0.0.0:{port}", "PLAIN passwords in the clear"),
    ],
    ids=["plaintext", "plaintext-ipv6", "ssl-without-client-ca", "plain-over-plaintext"],
)
def test_a_listener_letting_anyone_in_from_the_network_is_refused(
    tmp_path, pki, listen, says
) -> None:
    users = tmp_path / "users.json"
    add_user(users, "alice", "pw")
    args = ["--listen", listen.format(port=free_wildcard_port())]
    if "SSL" in listen:
        args += ["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key)]
    if "SASL" in listen:
        args += ["--users", str(users)]
    error = refused(tmp_path, *args)
    assert says in error and "--allow-insecure" in error


def test_the_rest_proxy_on_the_network_is_refused(tmp_path) -> None:
    error = refused(tmp_path, "--http", f"0.0.0.0:{free_wildcard_port()}")
    assert "the REST proxy on 0.0.0.0" in error and "--allow-insecure" in error
    assert "lets anyone in" in error


def test_rest_credentials_over_plain_http_on_the_network_are_refused(tmp_path) -> None:
    users = tmp_path / "users.json"
    add_user(users, "alice", "pw")
    address = f"0.0.0.0:{free_wildcard_port()}"
    error = refused(tmp_path, "--http", address, "--http-auth", "basic", "--users", str(users))
    assert "in the clear" in error and f"https://{address}" in error


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--listen", "SASL_SSL://127.0.0.1:{port}", "--users", "{users}"], "--tls-cert"),
        (["--listen", "SASL_PLAINTEXT://127.0.0.1:{port}"], "--users FILE"),
        (["--users", "{users}"], "no SASL listener nor --http-auth basic"),
        (["--http-auth", "basic", "--users", "{users}"], "for the REST proxy: no --http"),
        (["--http", "127.0.0.1:{port2}", "--http-auth", "bearer"], "needs --http-tokens"),
        (["--http", "127.0.0.1:{port2}", "--http-auth", "basic"], "--http-auth basic need --users"),
        (["--http", "https://127.0.0.1:{port2}"], "https:// need --tls-cert"),
        (["--http", "ftp://127.0.0.1:{port2}"], "expected http:// or https://"),
        (["--tls-cert", "{cert}", "--tls-key", "{key}"], "no SSL or SASL_SSL listener"),
        (["--listen", "TLS://127.0.0.1:{port}"], "unknown security protocol"),
        (["--listen", "127.0.0.1:{port}", "--listen", "127.0.0.1:{port2}"], "one of each"),
        (["--advertise", "SSL://h:1"], "no SSL listener to advertise"),
        (["--listen", "SASL_PLAINTEXT://127.0.0.1:{port}", "--users", "{missing}"], "exist"),
    ],
    ids=[
        "tls-without-cert",
        "sasl-without-users",
        "users-without-sasl",
        "http-auth-without-http",
        "bearer-without-tokens",
        "basic-without-users",
        "https-without-cert",
        "http-unknown-scheme",
        "cert-without-tls",
        "unknown-protocol",
        "two-plaintext",
        "advertise-nothing",
        "missing-users-file",
    ],
)
def test_settings_a_listener_lacks_or_no_listener_uses(tmp_path, pki, args, says) -> None:
    users = tmp_path / "users.json"
    add_user(users, "alice", "pw")
    values = {
        "port": free_wildcard_port(),
        "port2": free_wildcard_port(),
        "users": users,
        "missing": tmp_path / "missing.json",
        "cert": pki.server_cert,
        "key": pki.server_key,
    }
    assert says in refused(tmp_path, *(a.format(**values) for a in args))


def test_allow_insecure_binds_every_interface_and_advertises_the_host_name(start_broker) -> None:
    broker = start_broker("--allow-insecure", plaintext_host="0.0.0.0")
    with WireClient(broker.bootstrap) as wire:
        (advertised,) = wire.request(ApiKey.METADATA, 8, metadata_body())["brokers"]
    assert advertised["host"] == socket.gethostname() != "0.0.0.0"
    assert advertised["port"] == broker.port
    assert "0.0.0.0" not in advertised["host"]


def test_advertise_names_what_a_wildcard_listener_tells_clients(start_broker) -> None:
    broker = start_broker("--allow-insecure", "--advertise", "localhost", plaintext_host="0.0.0.0")
    with WireClient(broker.bootstrap) as wire:
        (advertised,) = wire.request(ApiKey.METADATA, 8, metadata_body())["brokers"]
        coordinator = wire.request(ApiKey.FIND_COORDINATOR, 2, {"key": "g", "key_type": 0})
    assert (advertised["host"], advertised["port"]) == ("localhost", broker.port)
    assert (coordinator["host"], coordinator["port"]) == ("localhost", broker.port)


def test_scram_over_sasl_plaintext_may_listen_on_the_network(start_broker, tmp_path) -> None:
    users = tmp_path / "users.json"
    add_user(users, "alice", "alice-pw")
    port = free_wildcard_port()
    start_broker(
        "--listen", f"SASL_PLAINTEXT://0.0.0.0:{port}",
        "--advertise", f"SASL_PLAINTEXT://127.0.0.1:{port}",
        "--sasl-mechanism", "SCRAM-SHA-256",
        "--users", str(users),
    )  # fmt: skip
    with WireClient(f"127.0.0.1:{port}") as wire:
        answer = wire.request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": "SCRAM-SHA-256"})
        assert answer == {"error_code": ErrorCode.NONE, "mechanisms": ["SCRAM-SHA-256"]}
        client = ScramClient("SCRAM-SHA-256", "alice", "alice-pw")
        first = wire.request(ApiKey.SASL_AUTHENTICATE, 1, {"auth_bytes": client.first()})
        final = client.final(bytes(first["auth_bytes"]))
        last = wire.request(ApiKey.SASL_AUTHENTICATE, 1, {"auth_bytes": final})
        client.verify(bytes(last["auth_bytes"]))
        (advertised,) = wire.request(ApiKey.METADATA, 8, metadata_body())["brokers"]
    assert (advertised["host"], advertised["port"]) == ("127.0.0.1", port)


def test_describe_configs_reports_the_sasl_frame_limit_under_kafkas_name(broker) -> None:
    body = {
        "resources": [{"resource_type": 4, "resource_name": "0", "configuration_keys": None}],
        "include_synonyms": False,
    }
    with WireClient(broker.bootstrap) as wire:
        (result,) = wire.request(ApiKey.DESCRIBE_CONFIGS, 1, body)["results"]
    configs = {c["name"]: c["value"] for c in result["configs"]}
    assert configs["sasl.server.max.receive.size"] == "524288"
