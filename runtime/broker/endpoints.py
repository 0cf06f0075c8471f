"""Where the broker listens, with which security protocol, and what it tells clients.

    --listen [PROTOCOL://]HOST:PORT       repeatable; no PROTOCOL means PLAINTEXT
    --advertise [PROTOCOL://]HOST[:PORT]  the address sent to clients of that listener
                                          (no PORT: the port it is bound to)

PROTOCOL is one of Kafka's: PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL. A
listener is known by its protocol: at most one of each. Metadata and
FindCoordinator answer with the advertised address of the listener the
request came in on, so clients stay on the protocol they chose.

Invariants (checked by `check_endpoints`, before anything is bound):
- An advertised address is never a wildcard (0.0.0.0, ::): a listener bound
  to one advertises its --advertise, else the host's name.
- Unless `allow_insecure`, no listener that authenticates nobody (PLAINTEXT,
  SSL without client certificates) and no REST proxy without --http-auth is
  bound to anything but loopback, and neither PLAIN over SASL_PLAINTEXT nor
  HTTP credentials over http:// are taken beyond loopback (they would travel
  in the clear).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from runtime.broker.sasl import MECHANISMS
from runtime.security.errors import InsecureConfigError


class SecurityProtocol(StrEnum):
    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"

    @property
    def tls(self) -> bool:
        return self in (SecurityProtocol.SSL, SecurityProtocol.SASL_SSL)

    @property
    def sasl(self) -> bool:
        return self in (SecurityProtocol.SASL_PLAINTEXT, SecurityProtocol.SASL_SSL)


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str, *, default_port: int = 9092) -> Address:
        host, sep, port = text.rpartition(":")
        if not sep:
            host, port = text, str(default_port)
        try:
            number = int(port)
        except ValueError:
            raise ValueError(f"{text!r} is not HOST:PORT") from None
        if not 0 <= number <= 65535:
            raise ValueError(f"{text!r}: port out of range")
        return cls(host.strip("[]") or "127.0.0.1", number)

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One listener: its protocol, where it binds, and what it advertises (None:
    the bound address, or the host's name for a wildcard)."""

    protocol: SecurityProtocol
    address: Address
    advertise: Address | None = None

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        protocol, address = _split_scheme(text)
        return cls(protocol, Address.parse(address))

    def __str__(self) -> str:
        if self.protocol is SecurityProtocol.PLAINTEXT:
            return str(self.address)
        return f"{self.protocol}://{self.address}"


def parse_endpoints(listen: Iterable[str], advertise: Iterable[str] = ()) -> list[Endpoint]:
    """The listeners of `--listen` options, each with its `--advertise`."""
    endpoints = [Endpoint.parse(text) for text in listen]
    protocols = [e.protocol for e in endpoints]
    for protocol in set(protocols):
        if protocols.count(protocol) > 1:
            raise ValueError(f"more than one {protocol} listener: one of each protocol at most")
    by_protocol = {e.protocol: i for i, e in enumerate(endpoints)}
    for text in advertise:
        protocol, address = _split_scheme(text)
        if protocol not in by_protocol:
            raise ValueError(f"--advertise {text}: no {protocol} listener to advertise")
        i = by_protocol[protocol]
        if endpoints[i].advertise is not None:
            raise ValueError(f"--advertise given twice for the {protocol} listener")
        endpoints[i] = replace(endpoints[i], advertise=Address.parse(address, default_port=0))
    return endpoints


def _split_scheme(text: str) -> tuple[SecurityProtocol, str]:
    scheme, sep, rest = text.partition("://")
    if not sep:
        return SecurityProtocol.PLAINTEXT, text
    try:
        return SecurityProtocol(scheme.upper()), rest
    except ValueError:
        names = ", ".join(SecurityProtocol)
        raise ValueError(f"{text!r}: unknown security protocol (one of {names})") from None


def advertised(endpoint: Endpoint, bound_port: int) -> Address:
    """What clients of `endpoint` are told to connect to, once it is bound."""
    if endpoint.advertise is not None:
        port = endpoint.advertise.port or bound_port
        return Address(endpoint.advertise.host, port)
    host = endpoint.address.host
    if is_wildcard(host):
        host = socket.gethostname()
    return Address(host, bound_port)


def is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return host == ""


def is_loopback(host: str) -> bool:
    """Whether every address `host` names is a loopback one."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False  # cannot resolve: binding will say so
    return bool(infos) and all(
        ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos
    )


def parse_http(text: str) -> tuple[Address, bool]:
    """`--http [http://|https://]HOST:PORT` -> (address, whether it serves TLS)."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        return Address.parse(text, default_port=8082), False
    if scheme.lower() not in ("http", "https"):
        raise ValueError(f"--http {text!r}: expected http:// or https://")
    return Address.parse(rest, default_port=8082), scheme.lower() == "https"


