"""`streams schemas` against a broker's registry: register, list, show, check (exit 1
with the reasons when a change breaks compatibility), delete."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from streams.cli import cli

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
V1 = {"type": "record", "name": "Ride", "fields": [{"name": "id", "type": "string"}]}
V2 = {**V1, "fields": [*V1["fields"], {"name": "n", "type": "int", "default": 0}]}
BREAKS = {**V1, "fields": [*V1["fields"], {"name": "n", "type": "int"}]}


def schemas_process(broker, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams", "schemas", *args, "--registry", broker.http],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def schemas(broker, *args: str) -> Result:
    """The same command in this process: a second's start-up saved per call."""
    return CliRunner().invoke(cli, ["schemas", *args, "--registry", broker.http])


def test_register_list_show_check_delete(broker, tmp_path) -> None:
    files = {}
    for name, schema in (("v1", V1), ("v2", V2), ("breaks", BREAKS)):
        files[name] = tmp_path / f"{name}.avsc"
        files[name].write_text(json.dumps(schema))
    registered = schemas_process(broker, "register", "rides-value", str(files["v1"]))
    assert registered.returncode == 0, registered.stderr
    first_id = int(registered.stdout)
    listed = schemas(broker, "list")
    assert listed.stdout.strip() == f"rides-value\tversion=1\tid={first_id}\tAVRO"
    shown = schemas(broker, "show", "rides-value")
    assert json.loads(shown.stdout) == V1
    refused = schemas(broker, "check", "rides-value", str(files["breaks"]))
    assert refused.exit_code == 1 and "a field without a default" in refused.stderr
    assert schemas(broker, "check", "rides-value", str(files["v2"])).stdout.strip() == "compatible"
    conflict = schemas(broker, "register", "rides-value", str(files["breaks"]))
    assert conflict.exit_code != 0 and "409" in conflict.stderr
    deleted = schemas(broker, "delete", "rides-value")
    assert deleted.exit_code == 0 and "[1]" in deleted.stderr
    assert schemas(broker, "list").stdout.strip() == ""
    missing = schemas(broker, "show", "rides-value")
    assert missing.exit_code != 0 and "not found" in missing.stderr


def test_tail_shows_schema_encoded_records_decoded_through_the_registry(broker) -> None:
    from confluent_kafka import Producer
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    with SchemaRegistryClient({"url": broker.http}) as registry:
        serialize = AvroSerializer(registry, json.dumps(V1))
        context = SerializationContext("avro-tail", MessageField.VALUE)
        producer = Producer({"bootstrap.servers": broker.bootstrap, "log_level": 3})
        for i in range(3):
            producer.produce("avro-tail", key=f"k{i}", value=serialize({"id": f"r{i}"}, context))
        assert producer.flush(30) == 0
    args = ["tail", "avro-tail", "--broker", f"kafka://{broker.bootstrap}", "--from-beginning"]
    common = dict(cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    done = subprocess.run(
        [sys.executable, "-m", "streams", *args, "--no-follow", "-f", "json",
         "--registry", broker.http],
        **common,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["value"] for line in done.stdout.splitlines()] == [
        {"id": f"r{i}"} for i in range(3)
    ]
    # without the registry: the bytes as they are (the wire format's zero byte first)
    raw = subprocess.run(
        [sys.executable, "-m", "streams", *args, "--no-follow", "-f", "json"], **common
    )
    values = [json.loads(line)["value"] for line in raw.stdout.splitlines()]
    assert len(values) == 3 and all(isinstance(v, str) and v[0] == "\x00" for v in values)
