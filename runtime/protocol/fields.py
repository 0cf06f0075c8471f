"""Field shapes that recur across the Kafka API schemas."""

from __future__ import annotations

from runtime.protocol.schema import INT32, STRING, Array, Field, Struct

NO_AUTHORIZED_OPERATIONS = -(2**31)
"""An authorized-operations field not asked for (Kafka's Integer.MIN_VALUE)."""


def structs(
    name: str,
    *fields: Field,
    versions: str = "0+",
    nullable_versions: str | None = None,
    tagged: int | None = None,
) -> Field:
    """A field holding an array of structs."""
    return Field(name, Array(Struct(*fields)), versions, nullable_versions, tagged=tagged)


def throttle(versions: str = "1+") -> Field:
    return Field("throttle_time_ms", INT32, versions)


def error_message(versions: str = "0+") -> Field:
    return Field("error_message", STRING, versions, nullable_versions=versions, default=None)


def group_instance_id(versions: str) -> Field:
    return Field("group_instance_id", STRING, versions, nullable_versions=versions, default=None)
