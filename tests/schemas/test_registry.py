"""The registry's rules over an in-memory log: ids, versions, levels, deletes, and a
restart that replays the log into the same state."""

from __future__ import annotations

import asyncio
import json

import pytest

from runtime.schemas.errors import (
    IncompatibleSchemaError,
    InvalidCompatibilityError,
    InvalidSchemaError,
    NotSoftDeletedError,
    SchemaNotFoundError,
    SubjectConfigNotFound,
    SubjectNotFoundError,
    VersionNotFoundError,
)
from runtime.schemas.registry import Reference, SchemaRegistry


class MemoryLog:
    def __init__(self) -> None:
        self.records: list[tuple[bytes, bytes | None]] = []

    async def append(self, key: bytes, value: bytes | None) -> None:
        self.records.append((key, value))

    async def replay(self) -> list[tuple[bytes, bytes | None]]:
        return list(self.records)


def avro(*fields: tuple[str, str, object]) -> str:
    out = []
    for name, kind, default in fields:
        field: dict = {"name": name, "type": kind}
        if default is not ...:
            field["default"] = default
        out.append(field)
    return json.dumps({"type": "record", "name": "Ride", "fields": out})


V1 = avro(("id", "string", ...))
V2 = avro(("id", "string", ...), ("fare", "double", 0.0))
BREAKS = avro(("id", "string", ...), ("fare", "double", ...))


def run(coroutine):
    return asyncio.run(coroutine)


async def started(log: MemoryLog) -> SchemaRegistry:
    registry = SchemaRegistry(log)
    await registry.start()
    return registry


def test_ids_and_versions():
    async def main() -> None:
        registry = await started(MemoryLog())
        first = await registry.register("rides-value", "AVRO", V1)
        assert (await registry.register("rides-value", "AVRO", V1)).id == first.id  # again
        again = await registry.register("other-value", "AVRO", V1.replace(":", ": "))
        assert again.id == first.id  # the same schema, laid out otherwise, anywhere
        second = await registry.register("rides-value", "AVRO", V2)
        assert second.id == first.id + 1
        assert registry.versions("rides-value") == [1, 2]
        assert registry.version("rides-value", "latest").schema.id == second.id
        assert registry.lookup("rides-value", "AVRO", V1).version == 1
        assert registry.subjects() == ["other-value", "rides-value"]
        assert sorted(v.subject for v in registry.subjects_of(first.id)) == [
            "other-value",
            "rides-value",
        ]

    run(main())


def test_an_incompatible_version_is_refused_and_nothing_written():
    async def main() -> None:
        log = MemoryLog()
        registry = await started(log)
        await registry.register("rides-value", "AVRO", V1)
        written = len(log.records)
        with pytest.raises(IncompatibleSchemaError, match="fare: a field without a default"):
            await registry.register("rides-value", "AVRO", BREAKS)
        assert len(log.records) == written
        assert registry.versions("rides-value") == [1]
        assert registry.check("rides-value", "latest", "AVRO", BREAKS) != []
        assert registry.check("rides-value", "latest", "AVRO", V2) == []

    run(main())


def test_levels_per_subject_and_global():
    async def main() -> None:
        registry = await started(MemoryLog())
        assert registry.level(None) == "BACKWARD"
        await registry.register("a", "AVRO", V2)
        await registry.set_level("a", "forward")
        # FORWARD: the old schema reads new data: dropping the defaulted field is fine
        assert (await registry.register("a", "AVRO", V1)).id
        with pytest.raises(SubjectConfigNotFound):
            registry.level("b", fallback=False)
        await registry.set_level(None, "NONE")
        assert registry.level("b") == "NONE"
        assert await registry.delete_level("a") == "FORWARD"
        assert registry.level("a") == "NONE"
        with pytest.raises(InvalidCompatibilityError):
            await registry.set_level(None, "SIDEWAYS")

    run(main())


