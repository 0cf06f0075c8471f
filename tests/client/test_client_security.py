"""The broker URL's security options, and the client's SASL exchange against the
broker's own SCRAM and PLAIN implementations (no network)."""

from __future__ import annotations

import asyncio

import pytest

from runtime.client.errors import AuthenticationFailedError
from runtime.client.sasl_auth import authenticate
from runtime.client.security import ClientSecurity, parse_kafka_url
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.security.errors import AuthenticationError
from runtime.security.scram import ScramServer, new_credential

ENV = {"STREAMS_KAFKA_PASSWORD": "s3cret"}


def test_a_plain_url_is_plaintext() -> None:
    bootstrap, security = parse_kafka_url("kafka://a:9092,b:9093", {})
    assert bootstrap == "a:9092,b:9093"
    assert security == ClientSecurity()


def test_sasl_ssl_from_the_url_with_the_password_from_the_environment() -> None:
    url = (
        "kafka://app@broker:9093?security_protocol=SASL_SSL&sasl_mechanism=scram-sha-512"
        "&ssl_cafile=/etc/ca.pem"
    )
    bootstrap, security = parse_kafka_url(url, ENV)
    assert bootstrap == "broker:9093"
    assert security.protocol == "SASL_SSL" and security.sasl_mechanism == "SCRAM-SHA-512"
    assert (security.username, security.password) == ("app", "s3cret")
    assert security.ssl_cafile == "/etc/ca.pem" and security.uses_tls
    assert "s3cret" not in repr(security)


def test_another_environment_variable_names_the_password() -> None:
    url = "kafka://app@h:1?security_protocol=SASL_PLAINTEXT&password_env=APP_PW"
    security = parse_kafka_url(url, {"APP_PW": "other"})[1]
    assert security.password == "other" and security.sasl_mechanism == "PLAIN"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("kafka://app:pw@h:1?security_protocol=SASL_SSL", "never goes in the URL"),
        ("kafka://h:1?security_protocol=SASL_SSL", "needs a user"),
        ("kafka://app@h:1?security_protocol=SASL_SSL&password_env=UNSET", "needs a password"),
        ("kafka://h:1?security_protocol=TLS", "expected one of PLAINTEXT"),
        ("kafka://app@h:1?security_protocol=SASL_SSL&sasl_mechanism=GSSAPI", "GSSAPI"),
        ("kafka://h:1?ssl_cafile=/ca.pem", "security_protocol is PLAINTEXT"),
        ("kafka://h:1?security_protocl=SSL", "unknown option(s) security_protocl"),
        ("kafka://h:1?security_protocol=SSL&ssl_certfile=/c.pem", "both ssl_certfile"),
        ("kafka://app@h:1", "no SASL protocol"),
        ("kafka://h:1?security_protocol=SSL&ssl_check_hostname=maybe", "true or false"),
        ("log://h:1", "expected kafka://"),
    ],
)
def test_bad_security_options_are_refused_clearly(url: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_kafka_url(url, {"STREAMS_KAFKA_PASSWORD": "x"} if "UNSET" not in url else {})
    assert message in str(caught.value)
    assert "pw@" not in str(caught.value)


def test_a_missing_or_empty_password_file_is_refused(tmp_path) -> None:
    url = f"kafka://app@h:1?security_protocol=SASL_SSL&password_file={tmp_path}/none"
    with pytest.raises(ValueError, match="password_file"):
        parse_kafka_url(url, {})
    (tmp_path / "empty").write_text("")
    with pytest.raises(ValueError, match="is empty"):
        parse_kafka_url(url.replace("/none", "/empty"), {})


class FakeBroker:
    """Answers SaslHandshake and SaslAuthenticate with the broker's own SCRAM server."""

    host, port = "fake", 9092

    def __init__(self, mechanisms: tuple[str, ...], password: str) -> None:
        self.mechanisms = mechanisms
        self.credential = new_credential("SCRAM-SHA-256", password, 4096)
        self.server: ScramServer | None = None
        self.step = 0

    async def request(self, api_key: int, body: dict, *, version: int | None = None) -> dict:
        if api_key == ApiKey.SASL_HANDSHAKE:
            ok = body["mechanism"] in self.mechanisms
            code = ErrorCode.NONE if ok else ErrorCode.UNSUPPORTED_SASL_MECHANISM
            return {"error_code": code, "mechanisms": list(self.mechanisms)}
        assert api_key == ApiKey.SASL_AUTHENTICATE
        try:
            if self.step == 0:
                self.server = ScramServer("SCRAM-SHA-256", lambda user: self.credential, b"k" * 32)
                answer = self.server.first(body["auth_bytes"])
            else:
                assert self.server is not None
                answer = self.server.final(body["auth_bytes"])
        except AuthenticationError as exc:
            return {
                "error_code": ErrorCode.SASL_AUTHENTICATION_FAILED,
                "error_message": str(exc),
                "auth_bytes": b"",
            }
        self.step += 1
        return {
            "error_code": ErrorCode.NONE,
            "error_message": None,
            "auth_bytes": answer,
            "session_lifetime_ms": 60_000 if self.step == 2 else 0,
        }


def scram(password: str) -> ClientSecurity:
    return ClientSecurity("SASL_SSL", "SCRAM-SHA-256", "app", password)


def test_scram_authenticates_and_returns_the_session_lifetime() -> None:
    broker = FakeBroker(("PLAIN", "SCRAM-SHA-256"), "right")
    assert asyncio.run(authenticate(broker, scram("right"))) == 60_000


def test_scram_with_the_wrong_password_is_an_authentication_error() -> None:
    broker = FakeBroker(("SCRAM-SHA-256",), "right")
    with pytest.raises(AuthenticationFailedError, match="refused the SASL credentials"):
        asyncio.run(authenticate(broker, scram("wrong")))


def test_a_mechanism_the_broker_does_not_offer_lists_what_it_offers() -> None:
    broker = FakeBroker(("PLAIN",), "right")
    with pytest.raises(
        AuthenticationFailedError, match=r"does not offer SASL SCRAM-SHA-256 \(it offers PLAIN\)"
    ):
        asyncio.run(authenticate(broker, scram("right")))
