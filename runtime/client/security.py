"""How our client reaches a secured cluster: TLS, SASL, and where the password comes from.

`ClientSecurity` names Kafka's security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT,
SASL_SSL), the SASL mechanism and user, and the TLS files. `parse_kafka_url()`
reads it from a broker URL, the one place a worker, the CLI and the REST tools
are configured:

    kafka://app@broker:9093?security_protocol=SASL_SSL&sasl_mechanism=SCRAM-SHA-256
        &ssl_cafile=/etc/streams/ca.pem

The password is never part of the URL (a URL ends up on command lines, in
process listings and in logs): it comes from the environment variable
STREAMS_KAFKA_PASSWORD (another with `password_env=NAME`) or from the first
line of a file (`password_file=PATH`). A URL with a password is refused.

Query parameters: security_protocol, sasl_mechanism, password_env,
password_file, ssl_cafile (CAs to trust; the system's by default),
ssl_certfile and ssl_keyfile (a client certificate, for mutual TLS),
ssl_check_hostname (true by default). Anything else is an error, so that a
misspelt option never silently connects without the security it asked for.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlparse

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
PASSWORD_ENV = "STREAMS_KAFKA_PASSWORD"
_PARAMETERS = frozenset(
    {
        "security_protocol",
        "sasl_mechanism",
        "password_env",
        "password_file",
        "ssl_cafile",
        "ssl_certfile",
        "ssl_keyfile",
        "ssl_check_hostname",
    }
)
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@dataclass(frozen=True, slots=True)
class ClientSecurity:
    """What a connection does before its first request; see the module docstring."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_check_hostname: bool = True

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(
                f"security_protocol {self.protocol!r}: expected one of {', '.join(PROTOCOLS)}"
            )
        if self.uses_sasl:
            if self.sasl_mechanism not in MECHANISMS:
                raise ValueError(
                    f"sasl_mechanism {self.sasl_mechanism!r}: expected one of "
                    f"{', '.join(MECHANISMS)}"
                )
            if not self.username:
                raise ValueError(f"{self.protocol} needs a user: kafka://USER@HOST:PORT?...")
            if self.password is None:
                raise ValueError(
                    f"{self.protocol} needs a password: set {PASSWORD_ENV} "
                    "(or password_env=NAME, password_file=PATH in the URL)"
                )
        elif self.sasl_mechanism is not None:
            raise ValueError(f"sasl_mechanism given, but security_protocol is {self.protocol}")
        if not self.uses_tls and (self.ssl_cafile or self.ssl_certfile or self.ssl_keyfile):
            raise ValueError(f"ssl_* options given, but security_protocol is {self.protocol}")
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("a client certificate needs both ssl_certfile and ssl_keyfile")

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS client context (None for plaintext); ValueError if a file is unusable."""
        if not self.uses_tls:
            return None
        context = ssl.create_default_context(cafile=self.ssl_cafile)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.check_hostname = self.ssl_check_hostname
        if self.ssl_certfile is not None:
            try:
                context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile, password=_no_prompt)
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(
                    f"cannot load ssl_certfile {self.ssl_certfile} / ssl_keyfile "
                    f"{self.ssl_keyfile}: {exc}"
                ) from exc
        return context


PLAINTEXT = ClientSecurity()


def parse_kafka_url(
    url: str, environ: os._Environ[str] | dict[str, str] | None = None
) -> tuple[str, ClientSecurity]:
    """`kafka://[USER@]HOST:PORT[,HOST:PORT][?OPTIONS]` -> (bootstrap, security)."""
    parsed = urlparse(url)
    userinfo, _, hosts = parsed.netloc.rpartition("@")
    if parsed.scheme != "kafka" or not hosts:
        raise ValueError(f"broker {_shown(url)!r}: expected kafka://[USER@]HOST:PORT[,HOST:PORT]")
    if ":" in userinfo:
        raise ValueError(
            f"broker {_shown(url)!r}: a password never goes in the URL; set {PASSWORD_ENV} "
            "or give password_file=PATH"
        )
    options = dict(parse_qsl(parsed.query, keep_blank_values=True, strict_parsing=False))
    unknown = sorted(set(options) - _PARAMETERS)
    if unknown:
        raise ValueError(
            f"broker {_shown(url)!r}: unknown option(s) {', '.join(unknown)}; known: "
            f"{', '.join(sorted(_PARAMETERS))}"
        )
    protocol = options.get("security_protocol", "PLAINTEXT").upper()
    mechanism = options.get("sasl_mechanism")
    username = unquote(userinfo) or None
    uses_sasl = protocol in ("SASL_PLAINTEXT", "SASL_SSL")
    password = _password(options, os.environ if environ is None else environ) if uses_sasl else None
    check_hostname = options.get("ssl_check_hostname", "true").lower()
    if check_hostname not in _BOOLEANS:
        raise ValueError(f"ssl_check_hostname={check_hostname!r}: expected true or false")
    security = ClientSecurity(
        protocol=protocol,
        sasl_mechanism=mechanism.upper() if mechanism else ("PLAIN" if uses_sasl else None),
        username=username if uses_sasl else None,
        password=password,
        ssl_cafile=options.get("ssl_cafile"),
        ssl_certfile=options.get("ssl_certfile"),
        ssl_keyfile=options.get("ssl_keyfile"),
        ssl_check_hostname=_BOOLEANS[check_hostname],
    )
    if username and not uses_sasl:
        raise ValueError(f"broker {_shown(url)!r}: a user is given, but no SASL protocol")
    return hosts, security


def _password(options: dict[str, str], environ: os._Environ[str] | dict[str, str]) -> str | None:
    if "password_file" in options:
        path = Path(options["password_file"])
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ValueError(f"password_file {path}: {exc.strerror or exc}") from exc
        if not lines or not lines[0]:
            raise ValueError(f"password_file {path} is empty")
        return lines[0]
    return environ.get(options.get("password_env", PASSWORD_ENV))


def _shown(url: str) -> str:
    """The URL for error messages: without its query, and without a password
    someone put in it."""
    head = url.split("?", 1)[0]
    scheme, sep, rest = head.rpartition("://")
    userinfo, at, hosts = rest.rpartition("@")
    if at and ":" in userinfo:
        rest = f"{userinfo.split(':', 1)[0]}:***@{hosts}"
    return f"{scheme}{sep}{rest}"


def _no_prompt() -> str:
    # load_cert_chain would otherwise prompt on the terminal for an encrypted key
    raise ValueError("the client key is encrypted: give an unencrypted PEM key")
