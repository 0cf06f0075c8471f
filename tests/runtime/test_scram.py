"""SCRAM (RFC 5802/7677) and PLAIN: the RFC's example, and every way a login fails."""

from __future__ import annotations

import base64
import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.security.errors import AuthenticationError
from runtime.security.plain import parse_plain, verify_plain
from runtime.security.scram import (
    ScramClient,
    ScramServer,
    credential_from_salted,
    escape_name,
    new_credential,
    password_matches,
    salted_password,
    unescape_name,
)

FAKE_KEY = b"k" * 32
CREDENTIAL = new_credential("SCRAM-SHA-256", "pw", 4096)

# RFC 7677 section 3
RFC_CLIENT_FIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
RFC_SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
RFC_SERVER_FIRST = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
RFC_CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
RFC_SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
RFC_SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")


def rfc_credential():
    salted = salted_password("SCRAM-SHA-256", "pencil", RFC_SALT, 4096)
    return credential_from_salted("SCRAM-SHA-256", RFC_SALT, 4096, salted)


def server_for(users: dict, mechanism: str = "SCRAM-SHA-256", **kwargs) -> ScramServer:
    return ScramServer(mechanism, users.get, FAKE_KEY, **kwargs)


def login(mechanism: str, user: str, password: str, users: dict) -> ScramServer:
    client = ScramClient(mechanism, user, password)
    server = server_for(users, mechanism)
    server_first = server.first(client.first())
    client.verify(server.final(client.final(server_first)))
    return server


def test_rfc7677_example_server_side():
    server = server_for({"user": rfc_credential()}, server_nonce=RFC_SERVER_NONCE)
    assert server.first(RFC_CLIENT_FIRST) == RFC_SERVER_FIRST
    assert server.final(RFC_CLIENT_FINAL) == RFC_SERVER_FINAL
    assert server.done and server.user == "user"


def test_rfc7677_example_client_side():
    client = ScramClient("SCRAM-SHA-256", "user", "pencil", nonce="rOprNGfwEbeRWgbNEkqO")
    assert client.first() == RFC_CLIENT_FIRST
    assert client.final(RFC_SERVER_FIRST) == RFC_CLIENT_FINAL
    client.verify(RFC_SERVER_FINAL)


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_login_with_a_fresh_credential(mechanism):
    users = {"alice": new_credential(mechanism, "s3cret", 4096)}
    assert login(mechanism, "alice", "s3cret", users).done


def test_wrong_password_is_refused_with_the_reason_for_the_log():
    users = {"alice": new_credential("SCRAM-SHA-256", "s3cret", 4096)}
    with pytest.raises(AuthenticationError, match="wrong password for user 'alice'") as info:
        login("SCRAM-SHA-256", "alice", "guess", users)
    assert "guess" not in str(info.value) and "guess" not in info.value.client_message


def test_unknown_user_gets_a_server_first_like_anyone_and_fails_at_the_proof():
    server = server_for({})
    client = ScramClient("SCRAM-SHA-256", "mallory", "x")
    first = server.first(client.first())
    again = server_for({}).first(ScramClient("SCRAM-SHA-256", "mallory", "x").first())
    salt = lambda message: message.split(b",")[1]  # noqa: E731
    assert salt(first) == salt(again)  # stable: a retry does not reveal the user is made up
    with pytest.raises(AuthenticationError, match="unknown user 'mallory'") as info:
        server.final(client.final(first))
    assert info.value.client_message == AuthenticationError("x").client_message


def test_the_client_nonce_repeated_as_librdkafka_before_2_6_1_sends_it_is_accepted():
    """librdkafka#4895: client-final carries r=CNONCE+CNONCE+SNONCE."""
    users = {"alice": new_credential("SCRAM-SHA-256", "pw", 4096)}
    client_first = ScramClient("SCRAM-SHA-256", "alice", "pw", nonce="CNONCE").first()
    server = server_for(users, server_nonce="SNONCE")
    server_first = server.first(client_first)
    final = _librdkafka_final(server_first, "pw")
    assert final.startswith(b"c=biws,r=CNONCECNONCESNONCE,")
    assert server.final(final).startswith(b"v=")
    other = server_for(users, server_nonce="SNONCE")
    other.first(client_first)
    with pytest.raises(AuthenticationError, match="nonce does not match"):
        other.final(final.replace(b"r=CNONCE", b"r=XCNONCE"))


def _librdkafka_final(server_first: bytes, password: str) -> bytes:
    """A client-final built the way librdkafka < 2.6.1 builds it."""
    import hashlib
    import hmac

    salt = base64.b64decode(server_first.split(b",")[1][2:])
    salted = salted_password("SCRAM-SHA-256", password, salt, 4096)
    without_proof = b"c=biws,r=CNONCE" + server_first.split(b",")[0][2:]
    auth = b"n=alice,r=CNONCE," + server_first + b"," + without_proof
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    signature = hmac.digest(hashlib.sha256(client_key).digest(), auth, "sha256")
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    return without_proof + b",p=" + base64.b64encode(proof)