def test_transitive_levels_check_every_version():
    async def main() -> None:
        registry = await started(MemoryLog())
        await registry.set_level("t", "BACKWARD_TRANSITIVE")
        await registry.register("t", "AVRO", avro(("id", "string", ...)))
        await registry.register("t", "AVRO", avro(("id", "string", ...), ("n", "int", 0)))
        # v3 drops the default again: fine against v2, not against v1 (transitively)
        v3 = avro(("id", "string", ...), ("n", "int", ...))
        with pytest.raises(IncompatibleSchemaError):
            await registry.register("t", "AVRO", v3)

    run(main())


def test_soft_then_permanent_deletes():
    async def main() -> None:
        registry = await started(MemoryLog())
        await registry.register("s", "AVRO", V1)
        await registry.register("s", "AVRO", V2)
        with pytest.raises(NotSoftDeletedError):
            await registry.delete_version("s", 1, permanent=True)
        assert await registry.delete_version("s", 1, permanent=False) == 1
        assert registry.versions("s") == [2]
        assert registry.versions("s", deleted=True) == [1, 2]
        assert await registry.delete_version("s", 1, permanent=True) == 1
        assert registry.versions("s", deleted=True) == [2]
        with pytest.raises(NotSoftDeletedError):
            await registry.delete_subject("s", permanent=True)
        assert await registry.delete_subject("s", permanent=False) == [2]
        assert registry.subjects() == [] and registry.subjects(deleted=True) == ["s"]
        with pytest.raises(SubjectNotFoundError):
            registry.versions("s")
        assert await registry.delete_subject("s", permanent=True) == [2]
        assert registry.subjects(deleted=True) == []
        # a schema id stays readable: old records still name it
        assert registry.schema(1).text == V1

    run(main())


def test_a_restart_replays_the_same_state():
    async def main() -> None:
        log = MemoryLog()
        registry = await started(log)
        await registry.register("s", "AVRO", V1)
        await registry.register("s", "AVRO", V2)
        await registry.set_level("s", "FULL")
        await registry.delete_version("s", 1, permanent=False)
        again = await started(log)
        assert again.versions("s") == [2] and again.versions("s", deleted=True) == [1, 2]
        assert again.level("s") == "FULL"
        assert (await again.register("s", "AVRO", V2)).id == 2  # known: not a new version
        assert (await again.register("t", "AVRO", V1)).id == 1

    run(main())


def test_references_must_exist_and_bad_input_is_refused():
    async def main() -> None:
        registry = await started(MemoryLog())
        point = json.dumps(
            {"type": "record", "name": "Point", "fields": [{"name": "x", "type": "int"}]}
        )
        await registry.register("point", "AVRO", point)
        uses = json.dumps(
            {"type": "record", "name": "Trip", "fields": [{"name": "p", "type": "Point"}]}
        )
        ref = Reference("Point", "point", 1)
        assert (await registry.register("trip", "AVRO", uses, [ref])).references == (ref,)
        with pytest.raises(InvalidSchemaError, match="has no version 7"):
            await registry.register("trip", "AVRO", uses, [Reference("Point", "point", 7)])
        with pytest.raises(InvalidSchemaError):
            await registry.register("trip", "AVRO", uses)  # Point unknown without the reference
        with pytest.raises(InvalidSchemaError, match="unknown schema type"):
            await registry.register("x", "XML", "<a/>")
        with pytest.raises(SchemaNotFoundError):
            registry.schema(999)
        with pytest.raises(VersionNotFoundError):
            registry.version("point", 9)
        with pytest.raises(SubjectNotFoundError):
            registry.lookup("nope", "AVRO", point)

    run(main())


def test_a_subject_keeps_one_schema_type():
    async def main() -> None:
        registry = await started(MemoryLog())
        await registry.register("mixed", "AVRO", V1)
        with pytest.raises(IncompatibleSchemaError, match="another type"):
            await registry.register("mixed", "JSON", '{"type": "object"}')

    run(main())
