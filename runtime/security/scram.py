"""SCRAM (RFC 5802) with SHA-256 and SHA-512 (RFC 7677), as Kafka speaks it.

The exchange, four messages (attribute values base64 where noted):

    client-first   gs2-header client-first-bare
                   gs2-header = "n,," or "y,," or "n,a=AUTHZID,"
                   client-first-bare = "n=USER,r=CNONCE[,EXTENSIONS]"
    server-first   "r=CNONCE+SNONCE,s=SALT(b64),i=ITERATIONS"
    client-final   "c=b64(gs2-header),r=CNONCE+SNONCE[,EXTENSIONS],p=PROOF(b64)"
    server-final   "v=SERVERSIGNATURE(b64)"

    SaltedPassword  = PBKDF2-HMAC-H(password, salt, iterations)
    ClientKey       = HMAC(SaltedPassword, "Client Key")
    StoredKey       = H(ClientKey)
    ServerKey       = HMAC(SaltedPassword, "Server Key")
    AuthMessage     = client-first-bare "," server-first "," client-final-without-proof
    ClientProof     = ClientKey XOR HMAC(StoredKey, AuthMessage)
    ServerSignature = HMAC(ServerKey, AuthMessage)

The server keeps only salt, iterations, StoredKey and ServerKey: it checks a
proof by recovering ClientKey and hashing it, so it never sees a password.

Like Kafka (and librdkafka, kafka-python, aiokafka) passwords are their UTF-8
bytes, without RFC 4013 SASLprep; user names are escaped as RFC 5802 says
("," as "=2C", "=" as "=3D"). Channel binding is not offered (no -PLUS
mechanisms), and the "tokenauth" extension (delegation tokens) is refused.

librdkafka before 2.6.1 (so Debian's kcat, on 2.0.2) repeats its nonce in
client-final: `r=CNONCE+CNONCE+SNONCE` (librdkafka#4895). That form is
accepted too, as Kafka 3.8 and 3.9 accept it: it still carries the server's
nonce, so a replayed exchange still fails, and the proof covers it as sent.

An unknown user gets a server-first like any other, with a salt derived from
its name, and fails at the proof: the client cannot tell it from a wrong
password. The reason goes to the broker's log only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from runtime.security.errors import AuthenticationError, shown

HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
MECHANISMS = tuple(HASHES)
ITERATIONS_MIN = 4096  # Kafka's minimum, and RFC 7677's recommendation
ITERATIONS_MAX = 16384  # Kafka's maximum
ITERATIONS_DEFAULT = 8192
CLIENT_ITERATIONS_MAX = 1_000_000  # what a client accepts from a server: bounds its work
SALT_BYTES = 32
NONCE_BYTES = 24


@dataclass(frozen=True, slots=True)
class ScramCredential:
    """What the server stores for one user and one mechanism."""

    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes


def digest_size(mechanism: str) -> int:
    return hashlib.new(_hash(mechanism)).digest_size


def salted_password(mechanism: str, password: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac(_hash(mechanism), password.encode(), salt, iterations)


def credential_from_salted(
    mechanism: str, salt: bytes, iterations: int, salted: bytes
) -> ScramCredential:
    name = _hash(mechanism)
    client_key = hmac.digest(salted, b"Client Key", name)
    return ScramCredential(
        salt,
        iterations,
        hashlib.new(name, client_key).digest(),
        hmac.digest(salted, b"Server Key", name),
    )


def new_credential(
    mechanism: str,
    password: str,
    iterations: int = ITERATIONS_DEFAULT,
    salt: bytes | None = None,
) -> ScramCredential:
    """A credential for `password` with a fresh random salt (unless given)."""
    check_iterations(iterations)
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    return credential_from_salted(
        mechanism, salt, iterations, salted_password(mechanism, password, salt, iterations)
    )


def check_iterations(iterations: int) -> None:
    if not ITERATIONS_MIN <= iterations <= ITERATIONS_MAX:
        raise ValueError(
            f"SCRAM iterations must be in [{ITERATIONS_MIN}, {ITERATIONS_MAX}], got {iterations}"
        )


def password_matches(mechanism: str, credential: ScramCredential, password: str) -> bool:
    """Whether `password` is the one `credential` was made from (costs one PBKDF2)."""
    derived = credential_from_salted(
        mechanism,
        credential.salt,
        credential.iterations,
        salted_password(mechanism, password, credential.salt, credential.iterations),
    )
    return hmac.compare_digest(derived.stored_key, credential.stored_key)


class ScramServer:
    """The server side of one exchange: `first()` then `final()`, each at most once.

    `lookup(user)` gives the user's credential for this mechanism, or None.
    `fake_salt_key` is a secret of the broker's, so that the salts made up for
    unknown users are stable within a run and cannot be computed by clients.
    `server_nonce` is random unless given (by tests of RFC examples)."""

    def __init__(
        self,
        mechanism: str,
        lookup: Callable[[str], ScramCredential | None],
        fake_salt_key: bytes,
        *,
        server_nonce: str | None = None,
    ) -> None:
        self.mechanism = mechanism
        self._server_nonce = server_nonce or secrets.token_urlsafe(NONCE_BYTES)
        self._hash = _hash(mechanism)
        self._lookup = lookup
        self._fake_salt_key = fake_salt_key
        self.user: str | None = None
        self._credential: ScramCredential | None = None
        self._gs2_header = ""
        self._client_nonce = ""
        self._nonce = ""
        self._first_bare = ""
        self._server_first = ""
        self.done = False

    def first(self, message: bytes) -> bytes:
        if self._server_first:
            raise AuthenticationError("a second SCRAM client-first message")
        gs2_header, authzid, bare = _split_client_first(_text(message, "client-first"))
        attributes = _attributes(bare, "client-first")
        if "m" in attributes:
            raise AuthenticationError("SCRAM client-first with a mandatory extension")
        if "tokenauth" in attributes:
            raise AuthenticationError("SCRAM delegation tokens (tokenauth) are not supported")
        user = unescape_name(_required(attributes, "n", "client-first"))
        if authzid and unescape_name(authzid) != user:
            raise AuthenticationError(f"SCRAM authzid {shown(authzid)} is not {shown(user)}")
        client_nonce = _required(attributes, "r", "client-first")
        _check_printable(client_nonce)
        self.user = user
        self._credential = self._lookup(user)
        self._gs2_header = gs2_header
        self._client_nonce = client_nonce
        self._nonce = client_nonce + self._server_nonce
        self._first_bare = bare
        salt, iterations = self._salt_and_iterations(user)
        self._server_first = f"r={self._nonce},s={_b64(salt)},i={iterations}"
        return self._server_first.encode()

    def final(self, message: bytes) -> bytes:
        if not self._server_first or self.done:
            raise AuthenticationError("a SCRAM client-final message out of order")
        text = _text(message, "client-final")
        without_proof, sep, proof_text = text.rpartition(",p=")
        if not sep:
            raise AuthenticationError("SCRAM client-final without a proof")
        attributes = _attributes(without_proof, "client-final")
        if _required(attributes, "c", "client-final") != _b64(self._gs2_header.encode()):
            raise AuthenticationError("SCRAM channel binding does not match the gs2 header")
        if _required(attributes, "r", "client-final") not in (
            self._nonce,
            self._client_nonce + self._nonce,  # librdkafka < 2.6.1
        ):
            raise AuthenticationError("SCRAM nonce does not match the server's")
        proof = _unb64(proof_text, "proof")
        auth_message = f"{self._first_bare},{self._server_first},{without_proof}".encode()
        credential = self._credential
        if credential is None:
            raise AuthenticationError(f"unknown user {shown(self.user or '')}")
        signature = hmac.digest(credential.stored_key, auth_message, self._hash)
        if len(proof) != len(signature):
            raise AuthenticationError("SCRAM proof of the wrong length")
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
        stored_key = hashlib.new(self._hash, client_key).digest()
        if not hmac.compare_digest(stored_key, credential.stored_key):
            raise AuthenticationError(f"wrong password for user {shown(self.user or '')}")
        self.done = True
        server_signature = hmac.digest(credential.server_key, auth_message, self._hash)
        return f"v={_b64(server_signature)}".encode()

    def _salt_and_iterations(self, user: str) -> tuple[bytes, int]:
        if self._credential is not None:
            return self._credential.salt, self._credential.iterations
        fake = hmac.digest(self._fake_salt_key, f"{self.mechanism}\0{user}".encode(), "sha256")
        return fake, ITERATIONS_DEFAULT


class ScramClient:
    """The client side of one exchange: `first()`, `final(server_first)`,
    `verify(server_final)`. Used by tests, and by clients of the broker."""

    def __init__(self, mechanism: str, user: str, password: str, nonce: str | None = None):
        self._hash = _hash(mechanism)
        self.mechanism = mechanism
        self._password = password
        self._nonce = nonce or secrets.token_urlsafe(NONCE_BYTES)
        self._first_bare = f"n={escape_name(user)},r={self._nonce}"
        self._server_signature = b""

    def first(self) -> bytes:
        return f"n,,{self._first_bare}".encode()

    def final(self, server_first: bytes) -> bytes:
        text = _text(server_first, "server-first")
        attributes = _attributes(text, "server-first")
        nonce = _required(attributes, "r", "server-first")
        if not nonce.startswith(self._nonce) or nonce == self._nonce:
            raise AuthenticationError("the server's nonce does not extend the client's")
        salt = _unb64(_required(attributes, "s", "server-first"), "salt")
        try:
            iterations = int(_required(attributes, "i", "server-first"))
        except ValueError:
            raise AuthenticationError("SCRAM iteration count is not a number") from None
        if not ITERATIONS_MIN <= iterations <= CLIENT_ITERATIONS_MAX:
            raise AuthenticationError(f"SCRAM iteration count {iterations} out of range")
        salted = salted_password(self.mechanism, self._password, salt, iterations)
        without_proof = f"c={_b64(b'n,,')},r={nonce}"
        auth_message = f"{self._first_bare},{text},{without_proof}".encode()
        client_key = hmac.digest(salted, b"Client Key", self._hash)
        stored_key = hashlib.new(self._hash, client_key).digest()
        signature = hmac.digest(stored_key, auth_message, self._hash)
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        server_key = hmac.digest(salted, b"Server Key", self._hash)
        self._server_signature = hmac.digest(server_key, auth_message, self._hash)
        return f"{without_proof},p={_b64(proof)}".encode()

    def verify(self, server_final: bytes) -> None:
        attributes = _attributes(_text(server_final, "server-final"), "server-final")
        if "e" in attributes:
            raise AuthenticationError(f"the server refused: {attributes['e']}")
        signature = _unb64(_required(attributes, "v", "server-final"), "signature")
        if not self._server_signature or not hmac.compare_digest(signature, self._server_signature):
            raise AuthenticationError("the server's signature is wrong: not the real server")


def escape_name(name: str) -> str:
    return name.replace("=", "=3D").replace(",", "=2C")


def unescape_name(saslname: str) -> str:
    parts = saslname.split("=")
    out = [parts[0]]
    for part in parts[1:]:
        code, rest = part[:2], part[2:]
        if code not in ("2C", "3D"):
            raise AuthenticationError("SCRAM user name with a bad '=' escape")
        out.append(("," if code == "2C" else "=") + rest)
    name = "".join(out)
    if not name:
        raise AuthenticationError("SCRAM client-first with an empty user name")
    return name


def _hash(mechanism: str) -> str:
    try:
        return HASHES[mechanism]
    except KeyError:
        raise ValueError(f"unknown SCRAM mechanism {mechanism!r}") from None


def _text(message: bytes, what: str) -> str:
    try:
        return bytes(message).decode()
    except UnicodeDecodeError:
        raise AuthenticationError(f"SCRAM {what} message is not UTF-8") from None


def _split_client_first(text: str) -> tuple[str, str, str]:
    """(gs2-header, authzid, client-first-bare) of a client-first message."""
    flag, sep, rest = text.partition(",")
    authzid, sep2, bare = rest.partition(",")
    if flag.startswith("p"):
        raise AuthenticationError("SCRAM channel binding asked for: not supported")
    if not (sep and sep2) or flag not in ("n", "y") or authzid[:2] not in ("", "a="):
        raise AuthenticationError("SCRAM client-first without a valid gs2 header")
    return f"{flag},{authzid},", authzid[2:], bare


def _attributes(text: str, what: str) -> dict[str, str]:
    """'a=1,b=2' -> {'a': '1', 'b': '2'} (the first of a repeated attribute)."""
    out: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise AuthenticationError(f"malformed SCRAM {what} message")
        out.setdefault(key, value)
    return out


def _required(attributes: dict[str, str], key: str, what: str) -> str:
    value = attributes.get(key)
    if value is None:
        raise AuthenticationError(f"SCRAM {what} message without {key}=")
    return value


def _check_printable(nonce: str) -> None:
    if not nonce or not all(0x21 <= ord(c) <= 0x7E for c in nonce):
        raise AuthenticationError("SCRAM nonce is empty or not printable ASCII")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise AuthenticationError(f"SCRAM {what} is not base64") from None