def test_names_with_commas_and_equals_are_escaped():
    assert escape_name("a,b=c") == "a=2Cb=3Dc"
    assert unescape_name("a=2Cb=3Dc") == "a,b=c"
    users = {"a,b=c": new_credential("SCRAM-SHA-256", "pw", 4096)}
    assert login("SCRAM-SHA-256", "a,b=c", "pw", users).user == "a,b=c"
    with pytest.raises(AuthenticationError, match="escape"):
        unescape_name("a=41")


@pytest.mark.parametrize(
    ("client_first", "reason"),
    [
        (b"p=tls-unique,,n=u,r=abc", "channel binding"),
        (b"x,,n=u,r=abc", "gs2 header"),
        (b"n,,r=abc", "without n="),
        (b"n,,n=u", "without r="),
        (b"n,,n=u,r=ab c", "nonce"),
        (b"n,,n=u,r=abc,tokenauth=true", "delegation tokens"),
        (b"n,,m=x,n=u,r=abc", "mandatory extension"),
        (b"n,a=other,n=u,r=abc", "authzid"),
        (b"\xff\xfe", "not UTF-8"),
        (b"n,,garbage", "malformed"),
    ],
)
def test_bad_client_first(client_first, reason):
    with pytest.raises(AuthenticationError, match=reason):
        server_for({}).first(client_first)


def test_client_final_must_match_the_exchange():
    users = {"alice": new_credential("SCRAM-SHA-256", "pw", 4096)}
    client = ScramClient("SCRAM-SHA-256", "alice", "pw")
    server = server_for(users)
    final = client.final(server.first(client.first()))
    with pytest.raises(AuthenticationError, match="out of order"):
        server_for(users).final(final)  # no client-first before it
    other = server_for(users)
    other.first(client.first())
    with pytest.raises(AuthenticationError, match="nonce does not match"):
        other.final(final)  # another exchange's nonce
    tampered = final.replace(b"c=biws", b"c=eSws")
    with pytest.raises(AuthenticationError, match="channel binding"):
        server.final(tampered)
    server = server_for(users)
    first = server.first(client.first())
    with pytest.raises(AuthenticationError, match="without a proof"):
        server.final(b"c=biws,r=" + first.split(b",")[0][2:])


def test_client_refuses_a_server_that_does_not_know_the_password():
    client = ScramClient("SCRAM-SHA-256", "alice", "pw")
    impostor = server_for({"alice": new_credential("SCRAM-SHA-256", "other", 4096)})
    client.final(impostor.first(client.first()))
    with pytest.raises(AuthenticationError, match="not the real server"):
        client.verify(b"v=" + base64.b64encode(b"x" * 32))


def test_password_matches_against_the_stored_keys_only():
    credential = new_credential("SCRAM-SHA-512", "pw", 4096)
    assert password_matches("SCRAM-SHA-512", credential, "pw")
    assert not password_matches("SCRAM-SHA-512", credential, "pW")


def test_iterations_below_kafkas_minimum_are_refused():
    with pytest.raises(ValueError, match="iterations"):
        new_credential("SCRAM-SHA-256", "pw", 1000)


@settings(max_examples=300, deadline=None)
@given(message=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_client_message_is_refused_with_an_authentication_error_only(message):
    with contextlib.suppress(AuthenticationError):
        server_for({"alice": CREDENTIAL}).first(message)
    server = server_for({"alice": CREDENTIAL})
    server.first(b"n,,n=alice,r=abc")
    with contextlib.suppress(AuthenticationError):
        server.final(message)
    with contextlib.suppress(AuthenticationError):
        parse_plain(message)


def test_names_in_reasons_are_escaped_and_bounded():
    with pytest.raises(AuthenticationError) as info:
        verify_plain(lambda user, mechanism: None, "x\n" * 100 + "y", "pw")
    assert "\n" not in str(info.value)  # one log line, whatever the name holds
    assert str(info.value).endswith("... (201 characters)")


def test_plain():
    users = {("bob", "SCRAM-SHA-512"): new_credential("SCRAM-SHA-512", "pw", 4096)}

    def lookup(user, mechanism):
        return users.get((user, mechanism))

    assert parse_plain(b"\0bob\0pw") == ("bob", "pw")
    assert parse_plain(b"bob\0bob\0pw") == ("bob", "pw")
    verify_plain(lookup, "bob", "pw")
    with pytest.raises(AuthenticationError, match="wrong password for user 'bob'"):
        verify_plain(lookup, "bob", "nope")
    with pytest.raises(AuthenticationError, match="unknown user 'eve'"):
        verify_plain(lookup, "eve", "pw")
    for bad in (b"bob\0pw", b"\0\0pw", b"x\0bob\0pw", b"\xff\0a\0b"):
        with pytest.raises(AuthenticationError):
            parse_plain(bad)
