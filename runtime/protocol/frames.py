"""Whole Kafka frames: request and response headers around schema-coded bodies.

A frame on the wire is an int32 size, then a header, then the body. The decode
functions take the bytes after the size; the encode functions return them with it.

    request header v1 (non-flexible)   api_key int16, api_version int16,
                                       correlation_id int32, client_id nullable string
    request header v2 (flexible)       v1 + tagged fields
    response header v0 (non-flexible)  correlation_id int32
    response header v1 (flexible)      v0 + tagged fields

client_id is an int16-length string even in header v2, and ApiVersions responses
always use header v0 so that a client can read one before it knows our versions.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runtime.protocol import fetch_codec, produce_codec
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.protocol.errors import ProtocolError, UnsupportedVersionError
from runtime.protocol.messages import APIS
from runtime.protocol.primitives import INT16, INT32, Buffer, Reader, Writer
from runtime.protocol.schema import Api
from runtime.slotted import positional_builder

SUPPORTED: dict[int, tuple[int, int]] = {
    key: (api.min_version, api.max_version) for key, api in APIS.items()
}
"""api key -> (min, max) version we have schemas for."""

_REQUEST_HEADER = struct.Struct(">hhi")
_NO_TAGS = b"\x00"


@dataclass(frozen=True, slots=True)
class RequestHeader:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None


_build_header = positional_builder(RequestHeader)  # one per request the broker answers


def decode_request(frame: Buffer) -> tuple[RequestHeader, dict]:
    """(header, body) of a request frame (the bytes after the size).

    Raises UnsupportedVersionError (with the header) for an api key or version
    we have no schema for, ProtocolError for anything malformed. Records in the
    body are memoryviews into `frame`."""
    r = Reader(frame)
    api_key, api_version, correlation_id = r.unpack(_REQUEST_HEADER)
    header = _build_header(api_key, api_version, correlation_id, r.nullable_string())
    api = APIS.get(api_key)
    if api is None or not api.supports(api_version):
        raise UnsupportedVersionError(header)
    body = _decode_by_hand(api_key, api_version, r)
    if body is not None:
        return header, body
    flexible = api.flexible(api_version)
    try:
        if flexible:
            r.skip_tagged_fields()
        decode, _ = api.request.codec(api_version, flexible)
        return header, decode(r)
    except ProtocolError as e:
        raise ProtocolError(
            f"malformed {api.name} v{api_version} request: {e}", header=header
        ) from e
    except (ValueError, IndexError, struct.error) as e:  # a safety net: none is expected
        raise ProtocolError(
            f"malformed {api.name} v{api_version} request: {e!r}", header=header
        ) from e


def encode_response(header: RequestHeader, body: Mapping[str, Any]) -> bytes:
    """The response frame (with its size) answering `header`."""
    return _response_writer(header, body).frame()


def encode_response_parts(header: RequestHeader, body: Mapping[str, Any]) -> list[Any]:
    """The response frame as parts to send back to back (Writer.frame_parts):
    large records are not copied, and records given as chunks that are not
    buffers (file regions) come out as they went in."""
    return _response_writer(header, body).frame_parts()


def _response_writer(header: RequestHeader, body: Mapping[str, Any]) -> Writer:
    api = _api(header.api_key, header.api_version)
    flexible = api.flexible(header.api_version)
    w = Writer()
    w.buf += INT32.pack(header.correlation_id)
    if flexible and header.api_key != ApiKey.API_VERSIONS:
        w.buf += _NO_TAGS
    if _encode_by_hand(header, w, body):
        return w
    _, encode = api.response.codec(header.api_version, flexible)
    _encode(encode, w, body, api, header.api_version, "response")
    return w


def _decode_by_hand(api_key: int, version: int, r: Reader) -> dict | None:
    """The body of a Produce or Fetch, the broker's most frequent requests, by
    the hand-written decoders; None for the schema to decode."""
    if api_key == ApiKey.PRODUCE and version in produce_codec.VERSIONS:
        return produce_codec.decode_request(r.buf, r.pos)
    if api_key == ApiKey.FETCH and version in fetch_codec.VERSIONS:
        return fetch_codec.decode_request(r.buf, r.pos, version)
    return None


def _encode_by_hand(header: RequestHeader, w: Writer, body: Mapping[str, Any]) -> bool:
    """Write a Produce or Fetch response with the hand-written encoders; False,
    with nothing written, for the schema to encode (a body they do not take,
    or one they fail on: the schema then says what is wrong with it)."""
    key, version = header.api_key, header.api_version
    mark = len(w.buf)
    try:
        if key == ApiKey.PRODUCE and version in produce_codec.VERSIONS:
            return produce_codec.encode_response(w, body, version)
        if key == ApiKey.FETCH and version in fetch_codec.VERSIONS:
            fetch_codec.encode_response(w, body, version)
            return True
    except (struct.error, AttributeError, KeyError, TypeError, ValueError):
        if w.chunks:  # records moved what was written into the chunks
            w.buf = bytearray(w.chunks[0])
            w.chunks.clear()
        del w.buf[mark:]
    return False


def encode_request(
    api_key: int,
    api_version: int,
    correlation_id: int,
    client_id: str | None,
    body: Mapping[str, Any],
) -> bytes:
    """The request frame (with its size)."""
    api = _api(api_key, api_version)
    flexible = api.flexible(api_version)
    w = Writer()
    w.buf += _REQUEST_HEADER.pack(api_key, api_version, correlation_id)
    w.nullable_string(client_id)
    if flexible:
        w.buf += _NO_TAGS
    if api_key == ApiKey.FETCH and api_version in fetch_codec.VERSIONS:
        mark = len(w.buf)
        try:  # by hand: what a consumer sends most; else the schema says what is wrong
            fetch_codec.encode_request(w, body, api_version)
            return w.frame()
        except (struct.error, AttributeError, KeyError, TypeError, ValueError):
            del w.buf[mark:]
    _, encode = api.request.codec(api_version, flexible)
    _encode(encode, w, body, api, api_version, "request")
    return w.frame()


def decode_response(api_key: int, api_version: int, frame: Buffer) -> tuple[int, dict]:
    """(correlation_id, body) of a response frame (the bytes after the size).

    An ApiVersions response carrying UNSUPPORTED_VERSION is read as v0, the
    format brokers answer an ApiVersions request they cannot serve in."""
    api = _api(api_key, api_version)
    r = Reader(frame)
    try:
        correlation_id = r.int32()
        if api_key == ApiKey.FETCH and api_version in fetch_codec.VERSIONS:
            body = fetch_codec.decode_response(r.buf, r.pos, api_version)
            if body is not None:  # by hand: what a consumer reads most
                return correlation_id, body
        if api_key == ApiKey.API_VERSIONS and _is_unsupported_version(r):
            api_version = 0
        flexible = api.flexible(api_version)
        if flexible and api_key != ApiKey.API_VERSIONS:
            r.skip_tagged_fields()
        decode, _ = api.response.codec(api_version, flexible)
        return correlation_id, decode(r)
    except ProtocolError as e:
        raise ProtocolError(f"malformed {api.name} v{api_version} response: {e}") from None
    except (ValueError, IndexError, struct.error) as e:
        raise ProtocolError(f"malformed {api.name} v{api_version} response: {e!r}") from None


def api_versions_unsupported_response(
    header: RequestHeader, api_keys: Mapping[int, tuple[int, int]] | None = None
) -> bytes:
    """An ApiVersions v0 answer with UNSUPPORTED_VERSION and the versions we serve
    (`api_keys`, default SUPPORTED), for an ApiVersions request we cannot serve."""
    keys = SUPPORTED if api_keys is None else api_keys
    w = Writer()
    w.int32(header.correlation_id)
    _, encode = APIS[ApiKey.API_VERSIONS].response.codec(0, False)
    body = {
        "error_code": ErrorCode.UNSUPPORTED_VERSION,
        "api_keys": [
            {"api_key": key, "min_version": low, "max_version": high}
            for key, (low, high) in sorted(keys.items())
        ],
    }
    encode(w, body)
    return w.frame()


def _is_unsupported_version(r: Reader) -> bool:
    try:
        (error_code,) = INT16.unpack_from(r.buf, r.pos)
    except struct.error:
        return False
    return error_code == ErrorCode.UNSUPPORTED_VERSION


def _api(api_key: int, api_version: int) -> Api:
    api = APIS.get(api_key)
    if api is None or not api.supports(api_version):
        raise ValueError(f"no schema for api key {api_key} version {api_version}")
    return api


def _encode(encode: Any, w: Writer, body: Mapping, api: Api, version: int, kind: str) -> None:
    try:
        encode(w, body)
    except (struct.error, AttributeError, TypeError, ValueError) as e:
        raise ValueError(f"cannot encode {api.name} v{version} {kind}: {e}") from e
