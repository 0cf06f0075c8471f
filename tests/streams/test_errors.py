from __future__ import annotations

import pytest

from streams.errors import (
    ConfigurationError,
    DecodeError,
    KeyDecodeError,
    ModelError,
    StreamsError,
    ValueDecodeError,
)


def test_hierarchy() -> None:
    for error in (KeyDecodeError, ValueDecodeError):
        assert issubclass(error, DecodeError)
    for error in (DecodeError, ModelError, ConfigurationError):
        assert issubclass(error, StreamsError)
        assert issubclass(error, ValueError)


def test_decode_error_carries_coordinates_and_cause() -> None:
    cause = ValueError("bad json")
    error = ValueDecodeError("cannot decode", topic="t", partition=1, offset=7, cause=cause)
    assert (error.topic, error.partition, error.offset, error.cause) == ("t", 1, 7, cause)


def test_decode_error_cause_defaults_to_raised_from() -> None:
    with pytest.raises(KeyDecodeError) as info:
        try:
            raise UnicodeError("nope")
        except UnicodeError as exc:
            raise KeyDecodeError("cannot decode key", topic="t") from exc
    assert isinstance(info.value.cause, UnicodeError)
    assert info.value.partition is None


def test_model_error_names_model_and_field() -> None:
    error = ModelError("Ride: missing required field 'zone'", model="Ride", field="zone")
    assert (error.model, error.field) == ("Ride", "zone")
