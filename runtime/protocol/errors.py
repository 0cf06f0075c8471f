"""Errors of the Kafka wire protocol codecs.

    StreamsRuntimeError                 (runtime.errors)
    └── ProtocolError                   malformed bytes: truncated, a bad length, a bad varint
        └── UnsupportedVersionError     a request for an api key or version we have no schema for

Decoding raises nothing else: the broker closes a connection on ProtocolError,
and answers UNSUPPORTED_VERSION on UnsupportedVersionError (whose `header` holds
the parsed request header). Encoding raises ValueError for values that do not fit
the schema (a null in a non-nullable field, an int out of range): those are
programmer errors, not bad input.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runtime.errors import StreamsRuntimeError

if TYPE_CHECKING:
    from runtime.protocol.frames import RequestHeader


class ProtocolError(StreamsRuntimeError):
    """Bytes that do not decode; `header` is the request header when it was parsed."""

    def __init__(self, message: str, *, header: RequestHeader | None = None) -> None:
        super().__init__(message)
        self.header = header


class UnsupportedVersionError(ProtocolError):
    """An api key we do not know, or a version outside the range we have schemas for."""

    header: RequestHeader

    def __init__(self, header: RequestHeader, message: str | None = None) -> None:
        if message is None:
            message = f"unsupported api key {header.api_key} version {header.api_version}"
        super().__init__(message, header=header)
