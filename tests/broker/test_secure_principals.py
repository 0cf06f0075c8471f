"""Who each request comes from: the principal every handler is given (for ACLs), by
listener, and the listener address it answers with. An in-process broker whose
Metadata handler records the Peer of each request."""

from __future__ import annotations

import asyncio
import ssl

from kafka_wire import WireClient, metadata_body
from secure_setup import add_user

from runtime.broker.endpoints import Address, Endpoint, SecurityProtocol, SecuritySettings
from runtime.broker.server import Broker
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.security.scram import ScramClient

TIMEOUT_S = 20.0


def scram_login(wire: WireClient, user: str, password: str) -> None:
    wire.request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": "SCRAM-SHA-512"})
    client = ScramClient("SCRAM-SHA-512", user, password)
    first = wire.request(ApiKey.SASL_AUTHENTICATE, 2, {"auth_bytes": client.first()})
    final = client.final(bytes(first["auth_bytes"]))
    last = wire.request(ApiKey.SASL_AUTHENTICATE, 2, {"auth_bytes": final})
    assert last["error_code"] == ErrorCode.NONE
    client.verify(bytes(last["auth_bytes"]))


def metadata_port(wire: WireClient) -> int:
    (broker,) = wire.request(ApiKey.METADATA, 8, metadata_body())["brokers"]
    return broker["port"]


def test_every_request_carries_its_connections_principal(tmp_path, pki) -> None:
    users = tmp_path / "users.json"
    add_user(users, "bob", "bob-password")
    endpoints = [
        Endpoint(SecurityProtocol.PLAINTEXT, Address("127.0.0.1", 0)),
        Endpoint(SecurityProtocol.SASL_PLAINTEXT, Address("127.0.0.1", 0)),
        Endpoint(SecurityProtocol.SSL, Address("127.0.0.1", 0)),
    ]
    security = SecuritySettings(
        tls_cert=str(pki.server_cert),
        tls_key=str(pki.server_key),
        tls_client_ca=str(pki.ca),
        users=str(users),
    )
    tls = ssl.create_default_context(cafile=pki.ca)
    tls.load_cert_chain(pki.client_cert, pki.client_key)

    def clients(addresses: dict[SecurityProtocol, Address]) -> list[int]:
        def bootstrap(protocol: SecurityProtocol) -> str:
            return f"127.0.0.1:{addresses[protocol].port}"

        ports = []
        with WireClient(bootstrap(SecurityProtocol.PLAINTEXT)) as wire:
            ports.append(metadata_port(wire))
        with WireClient(bootstrap(SecurityProtocol.SASL_PLAINTEXT)) as wire:
            scram_login(wire, "bob", "bob-password")
            ports.append(metadata_port(wire))
        with WireClient(bootstrap(SecurityProtocol.SSL), tls=tls) as wire:
            ports.append(metadata_port(wire))
        return ports

    async def run() -> tuple[list, list[int], dict]:
        async with Broker(tmp_path / "data", listen=endpoints, security=security) as broker:
            peers = record_metadata_peers(broker)
            ports = await asyncio.to_thread(clients, broker.addresses)
            return peers, ports, broker.addresses

    peers, ports, addresses = asyncio.run(asyncio.wait_for(run(), TIMEOUT_S))
    assert [p.principal for p in peers] == ["User:ANONYMOUS", "User:bob", "User:alice"]
    assert ports == [addresses[e.protocol].port for e in endpoints]
    assert [p.advertised for p in peers] == [addresses[e.protocol] for e in endpoints]


def record_metadata_peers(broker: Broker) -> list:
    handlers = broker._handlers  # the seam the ACLs will use: what every handler is given
    assert handlers is not None
    peers: list = []
    metadata = handlers.by_key[ApiKey.METADATA]

    async def recording(header, body, peer):
        peers.append(peer)
        return await metadata(header, body, peer)

    handlers.by_key[ApiKey.METADATA] = recording
    return peers
