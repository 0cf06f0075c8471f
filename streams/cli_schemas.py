"""`streams schemas`: the schema registry from the command line (a broker's --http one,
or any Confluent-API registry: --registry URL or $STREAMS_SCHEMA_REGISTRY).

    streams schemas list
    streams schemas show SUBJECT [--version N|latest]
    streams schemas register SUBJECT FILE [--type AVRO|PROTOBUF|JSON]
    streams schemas check SUBJECT FILE [--type ...]      exit 1 when incompatible
    streams schemas delete SUBJECT [--version N] [--permanent]
"""

from __future__ import annotations

import json
import sys
import urllib.parse
from pathlib import Path

import click

from streams.schema_codecs import REGISTRY_ENV, RegistryClient, RegistryError

registry_option = click.option(
    "--registry",
    "url",
    envvar=REGISTRY_ENV,
    required=True,
    help=f"the registry's URL (or ${REGISTRY_ENV}), e.g. http://127.0.0.1:8082",
)
type_option = click.option(
    "--type",
    "schema_type",
    type=click.Choice(["AVRO", "PROTOBUF", "JSON"], case_sensitive=False),
    default=None,
    help="schema type (default: from the file's extension: .avsc, .proto, .json)",
)


def _subject(subject: str) -> str:
    return urllib.parse.quote(subject, safe="")


def _calling(client: RegistryClient, method: str, path: str, body: dict | None = None):
    try:
        return client.call(method, path, body)
    except RegistryError as exc:
        raise click.ClickException(str(exc)) from None


def _schema_body(file: str, schema_type: str | None) -> dict:
    path = Path(file)
    try:
        text = sys.stdin.read() if file == "-" else path.read_text(encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot read {file}: {exc.strerror or exc}") from None
    if schema_type is None:
        schema_type = {".proto": "PROTOBUF", ".json": "JSON"}.get(path.suffix.lower(), "AVRO")
    return {"schema": text, "schemaType": schema_type.upper()}


@click.group()
def schemas() -> None:
    """Subjects and schemas of a schema registry (Avro, Protobuf, JSON Schema)."""


@schemas.command("list")
@registry_option
def list_subjects(url: str) -> None:
    """Every subject with its latest version, schema id and type."""
    client = RegistryClient(url)
    for subject in _calling(client, "GET", "/subjects"):
        latest = _calling(client, "GET", f"/subjects/{_subject(subject)}/versions/latest")
        kind = latest.get("schemaType", "AVRO")
        click.echo(f"{subject}\tversion={latest['version']}\tid={latest['id']}\t{kind}")


@schemas.command("show")
@click.argument("subject")
@click.option("--version", default="latest", show_default=True)
@registry_option
def show(subject: str, version: str, url: str) -> None:
    """A version's schema (JSON schemas pretty-printed)."""
    found = _calling(
        RegistryClient(url), "GET", f"/subjects/{_subject(subject)}/versions/{version}"
    )
    kind = found.get("schemaType", "AVRO")
    click.echo(f"# {subject} version {found['version']} id {found['id']} {kind}", err=True)
    text = found["schema"]
    if kind in ("AVRO", "JSON"):
        text = json.dumps(json.loads(text), indent=2)
    click.echo(text)


@schemas.command("register")
@click.argument("subject")
@click.argument("file")
@type_option
@registry_option
def register(subject: str, file: str, schema_type: str | None, url: str) -> None:
    """Register FILE's schema under SUBJECT (- reads stdin); prints its id."""
    body = _schema_body(file, schema_type)
    answer = _calling(RegistryClient(url), "POST", f"/subjects/{_subject(subject)}/versions", body)
    click.echo(answer["id"])


@schemas.command("check")
@click.argument("subject")
@click.argument("file")
@click.option("--version", default=None, help="check against this version only")
@type_option
@registry_option
def check(subject: str, file: str, version: str | None, schema_type: str | None, url: str) -> None:
    """Whether FILE's schema keeps SUBJECT's compatibility level; exit 1 if not."""
    path = f"/compatibility/subjects/{_subject(subject)}/versions"
    if version is not None:
        path += f"/{version}"
    answer = _calling(
        RegistryClient(url), "POST", path + "?verbose=true", _schema_body(file, schema_type)
    )
    if answer["is_compatible"]:
        click.echo("compatible")
        return
    click.echo("incompatible:", err=True)
    for message in answer.get("messages", []):
        click.echo(f"  {message}", err=True)
    sys.exit(1)


@schemas.command("delete")
@click.argument("subject")
@click.option("--version", default=None, help="one version (default: the whole subject)")
@click.option("--permanent", is_flag=True, help="for good (after a first, soft delete)")
@registry_option
def delete(subject: str, version: str | None, permanent: bool, url: str) -> None:
    """Delete a subject or one of its versions (soft, unless --permanent)."""
    path = f"/subjects/{_subject(subject)}"
    if version is not None:
        path += f"/versions/{version}"
    if permanent:
        path += "?permanent=true"
    answer = _calling(RegistryClient(url), "DELETE", path)
    click.echo(f"deleted {subject} versions {answer}", err=True)
