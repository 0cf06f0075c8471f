"""The embedded log, shared: while a log:// worker runs, `streams tail` follows
its output topic, `streams send` feeds its input topic (and the worker
processes it), kcat lists and consumes its topics; the address the worker
records is gone after a clean stop and ignored after a crash."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from broker_process import free_port
from child_process import REPO
from click.testing import CliRunner
from kcat_runner import kcat
from waiting import wait_until

from runtime.errors import DataDirLockedError
from runtime.kafka_transport import KafkaTransport
from runtime.log.manager import Log
from runtime.shared_log import ADDRESS_FILE, SharedLog, live_address, open_shared
from runtime.transport import EmbeddedTransport
from runtime.types import TopicPartition
from streams.cli import cli

APPS = Path(__file__).parent / "apps"
TAIL_TIMEOUT_S = 60


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def start_relay(worker_process, data: Path):
    worker = worker_process("relay_app", APPS, "-l", "info", env={"RELAY_APP_DATA": str(data)})
    worker.wait_log("worker started app=relay")
    address = wait_until(
        lambda: live_address(data / "log"), timeout_s=10, what="the worker's recorded address"
    )
    assert address.pid == worker.pid
    return worker, address


@pytest.mark.slow
def test_tail_follows_and_send_feeds_a_running_worker(tmp_path, worker_process):
    data = tmp_path / "data"
    worker, _ = start_relay(worker_process, data)
    tail = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streams",
            "tail",
            "shouts",
            "--data",
            str(data),
            "--from-beginning",
            "-n",
            "2",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for word, key in (("hello", '"w1"'), ("world", '"w2"')):
            r = invoke("send", "--data", str(data), "words", word, "--key", key)
            assert r.exit_code == 0, r.output
            assert r.output.startswith("words[")
        out, err = tail.communicate(timeout=TAIL_TIMEOUT_S)
    finally:
        if tail.poll() is None:
            tail.kill()
            tail.communicate()
    assert tail.returncode == 0, err
    rows = [line.split("\t") for line in out.splitlines() if line.count("\t") >= 4]
    assert sorted((row[3], row[4]) for row in rows) == [('"w1"', "HELLO"), ('"w2"', "WORLD")]

    r = invoke("topics", "--data", str(data))
    assert r.exit_code == 0, r.output
    assert "words\tpartitions=2" in r.output and "shouts\tpartitions=2" in r.output
    assert "locked" not in worker.text()
    assert worker.stop() == 0, worker.text()
    assert not (data / "log" / ADDRESS_FILE).exists()  # removed on a clean stop
    # the worker committed what it processed, and the log is its own again
    r = invoke("groups", "relay", "--data", str(data))
    assert r.exit_code == 0, r.output
    lag = [line.split("\t")[-1] for line in r.output.splitlines() if line.startswith("  words")]
    assert lag and all(x == "0" for x in lag), r.output


@pytest.mark.slow
def test_kcat_lists_produces_and_consumes_a_running_worker(tmp_path, worker_process):
    data = tmp_path / "data"
    worker, address = start_relay(worker_process, data)
    bootstrap = f"{address.host}:{address.port}"
    metadata = json.loads(kcat("-b", bootstrap, "-L", "-J"))
    names = {t["topic"] for t in metadata["topics"]}
    assert {"words", "shouts"} <= names
    kcat("-b", bootstrap, "-P", "-t", "words", "-K", ":", stdin='"k1":kcat\n"k2":cat\n')
    out = kcat(
        "-b", bootstrap, "-C", "-t", "shouts", "-o", "beginning", "-c", "2", "-q",
        "-f", "%k=%s\\n", timeout_s=TAIL_TIMEOUT_S,
    )  # fmt: skip
    assert sorted(out.split()) == ['"k1"=KCAT', '"k2"=CAT']
    assert worker.stop() == 0, worker.text()


@pytest.mark.slow
def test_a_crashed_workers_address_is_ignored(tmp_path, worker_process):
    data = tmp_path / "data"
    worker, _ = start_relay(worker_process, data)
    assert worker.stop(signal.SIGKILL) == -signal.SIGKILL
    assert (data / "log" / ADDRESS_FILE).exists()  # left behind by the crash
    assert live_address(data / "log") is None
    r = invoke("topics", "--data", str(data))  # opens the log itself
    assert r.exit_code == 0, r.output
    assert "words\tpartitions=2" in r.output


def test_open_shared_reaches_the_owner_and_reports_a_silent_one(tmp_path, monkeypatch):
    monkeypatch.setattr("runtime.shared_log.STARTING_WAIT_S", 0.3)

    async def main() -> None:
        owner = EmbeddedTransport("log://", tmp_path / "log")
        async with SharedLog(owner) as shared:
            await owner.create_topic("t", 1)
            client = await open_shared("log://", data_dir=tmp_path / "log")
            assert isinstance(client, KafkaTransport)
            assert client.url.endswith(f":{shared.address.port}")
            async with client:
                await client.append(TopicPartition("t", 0), _batch())
            assert owner.log.offsets(TopicPartition("t", 0)) == (0, 1)
        assert not (tmp_path / "log" / ADDRESS_FILE).exists()
        await owner.stop()

    asyncio.run(main())
    locked = pytest.raises(DataDirLockedError, match="does not serve it")
    with Log.open(tmp_path / "log"), locked:  # locked and serving nothing
        asyncio.run(open_shared("log://", data_dir=tmp_path / "log"))


def _batch() -> bytes:
    from runtime.log.records import encode_batch

    return encode_batch([(b"k", b"v", 1, ())])


@pytest.mark.slow
def test_send_with_the_apps_codecs_round_trips_and_a_bad_key_stops_nothing(
    tmp_path, worker_process, monkeypatch
):
    monkeypatch.syspath_prepend(str(APPS))
    data = tmp_path / "data"
    worker, _ = start_relay(worker_process, data)
    base = ("--data", str(data), "-A", "relay_app")
    r = invoke("send", "words", "hello", "--key", "r2", *base)  # the command
    assert r.exit_code == 0, r.output
    # raw bytes the app's JSON keys cannot decode: copied aside, the worker goes on
    r = invoke("send", "words", "junk", "--key", "r2", "--key-format", "raw", *base)
    assert r.exit_code == 0, r.output
    assert invoke("send", "words", "after", "--key", "r3", *base).exit_code == 0
    r = CliRunner().invoke(
        cli,
        ["tail", "shouts", *base, "--from-beginning", "-n", "2", "--format", "json"],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert sorted((x["key"], x["value"]) for x in rows) == [("r2", "HELLO"), ("r3", "AFTER")]
    r = invoke("tail", "relay-dead-letters", *base, "--from-beginning", "-n", "1")
    assert r.exit_code == 0, r.output
    assert r.stdout.split("\t")[3:] == ["r2", "junk\n"]
    assert "cannot decode key topic=words" in worker.text()
    # the worker's own group is not reset under it
    r = invoke("groups", "reset-offsets", "relay", "--to-earliest", *base)
    assert r.exit_code == 1 and "stop it first" in r.output
    r = invoke("groups", "relay", *base)
    assert f"committed by the worker running on this log (pid {worker.pid})" in r.stdout
    assert worker.stop() == 0, worker.text()


@pytest.mark.slow
def test_listen_on_a_given_port_or_off(tmp_path, worker_process):
    data = tmp_path / "data"
    port = free_port()
    env = {"RELAY_APP_DATA": str(data)}
    worker = worker_process("relay_app", APPS, "--listen", f"127.0.0.1:{port}", env=env)
    worker.wait_log("worker started app=relay")
    assert live_address(data / "log").port == port
    assert worker.stop() == 0, worker.text()

    worker = worker_process("relay_app", APPS, "--listen", "off", env=env)
    worker.wait_log("worker started app=relay")
    assert not (data / "log" / ADDRESS_FILE).exists()
    r = invoke("topics", "--data", str(data))  # the log is locked and served nowhere
    assert r.exit_code == 1 and "does not serve it" in r.output, r.output
    assert str(worker.pid) in r.output
    assert worker.stop() == 0, worker.text()
    r = CliRunner().invoke(cli, ["worker", "-A", "relay_app", "--listen", "127.0.0.1:port"])
    assert r.exit_code == 2 and "'127.0.0.1:port' is not HOST:PORT" in r.output
