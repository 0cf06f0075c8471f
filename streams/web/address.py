"""Where a worker's web server listens: `--web HOST:PORT`, or `none`."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

DEFAULT_WEB = "127.0.0.1:6066"  # Faust's default port


@dataclass(frozen=True, slots=True)
class WebAddress:
    """host and port to bind; port 0 picks a free one. With `fallback`, a port in
    use is not an error: the server takes a free port instead and says so (two
    workers started on one machine with the default both get a web server).
    The server has no authentication: a non-loopback host is refused unless
    `allow_insecure` (like the broker's --allow-insecure)."""

    host: str
    port: int
    fallback: bool = False
    allow_insecure: bool = False


def parse_web_address(
    text: str, *, fallback: bool = False, allow_insecure: bool = False
) -> WebAddress | None:
    """`HOST:PORT` or `:PORT` (host 127.0.0.1), or None for `none`; ValueError if
    malformed, or not on loopback without `allow_insecure`."""
    if text.strip().lower() in ("none", "off"):
        return None
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"the web address must be HOST:PORT or none, not {text!r}")
    address = WebAddress(host.strip("[]") or "127.0.0.1", int(port), fallback, allow_insecure)
    refusal = insecure(address)
    if refusal:
        raise ValueError(refusal)
    return address


def insecure(address: WebAddress) -> str | None:
    """Why `address` may not be served on, or None."""
    if is_loopback(address.host) or address.allow_insecure:
        return None
    return (
        "the web server has no authentication: it serves tables and metrics to anyone "
        f"who reaches {address.host}; bind it to loopback, or pass --web-allow-insecure "
        "to serve them there anyway"
    )


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
