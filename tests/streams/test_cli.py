"""The streams command, in process through click's runner."""

from __future__ import annotations

from click.testing import CliRunner

from streams.cli import cli


def invoke(*args: str):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result


def test_send_then_tail_and_describe(tmp_path):
    data = str(tmp_path)
    r = invoke(
        "topics",
        "--data",
        data,
        "create",
        "greetings",
        "--partitions",
        "3",
        "--config",
        "retention.ms=60000",
    )
    assert r.exit_code == 0, r.output
    assert "created greetings partitions=3" in r.output
    for i in range(4):
        r = invoke("send", "--data", data, "greetings", f"hello {i}", "--key", "k1")
        assert r.exit_code == 0, r.output
    partition = r.output.split("[")[1].split("]")[0]
    assert r.output.strip() == f"greetings[{partition}]@3"

    r = invoke("tail", "--data", data, "greetings", "--from-beginning", "--no-follow")
    assert r.exit_code == 0, r.output
    assert r.stderr.startswith("# greetings partitions=0,1,2 from=beginning")  # the header
    lines = r.stdout.strip().splitlines()
    assert [line.split("\t")[-1] for line in lines] == [f"hello {i}" for i in range(4)]
    assert all(line.split("\t")[3] == "k1" for line in lines)

    r = invoke("topics", "--data", data, "describe", "greetings")
    assert r.exit_code == 0, r.output
    assert "retention.ms=60000" in r.output
    assert f"  {partition}\t0\t4" in r.output

    r = invoke("topics", "--data", data)
    assert "greetings\tpartitions=3\tcleanup.policy=delete" in r.output


def test_bad_topic_name_and_unknown_topic_are_clear_errors(tmp_path):
    r = invoke("send", "--data", str(tmp_path), "no spaces allowed", "x")
    assert r.exit_code == 1
    assert "no spaces allowed" in r.output
    r = invoke("tail", "--data", str(tmp_path), "missing", "--no-follow")
    assert r.exit_code == 1
    assert "unknown topic 'missing'" in r.output


def test_tables_and_agents_list_the_app(monkeypatch):
    monkeypatch.syspath_prepend(str(__import__("pathlib").Path(__file__).parent / "apps"))
    r = invoke("-A", "count_app", "tables")
    assert r.exit_code == 0, r.output
    assert "counts\ttable\tchangelog=counter-counts-changelog" in r.output
    r = invoke("-A", "count_app", "agents")
    assert "count\ttopic=events\tconcurrency=1" in r.output


def test_missing_app_is_a_usage_error():
    r = CliRunner().invoke(cli, ["-A", "no_such_module_here", "agents"])
    assert r.exit_code == 2
    assert "no_such_module_here" in r.output


def test_groups_lists_committed_offsets_and_lag(tmp_path):
    from runtime.log.manager import Log
    from runtime.log.offsets import OffsetStore
    from runtime.types import TopicPartition

    data = str(tmp_path)
    for i in range(5):
        assert invoke("send", "--data", data, "orders", f"o{i}", "--partition", "0").exit_code == 0
    with Log.open(tmp_path / "log") as log:
        OffsetStore(log).commit("billing", {TopicPartition("orders", 0): (3, "")})
    r = invoke("groups", "--data", data)
    assert r.exit_code == 0, r.output
    assert "billing\tstate=Empty\tmembers=0" in r.output
    assert "  orders\t0\t3\t5\t2" in r.output


def test_worker_refuses_an_unknown_processing_guarantee():
    r = CliRunner().invoke(
        cli, ["worker", "--processing-guarantee", "twice"], env={"STREAMS_WORKER_NAME": "w"}
    )
    assert r.exit_code == 2
    assert "'twice' is not one of 'at_least_once', 'exactly_once'" in r.output
    r = CliRunner().invoke(cli, ["worker"], env={"STREAMS_PROCESSING_GUARANTEE": "once"})
    assert r.exit_code == 2 and "'once' is not one of" in r.output
