"""Where a worker's web server listens: `--web HOST:PORT`, or `none`."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_WEB = "127.0.0.1:6066"  # Faust's default port


@dataclass(frozen=True, slots=True)
class WebAddress:
    """host and port to bind; port 0 picks a free one. With `fallback`, a port in
    use is not an error: the server takes a free port instead and says so (two
    workers started on one machine with the default both get a web server)."""

    host: str
    port: int
    fallback: bool = False


def parse_web_address(text: str, *, fallback: bool = False) -> WebAddress | None:
    """`HOST:PORT` or `:PORT` (host 127.0.0.1), or None for `none`; ValueError if malformed."""
    if text.strip().lower() in ("none", "off"):
        return None
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"the web address must be HOST:PORT or none, not {text!r}")
    return WebAddress(host.strip("[]") or "127.0.0.1", int(port), fallback)
