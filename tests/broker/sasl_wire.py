"""SASL by hand over a WireClient: for what no real client sends (a handshake out
of turn, a re-authentication as someone else) and to read the answers' fields."""

from __future__ import annotations

from kafka_wire import WireClient

from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.security.scram import ScramClient


def handshake(wire: WireClient, mechanism: str, version: int = 1) -> dict:
    return wire.request(ApiKey.SASL_HANDSHAKE, version, {"mechanism": mechanism})


def authenticate(wire: WireClient, token: bytes, version: int = 1) -> dict:
    return wire.request(ApiKey.SASL_AUTHENTICATE, version, {"auth_bytes": token})


def scram_login(wire: WireClient, user: str, password: str, version: int = 1) -> dict:
    """A whole SCRAM-SHA-256 exchange; the last SaslAuthenticate answer."""
    assert handshake(wire, "SCRAM-SHA-256")["error_code"] == ErrorCode.NONE
    client = ScramClient("SCRAM-SHA-256", user, password)
    first = authenticate(wire, client.first(), version)
    if first["error_code"] != ErrorCode.NONE:
        return first
    final = authenticate(wire, client.final(bytes(first["auth_bytes"])), version)
    if final["error_code"] == ErrorCode.NONE:
        client.verify(bytes(final["auth_bytes"]))
    return final
