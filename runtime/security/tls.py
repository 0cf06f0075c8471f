"""Server-side TLS with the standard library's ssl, and who a client certificate names.

`server_context()` loads a PEM certificate chain and its unencrypted private
key; with `client_ca` it requires every client to present a certificate
signed by one of those CAs (mutual TLS), else it asks for none. TLS 1.2 is
the oldest version accepted.

A client certificate's principal is `User:<CN>` of its subject (the first
common name), or, for a subject without one, `User:` and the whole subject
as `K=V,K=V` (RFC 4514 order: most specific first).
"""

from __future__ import annotations

import os
import ssl
from typing import Any

from runtime.security.errors import InsecureConfigError

ANONYMOUS = "User:ANONYMOUS"


def _no_passphrase() -> str:
    # load_cert_chain would otherwise prompt on the terminal for an encrypted key
    raise InsecureConfigError("the TLS key is encrypted: give an unencrypted PEM key")


def server_context(
    cert: str | os.PathLike[str], key: str | os.PathLike[str], client_ca: str | None = None
) -> ssl.SSLContext:
    """An SSL context for a listener; InsecureConfigError if a file cannot be used."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key, password=_no_passphrase)
    except (OSError, ssl.SSLError) as exc:
        raise InsecureConfigError(
            f"cannot load --tls-cert {cert} / --tls-key {key}: {exc}"
        ) from exc
    if client_ca is not None:
        try:
            context.load_verify_locations(cafile=client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise InsecureConfigError(f"cannot load --tls-client-ca {client_ca}: {exc}") from exc
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def principal_of(peercert: dict[str, Any] | None) -> str | None:
    """`User:<CN>` of a verified peer certificate (ssl's getpeercert() form), or None."""
    if not peercert:
        return None
    pairs = [pair for rdn in peercert.get("subject", ()) for pair in rdn]
    for key, value in pairs:
        if key == "commonName":
            return f"User:{value}"
    if not pairs:
        return None
    return "User:" + ",".join(f"{_SHORT.get(k, k)}={v}" for k, v in reversed(pairs))


_SHORT = {
    "countryName": "C",
    "stateOrProvinceName": "ST",
    "localityName": "L",
    "organizationName": "O",
    "organizationalUnitName": "OU",
}
