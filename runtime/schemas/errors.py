"""Errors of the schema registry, each with the Confluent Schema Registry's answer.

StreamsRuntimeError (runtime/errors.py)
└── SchemaRegistryError           status, error_code: what the REST API answers
    ├── InvalidSchemaError        422 42201  a schema that does not parse
    ├── IncompatibleSchemaError   409 409    breaks the subject's compatibility level
    ├── SubjectNotFoundError      404 40401
    ├── VersionNotFoundError      404 40402
    ├── SchemaNotFoundError       404 40403
    ├── SubjectSoftDeletedError   404 40404  the subject was deleted (not permanently)
    ├── NotSoftDeletedError       404 40405/40407  a permanent delete of what is live
    ├── InvalidVersionError       422 42202
    ├── InvalidCompatibilityError 422 42203
    └── SubjectConfigNotFound     404 40408  no level of its own for that subject
"""

from __future__ import annotations

from runtime.errors import StreamsRuntimeError


class SchemaRegistryError(StreamsRuntimeError):
    status = 500
    error_code = 50001


class InvalidSchemaError(SchemaRegistryError):
    status, error_code = 422, 42201


class IncompatibleSchemaError(SchemaRegistryError):
    status, error_code = 409, 409


class SubjectNotFoundError(SchemaRegistryError):
    status, error_code = 404, 40401


class VersionNotFoundError(SchemaRegistryError):
    status, error_code = 404, 40402


class SchemaNotFoundError(SchemaRegistryError):
    status, error_code = 404, 40403


class SubjectSoftDeletedError(SchemaRegistryError):
    status, error_code = 404, 40404


class NotSoftDeletedError(SchemaRegistryError):
    status, error_code = 404, 40405


class InvalidVersionError(SchemaRegistryError):
    status, error_code = 422, 42202


class InvalidCompatibilityError(SchemaRegistryError):
    status, error_code = 422, 42203


class SubjectConfigNotFound(SchemaRegistryError):
    status, error_code = 404, 40408
