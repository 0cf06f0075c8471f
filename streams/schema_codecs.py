"""Codecs through a schema registry: Avro, Protobuf and JSON Schema in Confluent's wire format.

    app = streams.App("rides", broker="kafka://...", schema_registry_url="http://host:8082")
    rides = app.topic("rides", value_type=Ride, value_serializer="avro")

A record is a magic byte 0, the writer's schema id (4 bytes, big-endian) and
the payload (for Protobuf, the message's index path first), so confluent-kafka's
serializers and those of other languages read what streams writes and the
other way round. On its first record a codec registers the type's schema
under the topic's subject (`<topic>-value` or `<topic>-key`; the registry
answers the id it already has when the schema is known, and 409 when the
change would break the subject's compatibility), then writes with that id.
Decoding reads the writer's schema by id (once per id: cached) and, for Avro,
resolves it to the reader's, so a reader with an older or newer compatible
schema reads the record as its own type.

The schema comes from the type: a streams.Record derives its Avro schema and
JSON Schema (streams/schema_derive.py); Protobuf takes generated message
classes. The registry is reached over HTTP (`schema_registry_url`, or
$STREAMS_SCHEMA_REGISTRY): `streams broker --http` serves one. A record not in
the wire format, or naming an id the registry does not know, fails to decode
with the reason, and the app's `on_decode_error` policy applies.
"""

from __future__ import annotations

import base64
import enum
import io
import json
import os
import struct
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import date
from typing import Any

import fastavro
import jsonschema
import orjson
from google.protobuf import descriptor_pb2

from streams.model import Record
from streams.schema_derive import avro_schema, json_schema

FORMATS = ("avro", "protobuf", "json_schema")
REGISTRY_ENV = "STREAMS_SCHEMA_REGISTRY"
MAGIC = 0
HEADER = struct.Struct(">bI")
TIMEOUT_S = 10.0
CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryError(Exception):
    """The registry refused or could not be reached; `status` and `error_code` as it answered."""

    def __init__(self, message: str, status: int | None = None, error_code: int | None = None):
        super().__init__(message)
        self.status, self.error_code = status, error_code