def check_endpoints(
    endpoints: Sequence[Endpoint],
    *,
    http: Address | None,
    client_certificates: bool,
    mechanisms: Sequence[str],
    allow_insecure: bool,
    http_auth: Sequence[str] = (),
    http_tls: bool = False,
) -> None:
    """InsecureConfigError for a listener that would let anyone in from the network."""
    if not endpoints:
        raise ValueError("no listener: give at least one --listen")
    if allow_insecure:
        return
    hint = "bind it to 127.0.0.1, or give --allow-insecure"
    for endpoint in endpoints:
        if is_loopback(endpoint.address.host):
            continue
        protocol = endpoint.protocol
        if protocol is SecurityProtocol.PLAINTEXT:
            raise InsecureConfigError(
                f"listener {endpoint} lets anyone in (PLAINTEXT authenticates nobody): "
                f"use SASL_SSL, or {hint}"
            )
        if protocol is SecurityProtocol.SSL and not client_certificates:
            raise InsecureConfigError(
                f"listener {endpoint} lets anyone in (SSL without --tls-client-ca asks "
                f"no client for a certificate): give --tls-client-ca, or {hint}"
            )
        if protocol is SecurityProtocol.SASL_PLAINTEXT and "PLAIN" in mechanisms:
            raise InsecureConfigError(
                f"listener {endpoint} would take PLAIN passwords in the clear: use "
                f"SASL_SSL, or --sasl-mechanism SCRAM-SHA-256/512 only, or {hint}"
            )
    if http is not None and not is_loopback(http.host):
        if not http_auth:
            raise InsecureConfigError(
                f"the REST proxy on {http} lets anyone in: give --http-auth basic "
                f"(or bearer), or {hint}"
            )
        if not http_tls:
            raise InsecureConfigError(
                f"the REST proxy on {http} would take credentials in the clear: serve "
                f"--http https://{http}, or {hint}"
            )


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    """The broker's TLS and SASL files and choices (`streams broker` flags of the same names).

    `allow_everyone_if_no_acl` None means the default for the listeners: on
    when every listener is PLAINTEXT (ACLs could name no Kafka client), off as
    soon as one authenticates (SSL or SASL). The REST proxy's --http-auth
    does not change it: with only PLAINTEXT listeners its users may do
    anything no ACL names, unless --deny-if-no-acl."""

    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None
    users: str | None = None
    sasl_mechanisms: tuple[str, ...] = MECHANISMS
    sasl_session_lifetime_ms: int = 0  # KIP-368; 0: a session lasts as long as its connection
    allow_insecure: bool = False
    http_tls: bool = False  # the REST proxy serves https with --tls-cert/--tls-key
    http_auth: tuple[str, ...] = ()  # "basic" (the users file), "bearer" (http_tokens)
    http_tokens: str | None = None
    super_users: tuple[str, ...] = ()
    allow_everyone_if_no_acl: bool | None = None

    def allows_everyone_if_no_acl(self, endpoints: Sequence[Endpoint]) -> bool:
        if self.allow_everyone_if_no_acl is not None:
            return self.allow_everyone_if_no_acl
        return all(e.protocol is SecurityProtocol.PLAINTEXT for e in endpoints)


def check_security(
    endpoints: Sequence[Endpoint], security: SecuritySettings, http: Address | None
) -> None:
    """ValueError for settings no listener uses or a listener lacks; InsecureConfigError
    (check_endpoints) for listeners that would let anyone in."""
    protocols = {e.protocol for e in endpoints}
    tls = any(p.tls for p in protocols) or (http is not None and security.http_tls)
    sasl = any(p.sasl for p in protocols)
    basic = "basic" in security.http_auth
    if tls and not (security.tls_cert and security.tls_key):
        raise ValueError("SSL and SASL_SSL listeners and https:// need --tls-cert and --tls-key")
    if not tls and (security.tls_cert or security.tls_key):
        raise ValueError("--tls-cert/--tls-key given, but no SSL or SASL_SSL listener or https://")
    if security.tls_client_ca and SecurityProtocol.SSL not in protocols:
        raise ValueError("--tls-client-ca is for SSL listeners (mutual TLS): none is given")
    if (sasl or basic) and not security.users:
        raise ValueError("SASL listeners and --http-auth basic need --users FILE")
    if not (sasl or basic) and security.users:
        raise ValueError("--users given, but no SASL listener nor --http-auth basic")
    if security.sasl_session_lifetime_ms and not sasl:
        raise ValueError("--sasl-session-lifetime-ms given, but no SASL listener")
    _check_http(security, http)
    check_endpoints(
        endpoints,
        http=http,
        client_certificates=security.tls_client_ca is not None,
        mechanisms=security.sasl_mechanisms if sasl else (),
        allow_insecure=security.allow_insecure,
        http_auth=security.http_auth,
        http_tls=security.http_tls,
    )


def _check_http(security: SecuritySettings, http: Address | None) -> None:
    if http is None and (security.http_auth or security.http_tokens or security.http_tls):
        raise ValueError("--http-auth, --http-tokens, https:// are for the REST proxy: no --http")
    if "bearer" in security.http_auth and not security.http_tokens:
        raise ValueError("--http-auth bearer needs --http-tokens FILE")
    if security.http_tokens and "bearer" not in security.http_auth:
        raise ValueError("--http-tokens given, but not --http-auth bearer")
