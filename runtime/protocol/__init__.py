"""The Kafka wire protocol: codecs shared by the broker and the client.

frames      decode_request / encode_response (server), encode_request /
            decode_response (client), RequestHeader, SUPPORTED
messages    the request and response schemas by api key (APIS)
codes       ApiKey, ErrorCode
schema      the schema language (Field, Struct, Array, ...) and its compiler
primitives  Reader and Writer of the wire's primitive types
errors      ProtocolError, UnsupportedVersionError
"""

from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.protocol.errors import ProtocolError, UnsupportedVersionError
from runtime.protocol.frames import (
    SUPPORTED,
    RequestHeader,
    api_versions_unsupported_response,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)
from runtime.protocol.messages import APIS

__all__ = [
    "APIS",
    "SUPPORTED",
    "ApiKey",
    "ErrorCode",
    "ProtocolError",
    "RequestHeader",
    "UnsupportedVersionError",
    "api_versions_unsupported_response",
    "decode_request",
    "decode_response",
    "encode_request",
    "encode_response",
]
