"""The schema registry's state: subjects, versions, schema ids, compatibility levels.

Every change is one record appended to a compacted topic (`_schemas`, as in
Confluent's registry) before it takes effect in memory; on start the state is
rebuilt by replaying that topic, so the registry survives restarts and
travels wherever the log does. Keys and values are JSON:

    {"keytype": "SCHEMA", "subject": S, "version": V}
        -> {"subject", "version", "id", "schema", "schemaType", "references", "deleted"}
           (null: permanently deleted)
    {"keytype": "CONFIG", "subject": S or null}
        -> {"compatibilityLevel": LEVEL} (null: the subject's own level removed)

Invariants:
- a schema id names one (type, schema, references) for good: registering the
  same schema under any subject gives the id it already has; ids only grow;
- versions of a subject only grow, soft-deleted ones included; a permanent
  delete needs a soft delete first;
- a new version keeps the subject's compatibility level against its live
  versions, or is refused (IncompatibleSchemaError) with nothing written.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from runtime.schemas.compatibility import DEFAULT_LEVEL, Parsed, check_level, parse, problems
from runtime.schemas.errors import (
    IncompatibleSchemaError,
    InvalidSchemaError,
    InvalidVersionError,
    NotSoftDeletedError,
    SchemaNotFoundError,
    SubjectConfigNotFound,
    SubjectNotFoundError,
    VersionNotFoundError,
)

TOPIC = "_schemas"


class RegistryLog(Protocol):
    """Where the registry's records live (a compacted topic)."""

    async def append(self, key: bytes, value: bytes | None) -> None: ...

    async def replay(self) -> Iterable[tuple[bytes, bytes | None]]: ...


@dataclass(frozen=True, slots=True)
class Reference:
    name: str
    subject: str
    version: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "subject": self.subject, "version": self.version}


@dataclass(frozen=True, slots=True)
class Schema:
    id: int
    schema_type: str
    text: str
    references: tuple[Reference, ...] = ()


@dataclass(slots=True)
class Version:
    subject: str
    version: int
    schema: Schema
    deleted: bool = False


@dataclass
class _Subject:
    versions: dict[int, Version] = field(default_factory=dict)

    def live(self) -> list[Version]:
        return [v for _, v in sorted(self.versions.items()) if not v.deleted]


