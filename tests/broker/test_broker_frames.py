"""Malformed frames against a running broker: an answer or a closed connection, never
a crash, a hang, or harm to anyone else's connection."""

from __future__ import annotations

import socket
import struct
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka_wire import CLIENT_ID, WireClient, batch, metadata_body, produce_body

from runtime.broker.handlers import ADVERTISED
from runtime.broker.server import REQUEST_BYTES_MAX
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.protocol.frames import decode_response, encode_request

pytestmark = pytest.mark.slow

TIMEOUT_S = 10.0
FUZZ_TOPIC = "fuzz"


def _api_versions(version: int) -> bytes:
    body = {"client_software_name": "fuzz", "client_software_version": "1"}
    return encode_request(ApiKey.API_VERSIONS, version, 1, CLIENT_ID, body)


def _metadata(version: int) -> bytes:
    return encode_request(ApiKey.METADATA, version, 2, CLIENT_ID, metadata_body(FUZZ_TOPIC))


def _produce(version: int) -> bytes:
    body = produce_body(FUZZ_TOPIC, 0, batch(b"fuzz-a", b"fuzz-b", key=b"k"))
    return encode_request(ApiKey.PRODUCE, version, 3, CLIENT_ID, body)


VALID_FRAMES = (
    [_api_versions(v) for v in range(4)]
    + [_metadata(v) for v in range(1, 9)]
    + [_produce(v) for v in range(3, 9)]
)


def _size(n: int) -> bytes:
    return struct.pack(">i", n)


@st.composite
def mutated_frames(draw: st.DrawFn) -> bytes:
    """A valid request frame, then damaged: bytes flipped, cut, grown, resized, or garbage."""
    kind = draw(st.sampled_from(["flip", "truncate", "append", "resize", "huge", "garbage"]))
    if kind == "garbage":
        return draw(st.binary(min_size=1, max_size=512))
    frame = draw(st.sampled_from(VALID_FRAMES))
    body = bytearray(frame[4:])
    if kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(body) - 1))
            body[i] ^= draw(st.integers(1, 255))
        return _size(len(body)) + bytes(body)
    if kind == "truncate":
        cut = draw(st.integers(0, len(body) - 1))
        honest = draw(st.booleans())  # the size tells the truth about the cut body, or not
        return _size(cut if honest else len(body)) + bytes(body[:cut])
    if kind == "append":
        extra = draw(st.binary(min_size=1, max_size=64))
        return _size(len(body) + len(extra)) + bytes(body) + extra
    if kind == "resize":
        size = draw(st.integers(-(2**31), 2**31 - 1) | st.integers(-16, len(body) + 16))
        return _size(size) + bytes(body)
    size = draw(st.sampled_from([REQUEST_BYTES_MAX + 1, 2**31 - 1, -1, -(2**31)]))
    return _size(size) + bytes(body)


def _send_and_drain(bootstrap: str, data: bytes) -> None:
    """Send, half-close, and read until the broker closes: it must, promptly."""
    host, _, port = bootstrap.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=TIMEOUT_S) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(1 << 16):
                pass
        except (ConnectionResetError, BrokenPipeError):
            pass  # closed on us while we were still sending: also a refusal


def assert_clients_still_served(bootstrap: str, topic: str) -> None:
    offsets: list[int] = []
    with Producer({"bootstrap.servers": bootstrap, "acks": "all"}) as producer:
        for i in range(3):
            producer.produce(
                topic, f"after-{i}".encode(), on_delivery=lambda e, m: offsets.append(m.offset())
            )
        assert producer.flush(TIMEOUT_S) == 0
    assert offsets == [0, 1, 2]
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "after-fuzz"})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        values = []
        deadline = time.monotonic() + TIMEOUT_S
        while len(values) < 3:
            assert time.monotonic() < deadline, values
            msg = consumer.poll(0.5)
            if msg is not None:
                assert msg.error() is None, msg.error()
                values.append(msg.value())
    finally:
        consumer.close()
    assert values == [b"after-0", b"after-1", b"after-2"]


def test_mutated_frames_never_hurt_the_broker(broker) -> None:
    with WireClient(broker.bootstrap) as wire:  # the topic valid produce frames write to
        answer = wire.request(ApiKey.METADATA, 8, metadata_body(FUZZ_TOPIC, auto_create=True))
        assert answer["topics"][0]["error_code"] == ErrorCode.NONE

    @settings(
        max_examples=200,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(data=st.lists(mutated_frames(), min_size=1, max_size=3).map(b"".join))
    def send(data: bytes) -> None:
        _send_and_drain(broker.bootstrap, data)
        assert broker.alive()

    send()
    assert broker.alive()
    assert_clients_still_served(broker.bootstrap, "after-fuzz")
    assert broker.alive()


def test_frame_over_the_size_limit_is_refused_unread(broker) -> None:
    with WireClient(broker.bootstrap) as wire:
        # only the size goes out: a broker that tried to read the body would wait forever
        wire.sock.sendall(_size(REQUEST_BYTES_MAX + 1))
        assert wire.closed_by_peer()
    with WireClient(broker.bootstrap) as wire:
        assert wire.request(ApiKey.API_VERSIONS, 0, {})["error_code"] == ErrorCode.NONE


def test_unknown_api_key_closes_only_that_connection(broker) -> None:
    with WireClient(broker.bootstrap) as good, WireClient(broker.bootstrap) as bad:
        assert good.request(ApiKey.API_VERSIONS, 0, {})["error_code"] == ErrorCode.NONE
        header = struct.pack(">hhih", 1000, 0, 7, len(CLIENT_ID)) + CLIENT_ID.encode()
        # a valid request pipelined after the unknown one is never answered
        bad.sock.sendall(_size(len(header)) + header + good.frame(ApiKey.API_VERSIONS, 0, {}))
        assert bad.closed_by_peer()
        answer = good.request(ApiKey.METADATA, 8, metadata_body())
        assert [b["port"] for b in answer["brokers"]] == [broker.port]


def test_api_versions_at_an_unsupported_version_gets_the_v0_list(broker) -> None:
    with WireClient(broker.bootstrap) as wire:
        header = struct.pack(">hhih", ApiKey.API_VERSIONS, 9, 42, len(CLIENT_ID))
        frame = header + CLIENT_ID.encode() + b"\x05fuzz\x021\x00"  # a v3-like body
        wire.sock.sendall(_size(len(frame)) + frame)
        answer = wire.read_frame()
        assert answer is not None
        correlation_id, body = decode_response(ApiKey.API_VERSIONS, 0, answer)
        assert correlation_id == 42
        assert body["error_code"] == ErrorCode.UNSUPPORTED_VERSION == 35
        served = {k["api_key"]: (k["min_version"], k["max_version"]) for k in body["api_keys"]}
        assert served == ADVERTISED
        assert served[ApiKey.PRODUCE] == (3, 8)
        # the connection stays usable: the client retries at a version we serve
        retry = {"client_software_name": "fuzz", "client_software_version": "1"}
        assert wire.request(ApiKey.API_VERSIONS, 3, retry)["error_code"] == ErrorCode.NONE
