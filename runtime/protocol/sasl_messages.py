"""Request and response schemas of the SASL APIs (KIP-43, KIP-152, KIP-368).

Written from the Kafka protocol guide and Apache Kafka's message definitions,
like messages.py.

| api (key)              | versions | first flexible |
|------------------------|----------|----------------|
| SaslHandshake (17)     | 0-1      | none           |
| SaslAuthenticate (36)  | 0-2      | 2              |

SaslHandshake v0 is followed by raw SASL tokens, each an int32 size and the
mechanism's bytes with no Kafka header (what clients before KIP-152 send);
v1 is followed by SaslAuthenticate requests carrying the same bytes. Neither
is framed here: that is the broker's connection state (runtime/broker/sasl.py).
`session_lifetime_ms` (v1+) is KIP-368's: 0 means the session never expires.
"""

from __future__ import annotations

from runtime.protocol.codes import ApiKey
from runtime.protocol.fields import error_message
from runtime.protocol.schema import BYTES, INT16, INT64, STRING, Api, Array, Field, Struct

# "none" in Kafka's definitions: past every version we describe
_NEVER_FLEXIBLE = 0x7FFF

SASL_HANDSHAKE = Api(
    key=ApiKey.SASL_HANDSHAKE,
    name="SaslHandshake",
    min_version=0,
    max_version=1,
    flexible_from=_NEVER_FLEXIBLE,
    request=Struct(Field("mechanism", STRING)),
    response=Struct(Field("error_code", INT16), Field("mechanisms", Array(STRING))),
)

SASL_AUTHENTICATE = Api(
    key=ApiKey.SASL_AUTHENTICATE,
    name="SaslAuthenticate",
    min_version=0,
    max_version=2,
    flexible_from=2,
    request=Struct(Field("auth_bytes", BYTES)),
    response=Struct(
        Field("error_code", INT16),
        error_message(),
        Field("auth_bytes", BYTES),
        Field("session_lifetime_ms", INT64, "1+"),
    ),
)

SASL_APIS = (SASL_HANDSHAKE, SASL_AUTHENTICATE)
