"""Hypothesis strategies for protocol bodies, derived from the schemas."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from runtime.protocol import APIS
from runtime.protocol.schema import (
    BOOL,
    BYTES,
    FLOAT64,
    INT8,
    INT16,
    INT32,
    INT64,
    RECORDS,
    STRING,
    UINT32,
    UUID,
    Array,
    Field,
    Struct,
    Type,
)

_PRIMITIVES: dict[Type, st.SearchStrategy[Any]] = {
    INT8: st.integers(-(2**7), 2**7 - 1),
    INT16: st.integers(-(2**15), 2**15 - 1),
    INT32: st.integers(-(2**31), 2**31 - 1),
    INT64: st.integers(-(2**63), 2**63 - 1),
    UINT32: st.integers(0, 2**32 - 1),
    FLOAT64: st.floats(allow_nan=False),
    BOOL: st.booleans(),
    STRING: st.text(max_size=12),
    BYTES: st.binary(max_size=24),
    RECORDS: st.binary(max_size=48),
    UUID: st.uuids(),
}

VERSIONS = [
    (key, version)
    for key, api in sorted(APIS.items())
    for version in range(api.min_version, api.max_version + 1)
]
"""Every (api key, version) we have schemas for."""


def body(s: Struct, version: int, flexible: bool) -> st.SearchStrategy[dict]:
    """Full bodies: fields of the version drawn at random, the others at their default."""
    return st.fixed_dictionaries({f.name: _field(f, version, flexible) for f in s.fields})


def _field(f: Field, version: int, flexible: bool) -> st.SearchStrategy[Any]:
    if not f.present(version, flexible):
        return st.builds(f.default)
    values = _type(f.type, version, flexible)
    return st.none() | values if f.nullable_at(version) else values


def _type(t: Type, version: int, flexible: bool) -> st.SearchStrategy[Any]:
    if isinstance(t, Struct):
        return body(t, version, flexible)
    if isinstance(t, Array):
        return st.lists(_type(t.elem, version, flexible), max_size=3)
    return _PRIMITIVES[t]


def request_body(api_key: int, version: int) -> st.SearchStrategy[dict]:
    api = APIS[api_key]
    return body(api.request, version, api.flexible(version))


def response_body(api_key: int, version: int) -> st.SearchStrategy[dict]:
    api = APIS[api_key]
    return body(api.response, version, api.flexible(version))
