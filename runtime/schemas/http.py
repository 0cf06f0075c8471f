"""The Confluent Schema Registry REST API over a SchemaRegistry (aiohttp routes).

    POST   /subjects/{s}/versions           register: {"schema", "schemaType"?, "references"?}
    GET    /subjects                        ?deleted=true: soft-deleted ones too
    GET    /subjects/{s}/versions           DELETE /subjects/{s}[?permanent=true]
    GET    /subjects/{s}/versions/{v|latest}[/schema]
    DELETE /subjects/{s}/versions/{v}[?permanent=true]
    POST   /subjects/{s}                    lookup: is this schema a version of s?
    GET    /schemas/ids/{id}[/schema|/versions|/subjects]
    GET    /schemas/types
    POST   /compatibility/subjects/{s}/versions[/{v|latest}]   ?verbose=true: the reasons
    GET|PUT /config, GET|PUT|DELETE /config/{s}   compatibility levels
    GET    /mode                            READWRITE (the only mode)

Answers and errors are shaped as Confluent's (`{"error_code": 40401,
"message": ...}`), so its clients (confluent-kafka's SchemaRegistryClient
and the serializers of other languages) work unmodified. AVRO is the type
of a schema registered without `schemaType`, and answers leave it out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from runtime.schemas.compatibility import SCHEMA_TYPES, check_type
from runtime.schemas.errors import InvalidSchemaError, SchemaRegistryError
from runtime.schemas.registry import Reference, Schema, SchemaRegistry, Version

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type=CONTENT_TYPE)


def _answers_errors(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except SchemaRegistryError as exc:
            return _json({"error_code": exc.error_code, "message": str(exc)}, exc.status)

    return wrapped


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "false").lower() == "true"


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise _Unprocessable(f"the body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise _Unprocessable("the body must be a JSON object")
    return body


class _Unprocessable(SchemaRegistryError):
    status, error_code = 422, 422


def _schema_of(body: dict[str, Any]) -> tuple[str, str, list[Reference]]:
    text = body.get("schema")
    if not isinstance(text, str):
        raise InvalidSchemaError('the body needs a "schema" string')
    schema_type = check_type(str(body.get("schemaType") or "AVRO").upper())
    references = []
    for ref in body.get("references") or []:
        try:
            references.append(Reference(str(ref["name"]), str(ref["subject"]), int(ref["version"])))
        except (KeyError, TypeError, ValueError):
            raise InvalidSchemaError(
                'a reference is {"name": ..., "subject": ..., "version": N}'
            ) from None
    return schema_type, text, references


def _schema_json(schema: Schema, text: str) -> dict[str, Any]:
    out: dict[str, Any] = {"schema": text}
    if schema.schema_type != "AVRO":
        out["schemaType"] = schema.schema_type
    if schema.references:
        out["references"] = [r.to_json() for r in schema.references]
    return out


def _version_json(version: Version, text: str) -> dict[str, Any]:
    return {
        "subject": version.subject,
        "version": version.version,
        "id": version.schema.id,
        **_schema_json(version.schema, text),
    }


class RegistryApi:
    def __init__(self, registry: SchemaRegistry) -> None:
        self.registry = registry

    def add_routes(self, app: web.Application) -> None:
        routes = [
            ("GET", "/subjects", self.subjects),
            ("POST", "/subjects/{subject}", self.lookup),
            ("DELETE", "/subjects/{subject}", self.delete_subject),
            ("GET", "/subjects/{subject}/versions", self.versions),
            ("POST", "/subjects/{subject}/versions", self.register),
            ("GET", "/subjects/{subject}/versions/{version}", self.version),
            ("GET", "/subjects/{subject}/versions/{version}/schema", self.version_schema),
            ("DELETE", "/subjects/{subject}/versions/{version}", self.delete_version),
            ("GET", "/schemas/types", self.types),
            ("GET", "/schemas/ids/{id}", self.schema),
            ("GET", "/schemas/ids/{id}/schema", self.schema_text),
            ("GET", "/schemas/ids/{id}/versions", self.schema_versions),
            ("GET", "/schemas/ids/{id}/subjects", self.schema_subjects),
            ("POST", "/compatibility/subjects/{subject}/versions", self.compatible),
            ("POST", "/compatibility/subjects/{subject}/versions/{version}", self.compatible),
            ("GET", "/config", self.get_config),
            ("PUT", "/config", self.put_config),
            ("GET", "/config/{subject}", self.get_config),
            ("PUT", "/config/{subject}", self.put_config),
            ("DELETE", "/config/{subject}", self.delete_config),
            ("GET", "/mode", self.mode),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, path, _answers_errors(handler))

    async def subjects(self, request: web.Request) -> web.Response:
        return _json(self.registry.subjects(deleted=_flag(request, "deleted")))

    async def versions(self, request: web.Request) -> web.Response:
        subject = request.match_info["subject"]
        return _json(self.registry.versions(subject, deleted=_flag(request, "deleted")))

    async def register(self, request: web.Request) -> web.Response:
        schema_type, text, references = _schema_of(await _body(request))
        subject = request.match_info["subject"]
        schema = await self.registry.register(subject, schema_type, text, references)
        return _json({"id": schema.id})

    async def version(self, request: web.Request) -> web.Response:
        found = self.registry.version(
            request.match_info["subject"],
            request.match_info["version"],
            deleted=_flag(request, "deleted"),
        )
        return _json(_version_json(found, self._text(found.schema, request)))

    async def version_schema(self, request: web.Request) -> web.Response:
        found = self.registry.version(request.match_info["subject"], request.match_info["version"])
        return web.Response(text=found.schema.text, content_type=CONTENT_TYPE)

    async def lookup(self, request: web.Request) -> web.Response:
        schema_type, text, references = _schema_of(await _body(request))
        found = self.registry.lookup(request.match_info["subject"], schema_type, text, references)
        return _json(_version_json(found, self._text(found.schema, request)))

    async def delete_subject(self, request: web.Request) -> web.Response:
        permanent = _flag(request, "permanent")
        return _json(await self.registry.delete_subject(request.match_info["subject"], permanent))

    async def delete_version(self, request: web.Request) -> web.Response:
        permanent = _flag(request, "permanent")
        subject, version = request.match_info["subject"], request.match_info["version"]
        return _json(await self.registry.delete_version(subject, version, permanent))

    async def types(self, request: web.Request) -> web.Response:
        return _json(list(SCHEMA_TYPES))

    def _schema_id(self, request: web.Request) -> Schema:
        try:
            schema_id = int(request.match_info["id"])
        except ValueError:
            shown = request.match_info["id"]
            raise _Unprocessable(f"schema id {shown!r} is not a number") from None
        return self.registry.schema(schema_id)

    async def schema(self, request: web.Request) -> web.Response:
        schema = self._schema_id(request)
        return _json(_schema_json(schema, self._text(schema, request)))

    def _text(self, schema: Schema, request: web.Request) -> str:
        return self.registry.text(schema, request.query.get("format"))

    async def schema_text(self, request: web.Request) -> web.Response:
        return web.Response(text=self._schema_id(request).text, content_type=CONTENT_TYPE)

    async def schema_versions(self, request: web.Request) -> web.Response:
        schema = self._schema_id(request)
        found = self.registry.subjects_of(schema.id)
        return _json([{"subject": v.subject, "version": v.version} for v in found])

    async def schema_subjects(self, request: web.Request) -> web.Response:
        schema = self._schema_id(request)
        return _json(sorted({v.subject for v in self.registry.subjects_of(schema.id)}))

    async def compatible(self, request: web.Request) -> web.Response:
        schema_type, text, references = _schema_of(await _body(request))
        version = request.match_info.get("version")
        reasons = self.registry.check(
            request.match_info["subject"], version, schema_type, text, references
        )
        answer: dict[str, Any] = {"is_compatible": not reasons}
        if _flag(request, "verbose"):
            answer["messages"] = reasons
        return _json(answer)

    async def get_config(self, request: web.Request) -> web.Response:
        subject = request.match_info.get("subject")
        fallback = subject is None or _flag(request, "defaultToGlobal")
        return _json({"compatibilityLevel": self.registry.level(subject, fallback=fallback)})

    async def put_config(self, request: web.Request) -> web.Response:
        body = await _body(request)
        level = await self.registry.set_level(
            request.match_info.get("subject"), body.get("compatibility")
        )
        return _json({"compatibility": level})

    async def delete_config(self, request: web.Request) -> web.Response:
        level = await self.registry.delete_level(request.match_info["subject"])
        return _json({"compatibilityLevel": level})

    async def mode(self, request: web.Request) -> web.Response:
        return _json({"mode": "READWRITE"})
