"""What the security tests (tests/broker, tests/workers) share: certificates made
with the openssl CLI, a users file, the flags of a broker with every kind of
listener, and each client's settings.

Certificates (EC P-256, valid two days, in a temporary directory):
- ca: the test CA; server (CN=localhost, SAN 127.0.0.1 and localhost) and
  client (CN=alice, clientAuth) are signed by it;
- rogue_ca and rogue_client (CN=mallory): a CA the broker does not trust;
- expired_client (CN=old): signed by ca, but expired yesterday.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from runtime.security.scram import new_credential
from runtime.security.users import set_user

OPENSSL_TIMEOUT_S = 30.0
ITERATIONS = 4096  # Kafka's minimum: the clients' PBKDF2 stays quick
MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_cert: Path
    rogue_key: Path
    expired_cert: Path
    expired_key: Path


def _openssl(*args: str | Path, cwd: Path) -> None:
    openssl = shutil.which("openssl")
    assert openssl is not None, "the openssl command is needed to make test certificates"
    done = subprocess.run(
        [openssl, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=OPENSSL_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr


_EC = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


def _ca(directory: Path, name: str) -> None:
    _openssl(
        "req", "-x509", *_EC, "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
        "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip


def _signed(
    directory: Path, name: str, subject: str, ca: str, extensions: str, days: int = 2
) -> None:
    (directory / f"{name}.ext").write_text(extensions)
    _openssl(
        "req", *_EC, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject,
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-out", f"{name}.pem", "-days", str(days), "-extfile", f"{name}.ext",
        cwd=directory,
    )  # fmt: skip


def make_pki(directory: Path) -> Pki:
    _ca(directory, "ca")
    _ca(directory, "rogue_ca")
    _signed(
        directory,
        "server",
        "/CN=localhost",
        "ca",
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "extendedKeyUsage=serverAuth\n",
    )
    client_ext = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"
    _signed(directory, "client", "/CN=alice", "ca", client_ext)
    _signed(directory, "rogue_client", "/CN=mallory", "rogue_ca", client_ext)
    _signed(directory, "expired_client", "/CN=old", "ca", client_ext, days=-1)
    d = directory
    return Pki(
        d / "ca.pem",
        d / "server.pem",
        d / "server.key",
        d / "client.pem",
        d / "client.key",
        d / "rogue_client.pem",
        d / "rogue_client.key",
        d / "expired_client.pem",
        d / "expired_client.key",
    )


def add_user(users_file: Path, name: str, password: str) -> None:
    credentials = {m: new_credential(m, password, ITERATIONS) for m in MECHANISMS}
    set_user(users_file, name, credentials)


@dataclass(frozen=True)
class Listeners:
    """The ports of a broker's secured listeners (its PLAINTEXT one is conftest's)."""

    sasl_ssl: int
    sasl_plaintext: int
    ssl: int

    def port(self, protocol: str) -> int:
        return {"SASL_SSL": self.sasl_ssl, "SASL_PLAINTEXT": self.sasl_plaintext, "SSL": self.ssl}[
            protocol
        ]


def broker_args(
    pki: Pki, users_file: Path, listeners: Listeners, *, acls: bool = False
) -> tuple[str, ...]:
    """The flags of a broker with every kind of listener; without `acls`, a
    resource no ACL names is open to every authenticated client (the tests of
    authentication need no ACLs)."""
    return (
        "--allow-everyone-if-no-acl" if not acls else "--deny-if-no-acl",
        "--listen", f"SASL_SSL://127.0.0.1:{listeners.sasl_ssl}",
        "--listen", f"SASL_PLAINTEXT://127.0.0.1:{listeners.sasl_plaintext}",
        "--listen", f"SSL://127.0.0.1:{listeners.ssl}",
        "--tls-cert", str(pki.server_cert),
        "--tls-key", str(pki.server_key),
        "--tls-client-ca", str(pki.ca),
        "--users", str(users_file),
    )  # fmt: skip


@dataclass(frozen=True)
class Login:
    """How one test client connects: protocol, SASL mechanism and credentials or a cert."""

    protocol: str
    mechanism: str | None = None
    user: str = ""
    password: str = ""
    cert: Path | None = None
    key: Path | None = None

    def librdkafka(self, pki: Pki, port: int) -> dict[str, str]:
        conf = {"bootstrap.servers": f"127.0.0.1:{port}", "security.protocol": self.protocol}
        if self.mechanism is not None:
            conf |= {
                "sasl.mechanism": self.mechanism,
                "sasl.username": self.user,
                "sasl.password": self.password,
            }
        if "SSL" in self.protocol:
            conf["ssl.ca.location"] = str(pki.ca)
        if self.cert is not None and self.key is not None:
            conf |= {"ssl.certificate.location": str(self.cert), "ssl.key.location": str(self.key)}
        return conf

    def kafka_python(self, pki: Pki, port: int) -> dict:
        conf: dict = {"bootstrap_servers": f"127.0.0.1:{port}", "security_protocol": self.protocol}
        if self.mechanism is not None:
            conf |= {
                "sasl_mechanism": self.mechanism,
                "sasl_plain_username": self.user,
                "sasl_plain_password": self.password,
            }
        if "SSL" in self.protocol:
            conf["ssl_cafile"] = str(pki.ca)
        if self.cert is not None and self.key is not None:
            conf |= {"ssl_certfile": str(self.cert), "ssl_keyfile": str(self.key)}
        return conf

    def aiokafka(self, pki: Pki, port: int) -> dict:
        from aiokafka.helpers import create_ssl_context

        conf = self.kafka_python(pki, port)
        for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            conf.pop(key, None)
        if "SSL" in self.protocol:
            conf["ssl_context"] = create_ssl_context(
                cafile=str(pki.ca),
                certfile=str(self.cert) if self.cert else None,
                keyfile=str(self.key) if self.key else None,
            )
        return conf

    def streams_url(self, pki: Pki, port: int) -> tuple[str, dict[str, str]]:
        """Our client's broker URL for this login, and the environment holding
        the password (which never goes in the URL)."""
        user = f"{self.user}@" if self.mechanism is not None else ""
        options = [f"security_protocol={self.protocol}"]
        if self.mechanism is not None:
            options.append(f"sasl_mechanism={self.mechanism}")
        if "SSL" in self.protocol:
            options.append(f"ssl_cafile={pki.ca}")
        if self.cert is not None and self.key is not None:
            options += [f"ssl_certfile={self.cert}", f"ssl_keyfile={self.key}"]
        url = f"kafka://{user}127.0.0.1:{port}?{'&'.join(options)}"
        return url, ({"STREAMS_KAFKA_PASSWORD": self.password} if self.mechanism else {})

    def kcat(self, pki: Pki, port: int) -> list[str]:
        args = ["-b", f"127.0.0.1:{port}"]
        for key, value in self.librdkafka(pki, port).items():
            if key != "bootstrap.servers":
                args += ["-X", f"{key}={value}"]
        return args