class SchemaRegistry:
    def __init__(self, log: RegistryLog) -> None:
        self._log = log
        self._subjects: dict[str, _Subject] = {}
        self._schemas: dict[int, Schema] = {}
        self._ids: dict[tuple[str, str, tuple[Reference, ...]], int] = {}
        self._levels: dict[str | None, str] = {}
        self._canonical: dict[int, str] = {}  # schema id -> canonical form (parsing is slow)
        self._lock = asyncio.Lock()  # one change at a time: check, append, apply

    async def start(self) -> None:
        for key, value in await self._log.replay():
            self._apply(json.loads(key), None if value is None else json.loads(value))

    # --- reading -----------------------------------------------------------------

    def subjects(self, *, deleted: bool = False) -> list[str]:
        return sorted(
            name for name, s in self._subjects.items() if s.versions and (deleted or s.live())
        )

    def versions(self, subject: str, *, deleted: bool = False) -> list[int]:
        s = self._subject(subject, deleted=deleted)
        return [v.version for v in (s.versions.values() if deleted else s.live())]

    def version(self, subject: str, version: str | int, *, deleted: bool = False) -> Version:
        s = self._subject(subject, deleted=deleted)
        candidates = sorted(s.versions.values(), key=lambda v: v.version)
        if not deleted:
            candidates = [v for v in candidates if not v.deleted]
        if version in ("latest", -1):
            if not candidates:
                raise VersionNotFoundError(f"Subject '{subject}' has no live version.")
            return candidates[-1]
        number = _version_number(version)
        found = next((v for v in candidates if v.version == number), None)
        if found is None:
            raise VersionNotFoundError(f"Version {number} not found.")
        return found

    def schema(self, schema_id: int) -> Schema:
        try:
            return self._schemas[schema_id]
        except KeyError:
            raise SchemaNotFoundError(f"Schema {schema_id} not found") from None

    def subjects_of(self, schema_id: int) -> list[Version]:
        self.schema(schema_id)
        return [v for s in self._subjects.values() for v in s.live() if v.schema.id == schema_id]

    def lookup(
        self, subject: str, schema_type: str, text: str, references: Sequence[Reference] = ()
    ) -> Version:
        s = self._subject(subject)
        parsed = parse(schema_type, text, self._reference_texts(references))
        key = (schema_type, parsed.canonical(), tuple(references))
        for version in s.live():
            if self._key(version.schema) == key:
                return version
        raise SchemaNotFoundError("Schema not found")

    def level(self, subject: str | None, *, fallback: bool = True) -> str:
        if subject in self._levels:
            return self._levels[subject]
        if subject is not None and not fallback:
            raise SubjectConfigNotFound(
                f"Subject '{subject}' does not have subject-level compatibility configured"
            )
        return self._levels.get(None, DEFAULT_LEVEL)

    def check(
        self,
        subject: str,
        version: str | int | None,
        schema_type: str,
        text: str,
        references: Sequence[Reference] = (),
    ) -> list[str]:
        """Why the schema would break `subject`'s level against `version` (None: every
        version the level compares with); [] when it would not."""
        parsed = parse(schema_type, text, self._reference_texts(references))
        if subject not in self._subjects or not self._subjects[subject].live():
            if version is None:
                return []
            raise SubjectNotFoundError(f"Subject '{subject}' not found.")
        against = (
            self._subjects[subject].live() if version is None else [self.version(subject, version)]
        )
        return self._problems(subject, schema_type, parsed, against)

    # --- changing ----------------------------------------------------------------

    async def register(
        self,
        subject: str,
        schema_type: str,
        text: str,
        references: Sequence[Reference] = (),
    ) -> Schema:
        """The schema (with its id) as registered under `subject`, new or already there."""
        async with self._lock:
            parsed = parse(schema_type, text, self._reference_texts(references))
            key = (schema_type, parsed.canonical(), tuple(references))
            current = self._subjects.get(subject, _Subject())
            for version in current.live():
                if self._key(version.schema) == key:
                    return version.schema
            found = self._problems(subject, schema_type, parsed, current.live())
            if found:
                raise IncompatibleSchemaError(
                    f"Schema being registered is incompatible with an earlier schema for "
                    f'subject "{subject}", details: {found}'
                )
            schema_id = self._ids.get(key) or max(self._schemas, default=0) + 1
            number = max(current.versions, default=0) + 1
            schema = Schema(schema_id, schema_type, text, tuple(references))
            await self._write_version(Version(subject, number, schema))
            return schema

    async def delete_version(self, subject: str, version: str | int, permanent: bool) -> int:
        async with self._lock:
            found = self.version(subject, version, deleted=permanent)
            if permanent:
                if not found.deleted:
                    raise _must_soft_delete_version(subject, found.version)
                await self._log.append(_schema_key(subject, found.version), None)
                self._apply(json.loads(_schema_key(subject, found.version)), None)
            else:
                found_copy = Version(subject, found.version, found.schema, deleted=True)
                await self._write_version(found_copy)
            return found.version

    async def delete_subject(self, subject: str, permanent: bool) -> list[int]:
        async with self._lock:
            s = self._subject(subject, deleted=permanent)
            if permanent:
                if s.live():
                    raise NotSoftDeletedError(
                        f"Subject '{subject}' was not deleted first before being permanently "
                        "deleted"
                    )
                numbers = sorted(s.versions)
                for number in numbers:
                    await self._log.append(_schema_key(subject, number), None)
                    self._apply(json.loads(_schema_key(subject, number)), None)
                return numbers
            numbers = [v.version for v in s.live()]
            for v in s.live():
                await self._write_version(Version(subject, v.version, v.schema, deleted=True))
            return numbers

    async def set_level(self, subject: str | None, level: str) -> str:
        level = check_level(level)
        async with self._lock:
            key = _config_key(subject)
            value = json.dumps({"compatibilityLevel": level}).encode()
            await self._log.append(key, value)
            self._apply(json.loads(key), json.loads(value))
            return level

    async def delete_level(self, subject: str) -> str:
        async with self._lock:
            level = self.level(subject, fallback=False)
            key = _config_key(subject)
            await self._log.append(key, None)
            self._apply(json.loads(key), None)
            return level

    # --- inside --------------------------------------------------------------------

    def _subject(self, subject: str, *, deleted: bool = False) -> _Subject:
        s = self._subjects.get(subject)
        if s is None or not s.versions or (not deleted and not s.live()):
            raise SubjectNotFoundError(f"Subject '{subject}' not found.")
        return s

    def _problems(
        self, subject: str, schema_type: str, parsed: Parsed, against: Sequence[Version]
    ) -> list[str]:
        same_type = [v for v in against if v.schema.schema_type == schema_type]
        if len(same_type) != len(against):
            return [f"the subject holds schemas of another type than {schema_type}"]
        existing = [self._parsed(v.schema) for v in same_type]
        return problems(self.level(subject), schema_type, parsed, existing)

    def text(self, schema: Schema, fmt: str | None = None) -> str:
        """The schema's text; `fmt="serialized"`: a Protobuf schema as a base64
        FileDescriptorProto, whichever form it was registered in."""
        if fmt == "serialized" and schema.schema_type == "PROTOBUF":
            return self._parsed(schema).serialized()  # type: ignore[attr-defined]
        return schema.text

    def _parsed(self, schema: Schema) -> Parsed:
        return parse(schema.schema_type, schema.text, self._reference_texts(schema.references))

    def _key(self, schema: Schema) -> tuple[str, str, tuple[Reference, ...]]:
        canonical = self._canonical.get(schema.id)
        if canonical is None:
            canonical = self._canonical[schema.id] = self._parsed(schema).canonical()
        return (schema.schema_type, canonical, schema.references)

    def _reference_texts(self, references: Sequence[Reference]) -> dict[str, str]:
        texts = {}
        for ref in references:
            try:
                texts[ref.name] = self.version(ref.subject, ref.version).schema.text
            except (SubjectNotFoundError, VersionNotFoundError):
                raise InvalidSchemaError(
                    f"reference {ref.name!r}: subject {ref.subject!r} has no version {ref.version}"
                ) from None
        return texts

    async def _write_version(self, version: Version) -> None:
        key = _schema_key(version.subject, version.version)
        value = json.dumps(
            {
                "subject": version.subject,
                "version": version.version,
                "id": version.schema.id,
                "schema": version.schema.text,
                "schemaType": version.schema.schema_type,
                "references": [r.to_json() for r in version.schema.references],
                "deleted": version.deleted,
            }
        ).encode()
        await self._log.append(key, value)
        self._apply(json.loads(key), json.loads(value))

    def _apply(self, key: Mapping[str, Any], value: Mapping[str, Any] | None) -> None:
        kind = key.get("keytype")
        if kind == "CONFIG":
            if value is None:
                self._levels.pop(key.get("subject"), None)
            else:
                self._levels[key.get("subject")] = value["compatibilityLevel"]
            return
        if kind != "SCHEMA":
            return  # a record of a later version of the registry: not ours to read
        subject = self._subjects.setdefault(key["subject"], _Subject())
        if value is None:
            subject.versions.pop(key["version"], None)
            return
        references = tuple(
            Reference(r["name"], r["subject"], r["version"]) for r in value["references"]
        )
        schema = Schema(value["id"], value["schemaType"], value["schema"], references)
        self._schemas.setdefault(schema.id, schema)
        subject.versions[value["version"]] = Version(
            value["subject"], value["version"], self._schemas[schema.id], value["deleted"]
        )
        # a schema whose references are gone keeps its id, but nothing new matches it
        with contextlib.suppress(InvalidSchemaError):
            self._ids.setdefault(self._key(schema), schema.id)


def _version_number(version: str | int) -> int:
    try:
        number = int(version)
    except (TypeError, ValueError):
        raise InvalidVersionError(
            f"The specified version '{version}' is not a valid version id. Allowed values are "
            'between [1, 2^31-1] and the string "latest"'
        ) from None
    if not 1 <= number < 2**31:
        raise InvalidVersionError(f"The specified version '{version}' is not a valid version id.")
    return number


def _must_soft_delete_version(subject: str, version: int) -> NotSoftDeletedError:
    error = NotSoftDeletedError(
        f"Subject '{subject}' Version {version} was not deleted first before being "
        "permanently deleted"
    )
    error.error_code = 40407
    return error


def _schema_key(subject: str, version: int) -> bytes:
    return json.dumps(
        {"keytype": "SCHEMA", "subject": subject, "version": version}, sort_keys=True
    ).encode()


def _config_key(subject: str | None) -> bytes:
    return json.dumps({"keytype": "CONFIG", "subject": subject}, sort_keys=True).encode()