class RegistryClient:
    """A small blocking client of the Confluent Schema Registry API, with caches.

    Blocking, because codecs are: each call happens once per schema (register)
    or once per schema id (fetch), then the answer is cached."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._ids: dict[tuple[str, str, str], int] = {}
        self._schemas: dict[int, tuple[str, str]] = {}
        self._lock = threading.Lock()

    def register(self, subject: str, schema_type: str, text: str) -> int:
        key = (subject, schema_type, text)
        with self._lock:
            if key not in self._ids:
                path = f"/subjects/{urllib.parse.quote(subject, safe='')}/versions"
                answer = self.call("POST", path, {"schema": text, "schemaType": schema_type})
                self._ids[key] = int(answer["id"])
                self._schemas.setdefault(self._ids[key], (schema_type, text))
            return self._ids[key]

    def schema(self, schema_id: int) -> tuple[str, str]:
        """(schema type, text) of an id."""
        with self._lock:
            if schema_id not in self._schemas:
                answer = self.call("GET", f"/schemas/ids/{schema_id}", None)
                self._schemas[schema_id] = (answer.get("schemaType", "AVRO"), answer["schema"])
            return self._schemas[schema_id]

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else orjson.dumps(body)
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", CONTENT_TYPE)
        request.add_header("Accept", CONTENT_TYPE)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read())
            except ValueError:
                detail = {}
            raise RegistryError(
                f"schema registry {self.url}: {method} {path}: {exc.code} "
                f"{detail.get('message', exc.reason)}",
                exc.code,
                detail.get("error_code"),
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            raise RegistryError(f"schema registry {self.url} unreachable: {exc}") from None


_clients: dict[str, RegistryClient] = {}


def registry_client(url: str | None) -> RegistryClient:
    url = url or os.environ.get(REGISTRY_ENV)
    if not url:
        raise RegistryError(
            "a schema codec needs a registry: App(schema_registry_url=...) or "
            f"${REGISTRY_ENV} (streams broker --http serves one)"
        )
    if url not in _clients:
        _clients[url] = RegistryClient(url)
    return _clients[url]


def split(data: bytes) -> tuple[int, memoryview]:
    """(schema id, payload) of a record in the wire format; ValueError if it is not."""
    if len(data) < HEADER.size or data[0] != MAGIC:
        raise ValueError(
            "not in the schema registry's wire format (magic byte 0, then a 4-byte schema id)"
        )
    _, schema_id = HEADER.unpack_from(data)
    return schema_id, memoryview(data)[HEADER.size :]


class SchemaCodec:
    """Base of the three: registration on first use, the header both ways."""

    schema_type = ""

    def __init__(self, subject: str, registry: Callable[[], RegistryClient]) -> None:
        self.subject = subject
        self._registry = registry
        self._id: int | None = None

    def writer_schema(self) -> str:
        raise NotImplementedError

    def schema_id(self) -> int:
        if self._id is None:
            self._id = self._registry().register(
                self.subject, self.schema_type, self.writer_schema()
            )
        return self._id

    def frame(self, payload: bytes) -> bytes:
        return HEADER.pack(MAGIC, self.schema_id()) + payload

    def writer(self, schema_id: int) -> tuple[str, str]:
        try:
            return self._registry().schema(schema_id)
        except RegistryError as exc:
            raise ValueError(f"schema id {schema_id}: {exc}") from None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} subject={self.subject}>"


class AvroCodec(SchemaCodec):
    schema_type = "AVRO"

    def __init__(self, model: type[Record], subject: str, registry: Callable[[], RegistryClient]):
        super().__init__(subject, registry)
        self._schema = avro_schema(model)
        self._parsed = fastavro.parse_schema(self._schema)
        self._name = _avro_full_name(self._schema)
        self._writers: dict[int, tuple[Any, Any]] = {}  # id -> (writer, reader or None)

    def writer_schema(self) -> str:
        return json.dumps(self._schema)

    def dumps(self, obj: Any) -> bytes:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, self._parsed, _plain(obj))
        return self.frame(out.getvalue())

    def loads(self, data: bytes) -> Any:
        schema_id, payload = split(data)
        known = self._writers.get(schema_id)
        if known is None:
            schema_type, text = self.writer(schema_id)
            if schema_type != "AVRO":
                raise ValueError(f"schema id {schema_id} is {schema_type}, not AVRO")
            writer_json = json.loads(text)
            writer = fastavro.parse_schema(writer_json)
            # Avro resolves a record to the reader's schema only under the same name; a
            # record named otherwise is read as written, and the Record takes its fields
            same = _avro_full_name(writer_json) == self._name
            known = self._writers[schema_id] = (writer, self._parsed if same else None)
        writer, reader = known
        return fastavro.schemaless_reader(io.BytesIO(payload), writer, reader)


class JsonSchemaCodec(SchemaCodec):
    schema_type = "JSON"

    def __init__(self, model: type[Record], subject: str, registry: Callable[[], RegistryClient]):
        super().__init__(subject, registry)
        self._schema = json_schema(model)
        self._validator = jsonschema.Draft7Validator(self._schema)

    def writer_schema(self) -> str:
        return json.dumps(self._schema)

    def dumps(self, obj: Any) -> bytes:
        document = orjson.loads(orjson.dumps(_plain(obj), default=_json_default))
        error = jsonschema.exceptions.best_match(self._validator.iter_errors(document))
        if error is not None:
            raise TypeError(f"the value does not match the subject's JSON schema: {error.message}")
        return self.frame(orjson.dumps(document))

    def loads(self, data: bytes) -> Any:
        _, payload = split(data)
        return orjson.loads(payload)


class ProtobufCodec(SchemaCodec):
    schema_type = "PROTOBUF"

    def __init__(self, message_class: type, subject: str, registry: Callable[[], RegistryClient]):
        descriptor = getattr(message_class, "DESCRIPTOR", None)
        if descriptor is None or not hasattr(message_class, "FromString"):
            raise TypeError(
                f"the protobuf codec takes generated message classes, got {message_class!r}"
            )
        super().__init__(subject, registry)
        self._class = message_class
        self._indexes = _message_indexes(descriptor)

    def writer_schema(self) -> str:
        file = descriptor_pb2.FileDescriptorProto()
        self._class.DESCRIPTOR.file.CopyToProto(file)
        return base64.standard_b64encode(file.SerializeToString()).decode("ascii")

    def dumps(self, obj: Any) -> bytes:
        if not isinstance(obj, self._class):
            raise TypeError(f"expected a {self._class.__name__} message, got {type(obj).__name__}")
        return self.frame(self._indexes + obj.SerializeToString())

    def loads(self, data: bytes) -> Any:
        _, payload = split(data)
        rest = _skip_indexes(bytes(payload))
        return self._class.FromString(rest)


def _message_indexes(descriptor: Any) -> bytes:
    """Confluent's index path of a message in its file: [0] (the first top-level
    message) is written as a single 0 byte; otherwise a count and the indexes, as
    zig-zag varints."""
    path = []
    while descriptor is not None:
        parent = descriptor.containing_type
        siblings = (
            parent.nested_types
            if parent is not None
            else list(descriptor.file.message_types_by_name.values())
        )
        path.append([s.full_name for s in siblings].index(descriptor.full_name))
        descriptor = parent
    path.reverse()
    if path == [0]:
        return b"\x00"
    return b"".join(_zigzag(n) for n in [len(path), *path])


def _zigzag(n: int) -> bytes:
    value = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _skip_indexes(data: bytes) -> bytes:
    count, position = _read_zigzag(data, 0)
    for _ in range(count):
        _, position = _read_zigzag(data, position)
    return data[position:]


def _read_zigzag(data: bytes, position: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if position >= len(data):
            raise ValueError("a Protobuf record's message indexes are cut short")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (value >> 1) ^ -(value & 1), position
        shift += 7


def _avro_full_name(schema: Any) -> str | None:
    if not isinstance(schema, dict) or "name" not in schema:
        return None
    name, namespace = schema["name"], schema.get("namespace")
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _plain(obj: Any) -> Any:
    """Records as dicts and Enum members as their values, all the way down."""
    if isinstance(obj, Record):
        obj = obj.to_dict()
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [_plain(v) for v in obj]
    if isinstance(obj, enum.Enum):
        return obj.value
    return obj


def _json_default(obj: Any) -> Any:
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, bytes):
        return base64.b64encode(obj).decode()
    raise TypeError(f"cannot serialize {type(obj).__name__} to JSON")


def schema_codec(
    fmt: str, typ: Any, subject: str, registry: Callable[[], RegistryClient]
) -> SchemaCodec:
    """The codec of `fmt` for values (or keys) of `typ` under `subject`."""
    if fmt == "protobuf":
        return ProtobufCodec(typ, subject, registry)
    if not (isinstance(typ, type) and issubclass(typ, Record)):
        raise TypeError(f"the {fmt} codec derives its schema from a streams.Record, got {typ!r}")
    if fmt == "avro":
        return AvroCodec(typ, subject, registry)
    return JsonSchemaCodec(typ, subject, registry)
