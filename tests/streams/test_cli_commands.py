"""The command line as Kafka and Faust users expect it: help and version,
options on either side of the subcommand, clear errors, send from stdin and
files with headers and formats, tail's filters and formats, topics delete and
alter, groups reset-offsets and delete."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from runtime.log.manager import Log
from runtime.log.offsets import OffsetStore
from runtime.log.records import decode_batches
from runtime.types import TopicPartition
from streams.cli import cli

APPS = Path(__file__).parent / "apps"


def invoke(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def stored(data: Path, topic: str, partition: int = 0) -> list:
    with Log.open(data / "log") as log:
        tp = TopicPartition(topic, partition)
        return decode_batches(log.read(tp, 0, 1 << 20))


def test_help_version_and_a_bad_loglevel_are_one_line_each():
    r = invoke("-h")
    assert r.exit_code == 0 and "Commands:" in r.output and "tail" in r.output
    r = invoke("tail", "-h")
    assert r.exit_code == 0 and "--offset" in r.output and "--format" in r.output
    r = invoke("--version")
    assert r.exit_code == 0 and r.output.startswith("streams, version ")
    loud = (["-l", "loud", "topics"], ["topics", "-l", "loud"], ["worker", "-l", "loud"])
    for args in (*loud, ["broker", "-l", "loud"]):
        r = CliRunner().invoke(cli, args)
        assert r.exit_code == 2, r.output
        assert "Invalid value for '-l'" in r.output and "Traceback" not in r.output


def test_options_after_the_subcommand_and_read_only_commands_create_nothing(tmp_path, monkeypatch):
    data = tmp_path / "data"
    for args in (["tail", "t", "--no-follow"], ["topics"], ["groups"], ["topics", "describe", "t"]):
        r = invoke(*args, "--data", str(data))
        assert r.exit_code == 1, r.output
        assert "no log in" in r.output
    assert not data.exists()
    assert invoke("send", "t", "v", "--data", str(data), "-p", "0").exit_code == 0
    for args in (["--data", str(data), "topics"], ["topics", "--data", str(data)]):
        assert "t\tpartitions=8\tcleanup.policy=delete" in invoke(*args).stdout.splitlines()
    monkeypatch.syspath_prepend(str(APPS))
    r = invoke("tables", "-A", "count_app", "--data", str(data))
    assert r.exit_code == 0, r.output
    assert "counts\ttable\tchangelog=counter-counts-changelog" in r.output
    with socket.socket() as s:  # a broker that is not there: the list, without sizes
        s.bind(("127.0.0.1", 0))
        gone = f"kafka://127.0.0.1:{s.getsockname()[1]}"
    r = invoke("tables", "-A", "count_app", "--broker", gone)
    assert r.exit_code == 0, r.output
    assert r.stdout == "counts\ttable\tchangelog=counter-counts-changelog\n"
    assert "changelog sizes unknown: cannot reach the broker" in r.stderr


def test_an_unreachable_broker_is_a_clear_error_within_seconds():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    began = time.monotonic()
    r = invoke("topics", "--broker", f"kafka://127.0.0.1:{port}")
    assert time.monotonic() - began < 15
    assert r.exit_code == 1
    assert f"connecting to kafka://127.0.0.1:{port}" in r.stderr
    assert "cannot reach the broker" in r.stderr and "Traceback" not in r.output


def test_send_reads_stdin_with_keys_headers_and_a_partition(tmp_path):
    data = str(tmp_path)
    r = invoke(
        "send", "lines", "-", "--data", data, "-p", "1", "-H", "source=cli", "-H", "n=1",
        "--key-separator", ":", input="k1:one\nk2:two\nk3:three\n",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert r.stdout.split() == ["lines[1]@0", "lines[1]@1", "lines[1]@2"]
    records = stored(tmp_path, "lines", 1)
    assert [(x.key, x.value) for x in records] == [
        (b"k1", b"one"), (b"k2", b"two"), (b"k3", b"three"),
    ]  # fmt: skip
    assert records[0].headers == (("source", b"cli"), ("n", b"1"))
    r = invoke("send", "lines", "-", "--data", data, "--key-separator", ":", input="nokey\n")
    assert r.exit_code == 1 and "no key separator" in r.output
    assert invoke("send", "lines", "--data", data).exit_code == 2  # no VALUE, no --file


def test_send_a_file_shows_progress_and_sends_every_line(tmp_path):
    lines = tmp_path / "values.txt"
    lines.write_text("".join(f"v{i}\n" for i in range(1200)))
    r = invoke("send", "bulk", "--file", str(lines), "--data", str(tmp_path), "-p", "0")
    assert r.exit_code == 0, r.output
    assert "sending to bulk" in r.stderr
    assert [x.value for x in stored(tmp_path, "bulk")] == [f"v{i}".encode() for i in range(1200)]


def test_key_formats_and_the_apps_codecs(tmp_path, monkeypatch):
    data = str(tmp_path)
    monkeypatch.syspath_prepend(str(APPS))
    sends = [
        (["--key-format", "json"], "r2", b'"r2"'),
        (["--key-format", "json"], "42", b"42"),
        (["--key-format", "str"], "r2", b"r2"),
        (["--key-format", "raw"], "r2", b"r2"),
        (["-A", "relay_app"], "r2", b'"r2"'),  # the app's keys are JSON
    ]
    for options, key, _ in sends:
        r = invoke("send", "words", "v", "--key", key, "-p", "0", "--data", data, *options)
        assert r.exit_code == 0, r.output
    assert [x.key for x in stored(tmp_path, "words")] == [want for *_, want in sends]
    # count_app: str keys, int values (JSON): a value that is no int is refused, nothing sent
    r = invoke("send", "-A", "count_app", "events", "5", "--key", "k", "--data", data, "-p", "0")
    assert r.exit_code == 0, r.output
    r = invoke("send", "-A", "count_app", "events", "five", "--key", "k", "--data", data)
    assert r.exit_code == 1 and "'five' is not JSON" in r.output
    assert [(x.key, x.value) for x in stored(tmp_path, "events")] == [(b"k", b"5")]


def test_tail_partition_offset_key_and_formats(tmp_path):
    data = str(tmp_path)
    for i in range(6):
        key = f"k{i % 2}"
        args = ("send", "t", f"v{i}", "--key", key, "-p", str(i % 2), "--data", data)
        assert invoke(*args, "-H", f"i={i}").exit_code == 0
    r = invoke("tail", "t", "--data", data, "--partition", "1", "--offset", "beginning",
               "--no-follow")  # fmt: skip
    assert [line.split("\t")[-1] for line in r.stdout.splitlines()] == ["v1", "v3", "v5"]
    r = invoke("tail", "t", "--data", data, "-p", "0", "--offset", "1", "--no-follow")
    assert [line.split("\t")[-1] for line in r.stdout.splitlines()] == ["v2", "v4"]
    r = invoke("tail", "t", "--data", data, "-p", "0", "--offset", "-1", "--no-follow")
    assert [line.split("\t")[-1] for line in r.stdout.splitlines()] == ["v4"]
    r = invoke("tail", "t", "--data", data, "--from-beginning", "--key", "k1", "--no-follow",
               "--format", "json")  # fmt: skip
    rows = [orjson.loads(line) for line in r.stdout.splitlines()]
    assert [(x["partition"], x["key"], x["value"]) for x in rows] == [
        (1, "k1", "v1"), (1, "k1", "v3"), (1, "k1", "v5"),
    ]  # fmt: skip
    assert rows[0]["headers"] == {"i": "1"} and rows[0]["topic"] == "t"
    r = invoke("tail", "t", "--data", data, "-p", "0", "--offset", "beginning", "--no-follow",
               "--format", "raw", "-n", "2")  # fmt: skip
    assert r.stdout_bytes == b"v0\nv2\n"
    assert invoke("tail", "t", "--data", data, "--offset", "later").exit_code == 2
    assert invoke("tail", "t", "--data", data, "-n", "0").exit_code == 2
    assert "no partition 9" in invoke("tail", "t", "--data", data, "-p", "9").output


def test_tail_with_a_group_resumes_where_it_stopped(tmp_path):
    data = str(tmp_path)
    for i in range(3):
        assert invoke("send", "t", f"v{i}", "-p", "0", "--data", data).exit_code == 0
    args = ("tail", "t", "--data", data, "--group", "readers", "--no-follow")
    r = invoke(*args, "--offset", "beginning")
    assert [line.split("\t")[-1] for line in r.stdout.splitlines()] == ["v0", "v1", "v2"]
    assert invoke("send", "t", "v3", "-p", "0", "--data", data).exit_code == 0
    r = invoke(*args, "--offset", "beginning")  # the group's offsets win
    assert [line.split("\t")[-1] for line in r.stdout.splitlines()] == ["v3"]
    r = invoke("groups", "readers", "--data", data)
    assert "  t\t0\t4\t4\t0" in r.stdout


def test_topics_alter_and_delete_on_the_log(tmp_path):
    data = str(tmp_path)
    assert invoke("topics", "create", "t", "--partitions", "2", "--data", data).exit_code == 0
    r = invoke("topics", "alter", "t", "--partitions", "4", "--config", "retention.ms=5000",
               "--data", data)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "altered t partitions=4 retention.ms=5000" in r.stdout
    r = invoke("topics", "describe", "t", "--data", data)
    assert "t\tpartitions=4" in r.stdout and "retention.ms=5000" in r.stdout
    assert invoke("send", "t", "x", "-p", "3", "--data", data).exit_code == 0
    r = invoke("topics", "alter", "t", "--partitions", "3", "--data", data)
    assert r.exit_code == 1 and "can be added, not removed" in r.output
    r = invoke("topics", "alter", "t", "--config", "no.such=1", "--data", data)
    assert r.exit_code == 1 and "unknown topic config 'no.such'" in r.output
    assert invoke("topics", "alter", "t", "--data", data).exit_code == 2
    with Log.open(tmp_path / "log") as log:  # it survives a reopen
        assert log.topic("t").partitions == 4
        assert log.topic("t").config.retention_ms == 5000
    r = invoke("topics", "delete", "__consumer_offsets", "--data", data)
    assert r.exit_code == 1 and "not deleted" in r.output
    r = invoke("topics", "delete", "t", "--data", data)
    assert r.exit_code == 0 and "deleted t" in r.stdout
    assert "t\t" not in invoke("topics", "--data", data).stdout
    assert "unknown topic 't'" in invoke("topics", "delete", "t", "--data", data).output


def _commit(data: Path, group: str, offsets: dict[TopicPartition, int]) -> None:
    with Log.open(data / "log") as log:
        OffsetStore(log).commit(group, {tp: (o, "") for tp, o in offsets.items()})


def _committed(data: Path, group: str) -> dict[TopicPartition, int]:
    with Log.open(data / "log") as log:
        return {tp: c.offset for tp, c in OffsetStore(log).fetch(group).items()}


def test_groups_reset_offsets_and_delete(tmp_path):
    data = str(tmp_path)
    assert invoke("topics", "create", "t", "--partitions", "2", "--data", data).exit_code == 0
    for i in range(10):
        assert invoke("send", "t", f"v{i}", "-p", str(i % 2), "--data", data).exit_code == 0
    t0, t1 = TopicPartition("t", 0), TopicPartition("t", 1)
    _commit(tmp_path, "billing", {t0: 3, t1: 4})
    base = ("groups", "reset-offsets", "billing", "--data", data)
    r = invoke(*base, "--to-earliest", "--dry-run")
    assert r.exit_code == 0, r.output
    assert "t\t0\t3\t0" in r.stdout and "nothing changed" in r.stderr
    assert _committed(tmp_path, "billing") == {t0: 3, t1: 4}
    assert invoke(*base, "--shift-by", "-2").exit_code == 0
    assert _committed(tmp_path, "billing") == {t0: 1, t1: 2}
    assert invoke(*base, "--to-offset", "99").exit_code == 0  # clamped to the end
    assert _committed(tmp_path, "billing") == {t0: 5, t1: 5}
    assert invoke(*base, "--to-earliest", "--topic", "t").exit_code == 0
    assert _committed(tmp_path, "billing")[t0] == 0
    assert invoke(*base, "--to-latest").exit_code == 0
    assert _committed(tmp_path, "billing") == {t0: 5, t1: 5}
    assert invoke(*base, "--to-latest", "--shift-by", "1").exit_code == 2
    assert invoke(*base).exit_code == 2
    r = invoke("groups", "reset-offsets", "new", "--to-earliest", "--data", data)
    assert r.exit_code == 1 and "name a --topic" in r.output
    r = invoke("groups", "delete", "billing", "--data", data)
    assert r.exit_code == 0 and "deleted group billing" in r.stdout
    assert _committed(tmp_path, "billing") == {}
    assert "unknown group" in invoke("groups", "delete", "billing", "--data", data).output


@pytest.mark.parametrize("broker_url", ["kafka"], indirect=True)
def test_a_broker_that_refuses_an_admin_api_is_a_clear_error(broker_url):
    assert (
        invoke("topics", "create", "t", "--partitions", "1", "--broker", broker_url).exit_code == 0
    )
    r = invoke("topics", "alter", "t", "--partitions", "2", "--broker", broker_url)
    if r.exit_code == 0:  # the broker has learnt CreatePartitions
        assert "partitions=2" in r.stdout
    else:
        assert r.exit_code == 1 and "CREATE_PARTITIONS" in r.output, r.output
        assert "Traceback" not in r.output
    assert invoke("send", "t", "v", "--broker", broker_url).exit_code == 0
    r = invoke("tail", "t", "--broker", broker_url, "-g", "g1", "-o", "beginning", "--no-follow")
    assert r.exit_code == 0 and r.stdout.endswith("\tv\n"), r.output
    r = invoke("groups", "delete", "g1", "--broker", broker_url)
    if r.exit_code != 0:  # the broker does not serve DeleteGroups yet
        assert r.exit_code == 1 and "DELETE_GROUPS" in r.output, r.output
