"""One TCP connection to one Kafka-protocol broker.

`await Connection.open(host, port)` connects (bounded by `connect_timeout_s`) and
asks ApiVersions (v3 first; on UNSUPPORTED_VERSION or an answer that does not
decode, again at the version the answer lists, else at v0). For every API it
then uses the highest version that we have a schema for, the broker
advertises, and is at most our preferred version (PREFERRED_VERSIONS:
non-flexible ones, which every broker serves, but for TxnOffsetCommit v3).
With a ClientSecurity (runtime/client/security.py) the connection is TLS from
its first byte, and SASL authenticates it right after ApiVersions, before it
is handed out.

Invariants:
- requests are written in call order, each with the next correlation id, and
  answers are matched to them in that same order (Kafka answers in order on a
  connection); an answer whose id is not the oldest pending one breaks the
  connection;
- at most `in_flight_max` requests wait for answers; more wait to be written;
- a Produce with acks=0 gets no answer, so none is awaited;
- once broken (by the peer, a malformed answer or a request timeout) or closed,
  the connection stays so: every pending and later request fails with
  ConnectionBrokenError or ConnectionClosedError. Callers open a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import logging
import ssl
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runtime.client.errors import (
    AuthenticationFailedError,
    ConnectionBrokenError,
    ConnectionClosedError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NoCompatibleVersionError,
)
from runtime.client.sasl_auth import authenticate
from runtime.client.security import PLAINTEXT, ClientSecurity
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.protocol.errors import ProtocolError
from runtime.protocol.frames import SUPPORTED, decode_response, encode_request

logger = logging.getLogger(__name__)

CLIENT_SOFTWARE_NAME = "streams"
CLIENT_SOFTWARE_VERSION = "0.1.0"
RESPONSE_BYTES_MAX = 256 * 1024 * 1024
API_VERSIONS_FIRST = 3

PREFERRED_VERSIONS: dict[int, int] = {
    ApiKey.PRODUCE: 8,
    ApiKey.FETCH: 11,
    ApiKey.LIST_OFFSETS: 5,
    ApiKey.METADATA: 8,
    ApiKey.OFFSET_COMMIT: 7,
    ApiKey.OFFSET_FETCH: 7,  # flexible; v7 asks for stable offsets (KIP-447)
    ApiKey.FIND_COORDINATOR: 2,
    ApiKey.JOIN_GROUP: 5,
    ApiKey.HEARTBEAT: 3,
    ApiKey.LEAVE_GROUP: 1,
    ApiKey.SYNC_GROUP: 3,
    ApiKey.DESCRIBE_GROUPS: 4,
    ApiKey.LIST_GROUPS: 2,
    ApiKey.API_VERSIONS: 3,
    ApiKey.CREATE_TOPICS: 4,
    ApiKey.DELETE_TOPICS: 3,
    ApiKey.INIT_PRODUCER_ID: 1,
    ApiKey.DESCRIBE_CONFIGS: 1,
    ApiKey.ADD_PARTITIONS_TO_TXN: 2,
    ApiKey.ADD_OFFSETS_TO_TXN: 2,
    ApiKey.END_TXN: 2,
    ApiKey.TXN_OFFSET_COMMIT: 3,  # flexible, but v3 is the first to carry the group
    # generation and member id (KIP-447), without which a fenced member's commit passes
    ApiKey.DESCRIBE_TRANSACTIONS: 0,  # flexible from its first version
    ApiKey.LIST_TRANSACTIONS: 1,
    ApiKey.SASL_HANDSHAKE: 1,
    ApiKey.SASL_AUTHENTICATE: 1,  # v1 carries the session lifetime (KIP-368)
}
"""The version we use of each API when the broker serves it: the last non-flexible
one of the range every client and broker speaks (see KAFKA-PROTOCOL.md), except
where a flexible version carries what correctness needs (TxnOffsetCommit)."""


def negotiate(
    broker: Mapping[int, tuple[int, int]],
    ours: Mapping[int, tuple[int, int]] = SUPPORTED,
    preferred: Mapping[int, int] = PREFERRED_VERSIONS,
) -> dict[int, int]:
    """api key -> version to use, for every API both sides speak.

    The highest common version not above our preferred one; a higher common one
    only when the broker no longer serves the preferred one."""
    out: dict[int, int] = {}
    for key, (b_low, b_high) in broker.items():
        if key not in ours:
            continue
        low, high = max(ours[key][0], b_low), min(ours[key][1], b_high)
        if low > high:
            continue
        out[key] = max(low, min(high, preferred.get(key, high)))
    return out


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    BROKEN = "broken"
    CLOSED = "closed"


@dataclass(slots=True)
class _Pending:
    correlation_id: int
    api_key: int
    version: int
    future: asyncio.Future[dict]


class Connection:
    """A connection to one broker node; see the module docstring."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        node_id: int = -1,
        client_id: str = "streams",
        in_flight_max: int = 5,
        request_timeout_s: float = 30.0,
        security: ClientSecurity = PLAINTEXT,
    ) -> None:
        if in_flight_max < 1:
            raise ValueError(f"in_flight_max must be >= 1, got {in_flight_max}")
        self.host, self.port, self.node_id = host, port, node_id
        self.client_id = client_id
        self.request_timeout_s = request_timeout_s
        self.security = security
        self._reauthenticate_at: float | None = None  # loop time; None: never
        self.broker_versions: dict[int, tuple[int, int]] = {}
        self.versions: dict[int, int] = {}
        self._state = _State.UNOPENED
        self._error: KafkaConnectionError | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._read_task: asyncio.Task[None] | None = None
        self._pending: deque[_Pending] = deque()
        self._slots = asyncio.Semaphore(in_flight_max)
        self._correlation = itertools.count(1)

    def __repr__(self) -> str:
        return f"Connection(node={self.node_id} {self.host}:{self.port} {self._state.value})"

    @classmethod
    async def open(
        cls, host: str, port: int, *, connect_timeout_s: float = 10.0, **kwargs: Any
    ) -> Connection:
        """A connected, version-negotiated connection."""
        conn = cls(host, port, **kwargs)
        await conn.connect(connect_timeout_s)
        return conn

    @property
    def is_open(self) -> bool:
        """Open, and its SASL session (if the broker limits it) not due for renewal:
        a connection due is replaced by a freshly authenticated one on next use."""
        if self._state is not _State.OPEN:
            return False
        due = self._reauthenticate_at
        return due is None or asyncio.get_running_loop().time() < due

    async def connect(self, timeout_s: float = 10.0) -> None:
        if self._state is not _State.UNOPENED:
            raise RuntimeError(f"{self!r} was opened before: open a new connection")
        self._state = _State.OPEN
        try:
            async with asyncio.timeout(timeout_s):
                context = self.security.ssl_context()
                self._reader, self._writer = await asyncio.open_connection(
                    self.host,
                    self.port,
                    ssl=context,
                    server_hostname=self.host if context is not None else None,
                )
                self._read_task = asyncio.create_task(
                    self._read_loop(), name=f"kafka-read-{self.host}:{self.port}"
                )
                await self._handshake()
                if self.security.uses_sasl:
                    lifetime_ms = await authenticate(self, self.security)
                    self._renew_after(lifetime_ms)
        except TimeoutError:
            await self.close()
            raise ConnectionBrokenError(
                f"connect to {self.host}:{self.port} timed out after {timeout_s}s"
            ) from None
        except ssl.SSLCertVerificationError as exc:
            await self.close()
            raise AuthenticationFailedError(
                f"TLS with {self.host}:{self.port}: the broker's certificate does not verify "
                f"({exc.verify_message or exc}): check ssl_cafile"
            ) from exc
        except OSError as exc:
            await self.close()
            if isinstance(exc, KafkaConnectionError):
                raise
            raise ConnectionBrokenError(
                f"cannot connect to {self.host}:{self.port}: {exc}"
            ) from exc
        except BaseException:
            await self.close()
            raise
        logger.debug("connected node=%d addr=%s:%d", self.node_id, self.host, self.port)

    def _renew_after(self, lifetime_ms: int) -> None:
        # renew at 85% of the lifetime: the new connection is up before the broker
        # closes this one (KIP-368 brokers close a connection whose session expired)
        if lifetime_ms > 0:
            self._reauthenticate_at = asyncio.get_running_loop().time() + 0.85 * lifetime_ms / 1000

    async def _handshake(self) -> None:
        """ApiVersions, v3 first. A broker that cannot serve the version asked
        answers UNSUPPORTED_VERSION in some format of its choice (v0 with its
        ranges, like Kafka; librdkafka's mock cluster writes a body that is
        neither v0 nor v3): either answer, or one that does not decode, is
        asked again at the version it lists if it lists one we can read, else
        at v0, which every broker serves."""
        version = API_VERSIONS_FIRST
        body = {
            "client_software_name": CLIENT_SOFTWARE_NAME,
            "client_software_version": CLIENT_SOFTWARE_VERSION,
        }
        tried: list[int] = []
        while True:
            tried.append(version)
            try:
                response = await self.request(ApiKey.API_VERSIONS, body, version=version)
            except ProtocolError as exc:
                if version == 0:
                    raise ConnectionBrokenError(
                        f"{self.host}:{self.port} answered ApiVersions v0 with bytes "
                        f"that do not decode: {exc}"
                    ) from exc
                logger.debug("ApiVersions v%d answer undecodable: %s: asking v0", version, exc)
                version = 0
                continue
            ranges = {
                k["api_key"]: (k["min_version"], k["max_version"]) for k in response["api_keys"]
            }
            if response["error_code"] != ErrorCode.UNSUPPORTED_VERSION or version == 0:
                break
            listed = ranges.get(ApiKey.API_VERSIONS, (0, 0))[1]
            version = listed if 0 <= listed < version and listed not in tried else 0
        if response["error_code"] != ErrorCode.NONE:
            raise KafkaError(response["error_code"], f"ApiVersions v{version}")
        self.broker_versions = ranges
        self.versions = negotiate(ranges)

    def version(self, api_key: int) -> int:
        """The negotiated version of an API; NoCompatibleVersionError if none."""
        try:
            return self.versions[api_key]
        except KeyError:
            name = ApiKey(api_key).name if api_key in ApiKey._value2member_map_ else api_key
            raise NoCompatibleVersionError(
                f"broker {self.host}:{self.port} serves no version of {name} we speak "
                f"(it serves {self.broker_versions.get(api_key)}, "
                f"we speak {SUPPORTED.get(api_key)})"
            ) from None

    # --- requests ----------------------------------------------------------------

    async def request(
        self,
        api_key: int,
        body: Mapping[str, Any],
        *,
        version: int | None = None,
        timeout_s: float | None = None,
    ) -> dict:
        """Send a request and await its answer's body ({} for an acks=0 Produce).

        Raises KafkaConnectionError if the connection is or becomes unusable,
        KafkaTimeoutError (and breaks the connection) if no answer comes in
        `timeout_s` (default: the connection's request_timeout_s)."""
        if version is None:
            version = self.version(api_key)
        expects_answer = not (api_key == ApiKey.PRODUCE and body.get("acks") == 0)
        timeout_s = self.request_timeout_s if timeout_s is None else timeout_s
        self._check_usable()
        await self._slots.acquire()
        try:
            self._check_usable()
            correlation_id = next(self._correlation)
            frame = encode_request(api_key, version, correlation_id, self.client_id, body)
        except BaseException:
            self._slots.release()
            raise
        writer = self._writer
        assert writer is not None
        future: asyncio.Future[dict] = asyncio.get_running_loop().create_future()
        if expects_answer:
            self._pending.append(_Pending(correlation_id, api_key, version, future))
        else:
            self._slots.release()
        writer.write(frame)
        try:
            await writer.drain()
        except (OSError, RuntimeError) as exc:
            self._fail(ConnectionBrokenError(f"write to {self.host}:{self.port} failed: {exc}"))
        if not expects_answer:
            self._check_usable()
            return {}
        try:
            async with asyncio.timeout(timeout_s):
                return await future
        except TimeoutError:
            if future.done() and not future.cancelled():
                return future.result()
            self._fail(
                ConnectionBrokenError(
                    f"a request to {self.host}:{self.port} timed out: connection closed"
                )
            )
            raise KafkaTimeoutError(
                f"no answer to {ApiKey(api_key).name} v{version} from {self.host}:{self.port} "
                f"in {timeout_s}s"
            ) from None

    def _check_usable(self) -> None:
        if self._state is _State.OPEN:
            return
        if self._error is not None:
            raise type(self._error)(str(self._error))
        raise ConnectionClosedError(f"connection to {self.host}:{self.port} is closed")

    async def _read_loop(self) -> None:
        reader = self._reader
        assert reader is not None
        try:
            while True:
                size = int.from_bytes(await reader.readexactly(4), "big", signed=True)
                if not 4 <= size <= RESPONSE_BYTES_MAX:
                    raise ProtocolError(f"answer size {size} out of range")
                frame = await reader.readexactly(size)
                self._on_frame(frame)
        except asyncio.CancelledError:
            raise
        except asyncio.IncompleteReadError:
            self._fail(ConnectionBrokenError(f"{self.host}:{self.port} closed the connection"))
        except (OSError, ProtocolError) as exc:
            self._fail(ConnectionBrokenError(f"connection to {self.host}:{self.port}: {exc}"))

    def _on_frame(self, frame: bytes) -> None:
        correlation_id = int.from_bytes(frame[:4], "big", signed=True)
        if not self._pending or self._pending[0].correlation_id != correlation_id:
            expected = self._pending[0].correlation_id if self._pending else None
            raise ProtocolError(f"answer to correlation id {correlation_id}, expected {expected}")
        pending = self._pending.popleft()
        self._slots.release()
        try:
            _, body = decode_response(pending.api_key, pending.version, frame)
        except ProtocolError as exc:
            if not pending.future.done():
                pending.future.set_exception(exc)
            return
        if not pending.future.done():
            pending.future.set_result(body)

    def _fail(self, error: KafkaConnectionError) -> None:
        """Break the connection: fail every pending request with `error`."""
        if self._state is not _State.OPEN:
            return
        self._state = _State.BROKEN
        self._error = error
        logger.debug("connection broken node=%d error=%s", self.node_id, error)
        self._drop(error)

    def _drop(self, error: KafkaConnectionError) -> None:
        while self._pending:
            pending = self._pending.popleft()
            self._slots.release()
            if not pending.future.done():
                pending.future.set_exception(error)
                pending.future.exception()  # retrieved: nobody may be waiting any more
        if self._writer is not None:
            self._writer.close()
        if self._read_task is not None and self._read_task is not asyncio.current_task():
            self._read_task.cancel()

    async def close(self) -> None:
        """Close the connection (idempotent); pending requests fail."""
        if self._state is _State.CLOSED:
            return
        was_open = self._state is _State.OPEN
        self._state = _State.CLOSED
        if was_open or self._writer is not None:
            self._drop(ConnectionClosedError(f"connection to {self.host}:{self.port} was closed"))
        if self._read_task is not None and self._read_task is not asyncio.current_task():
            await asyncio.wait([self._read_task])
        if self._writer is not None:
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
