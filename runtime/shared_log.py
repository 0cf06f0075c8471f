"""The embedded log, shared: one process owns a log:// directory, every tool reaches it.

A `log://` worker holds its log directory's lock (log/lock.py) for its whole
life, so no second process can open the files. Instead, the owner serves the
log over the Kafka protocol on loopback (`SharedLog`, the broker's own serving
code over the owner's EmbeddedTransport: the log is opened once) and records
where in the directory; a tool aimed at the directory (`open_shared`) finds
the address and talks kafka:// to the owner instead of failing on the lock.

File format: `<log dir>/listen.json`, written aside and renamed once the
listener is bound, removed on a clean stop:

    {"pid": 4242, "host": "127.0.0.1", "port": 40123, "groups": ["surge"]}

`groups` are the consumer groups the owner commits for itself, without
joining them through the broker: tools must not reset or delete them while
it runs (Kafka refuses that for groups with members).

Invariants:
- The file is trusted only while the directory's lock is held by the pid it
  names: after a crash it stays behind, and the lock (which the kernel drops
  with the process) shows it stale.
- Only the pid that wrote the file removes it.
- A tool never opens a directory whose lock is held: it connects, or fails
  with an error naming the holder.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import orjson

from runtime.broker.endpoints import Address
from runtime.broker.limits import BrokerLimits
from runtime.broker.server import Broker
from runtime.errors import DataDirLockedError
from runtime.log.lock import lock_holder
from runtime.transport import DEFAULT_DATA_DIR, EmbeddedTransport, Transport, open_transport

__all__ = ["ADDRESS_FILE", "DEFAULT_LISTEN", "SharedAddress", "SharedLog", "open_shared"]

logger = logging.getLogger(__name__)

ADDRESS_FILE = "listen.json"
DEFAULT_LISTEN = Address("127.0.0.1", 0)  # an ephemeral loopback port
STARTING_WAIT_S = 5.0  # a worker writes its address right after opening the log
CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class SharedAddress:
    """Where the owner of a log directory serves it."""

    pid: int
    host: str
    port: int
    groups: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"kafka://{host}:{self.port}"


def read_address(log_dir: str | os.PathLike[str]) -> SharedAddress | None:
    """The address file's content, live or stale; None if absent or unreadable."""
    try:
        raw = orjson.loads((Path(log_dir) / ADDRESS_FILE).read_bytes())
        groups = tuple(str(g) for g in raw.get("groups", ()))
        return SharedAddress(int(raw["pid"]), str(raw["host"]), int(raw["port"]), groups)
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def live_address(log_dir: str | os.PathLike[str]) -> SharedAddress | None:
    """The address of the process serving `log_dir` now, if one does."""
    address = read_address(log_dir)
    if address is None:
        return None
    return address if lock_holder(log_dir) == address.pid else None


def write_address(log_dir: Path, address: Address, groups: tuple[str, ...] = ()) -> None:
    path = log_dir / ADDRESS_FILE
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    payload = {"pid": os.getpid(), "host": address.host, "port": address.port, "groups": groups}
    temporary.write_bytes(orjson.dumps(payload))
    os.replace(temporary, path)


def remove_address(log_dir: Path) -> None:
    address = read_address(log_dir)
    if address is not None and address.pid == os.getpid():
        with contextlib.suppress(OSError):
            (log_dir / ADDRESS_FILE).unlink()


class SharedLog:
    """Serves an open EmbeddedTransport's log over the Kafka protocol and
    records the address in its directory. Starting it opens the transport
    (taking the directory's lock); stopping it stops serving and leaves the
    transport open, for its owner to close."""

    def __init__(
        self,
        transport: EmbeddedTransport,
        listen: Address = DEFAULT_LISTEN,
        *,
        groups: tuple[str, ...] = (),
    ) -> None:
        if transport.path is None:
            raise ValueError("only a log:// transport (on disk) can be shared")
        self.transport = transport
        self._listen = listen
        self._groups = groups
        self._broker: Broker | None = None
        self.address: Address | None = None

    async def start(self) -> None:
        assert self._broker is None, "SharedLog started twice"
        await self.transport.start()
        broker = Broker(None, listen=self._listen, transport=self.transport, limits=BrokerLimits())
        await broker.start()
        self._broker = broker
        assert broker.address is not None
        self.address = broker.address
        assert self.transport.path is not None
        try:
            write_address(self.transport.path, broker.address, self._groups)
        except OSError as exc:  # a full disk: serve anyway, tools just cannot find us
            logger.warning("cannot record the log's address path=%s error=%s", exc.filename, exc)
        logger.info(
            "serving the log to Kafka clients on %s data=%s", broker.address, self.transport.path
        )

    async def stop(self) -> None:
        """Idempotent."""
        broker, self._broker = self._broker, None
        if broker is None:
            return
        assert self.transport.path is not None
        remove_address(self.transport.path)
        await broker.stop()

    async def __aenter__(self) -> SharedLog:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def log_directory(url: str | None, data_dir: str | os.PathLike[str] | None) -> Path | None:
    """The directory a `log://` URL names (None for other schemes)."""
    parsed = urlparse(url or "log://")
    if parsed.scheme != "log":
        return None
    return Path((parsed.netloc + parsed.path) or os.fspath(data_dir or DEFAULT_DATA_DIR))


async def open_shared(
    url: str | None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
) -> Transport:
    """Like open_transport, but a `log://` directory another process owns is
    reached over kafka:// through the address it serves; its files are never
    opened a second time."""
    directory = log_directory(url, data_dir)
    if directory is None:
        return open_transport(url, data_dir=data_dir, connect_timeout_s=connect_timeout_s)
    address = await _wait_for_owner(directory)
    if address is None:
        return open_transport(url, data_dir=data_dir)
    logger.info("log %s is served by pid %d on %s", directory, address.pid, address.url)
    return open_transport(address.url, connect_timeout_s=connect_timeout_s)


async def _wait_for_owner(directory: Path) -> SharedAddress | None:
    """The owner's address; None if nobody holds the directory. A holder that
    serves nothing yet gets a few seconds (a worker opening its log) and is
    then reported."""
    deadline = asyncio.get_running_loop().time() + STARTING_WAIT_S
    while True:
        holder = lock_holder(directory)
        if holder is None:
            return None
        address = live_address(directory)
        if address is not None:
            return address
        if asyncio.get_running_loop().time() > deadline:
            raise DataDirLockedError(
                f"data directory {directory} is locked by pid {holder}, which does not "
                "serve it over the Kafka protocol (a `streams worker` serves its log:// "
                "log unless started with --listen off; a `streams broker` is reached "
                "with --broker kafka://HOST:PORT)"
            )
        await asyncio.sleep(0.1)
