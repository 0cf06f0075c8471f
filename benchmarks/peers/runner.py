"""Running one workload of one system as its own process, and checking it.

Each run gets a fresh app id / consumer group, a fresh directory and fresh
output topics. The process is started with the run's settings in its
environment (BENCH_*), the harness waits for the probe's result file, then
stops the process by its pid (SIGTERM, SIGKILL after STOP_TIMEOUT_S), whatever
happened. The outputs are counted on the broker (or in the log directory for
log://, once the worker has stopped) and the result is checked.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from benchmarks.peers import checks, inputs, latency, spec

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RUN_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 20.0
OUTPUT_WAIT_S = 30.0
INPUT = "events"
SMALL_INPUT = "events-small"  # the slow peers' input: the first events of the same stream


@dataclass(frozen=True, slots=True)
class System:
    name: str
    label: str
    python: Path | None  # None: our own (the harness's) interpreter
    workloads: tuple[str, ...]
    skipped: dict[str, str] = field(default_factory=dict)  # workload -> why not
    small_input: bool = False  # too slow for the full input in a bounded run

    def command(
        self, workload: str, run_dir: Path, bootstrap: str, listen: str = "off"
    ) -> list[str]:
        if self.name.startswith("streams-"):
            broker = (
                f"log://{run_dir / 'log'}"
                if self.name == "streams-log"
                else (f"kafka://{bootstrap}")
            )
            return [
                sys.executable, "-m", "streams", "-A", "benchmarks.peers.streams_app", "worker",
                "--broker", broker, "--data", str(run_dir), "--web", "none",
                "--listen", listen, "-l", "warning",
                "--status-interval", "0",
            ]  # fmt: skip
        if self.python is None:
            return [sys.executable, "-m", f"benchmarks.peers.{self.name}_app"]
        return [str(self.python), str(HERE / f"{self.name}_app.py")]


@dataclass
class Outcome:
    system: str
    workload: str
    events: int
    error: str = ""  # '' when the figures count
    figures: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "workload": self.workload,
            "events": self.events,
            "error": self.error,
            **self.figures,
        }


class AppProcess:
    """One app process, its output in a file; stopped by pid."""

    def __init__(self, command: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("w")
        self.proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            cwd=REPO, env={**os.environ, "PYTHONPATH": "", **env},
        )  # fmt: skip

    def wait_for(self, path: Path, timeout_s: float) -> str:
        """'' once `path` exists, else why not (the process exited, or the timeout)."""
        deadline = time.monotonic() + timeout_s
        while not path.exists():
            if self.proc.poll() is not None and not path.exists():
                return f"exited {self.proc.returncode} before its result: {self.tail()}"
            if time.monotonic() > deadline:
                return f"no result after {timeout_s:.0f} s: {self.tail()}"
            time.sleep(0.05)
        return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def tail(self, lines: int = 4) -> str:
        if not self._log.closed:
            self._log.flush()
        text = self.log_path.read_text(errors="replace").strip().splitlines()
        return " / ".join(line.strip() for line in text[-lines:])


def prepare_log_dir(run_dir: Path, template: Path, app_id: str, workload: str) -> None:
    """A log:// run's log: a copy of the template, plus the join's table changelog."""
    shutil.copytree(template, run_dir / "log")
    if workload == "join":
        inputs.write_log(
            run_dir / "log", {f"{app_id}-users-changelog": (spec.users(), inputs.COMPACT)}
        )


def run_one(
    system: System, workload: str, events: int, bootstrap: str, tmp: Path, template: Path
) -> Outcome:
    app_id = f"peers-{system.name}-{workload}"
    run_dir = tmp / app_id
    run_dir.mkdir(parents=True)
    output = f"{app_id}-out"
    if system.name == "streams-log":
        prepare_log_dir(run_dir, template, app_id, workload)
    else:
        inputs.create_topics(bootstrap, [output])
        if workload == "join" and system.name == "streams-kafka":
            changelog = f"{app_id}-users-changelog"
            inputs.create_topics(bootstrap, [changelog], inputs.COMPACT)
            inputs.produce(bootstrap, changelog, spec.users())
    result_path = run_dir / "result.json"
    env = {
        "BENCH_WORKLOAD": workload,
        "BENCH_APP_ID": app_id,
        "BENCH_BOOTSTRAP": bootstrap,
        "BENCH_INPUT": SMALL_INPUT if system.small_input else INPUT,
        "BENCH_OUTPUT": output,
        "BENCH_EVENTS": str(events),
        "BENCH_RESULT": str(result_path),
        "BENCH_STATE_DIR": str(run_dir / "state"),
        "BENCH_PARTITIONS": str(spec.PARTITIONS),
    }
    outcome = Outcome(system.name, workload, events)
    proc = AppProcess(system.command(workload, run_dir, bootstrap), env, run_dir / "app.log")
    try:
        outcome.error = proc.wait_for(result_path, RUN_TIMEOUT_S)
    finally:
        proc.stop()
    if outcome.error:
        return outcome
    result = orjson.loads(result_path.read_bytes())
    truth = spec.truth(events)
    output_records = None
    if workload in ("stateless", "join"):
        expected = truth.forwarded if workload == "stateless" else truth.events
        if system.name == "streams-log":
            output_records = inputs.log_count(run_dir / "log", output)
        else:
            output_records = inputs.wait_broker_count(bootstrap, output, expected, OUTPUT_WAIT_S)
    outcome.error = checks.check(workload, result, truth, output_records)
    outcome.figures = checks.figures(result)
    return outcome


def run_latency(system: System, bootstrap: str, tmp: Path, rate: int, duration_s: float) -> Outcome:
    """The stateless workload, following its input, at `rate` events/s."""
    app_id = f"peers-{system.name}-latency"
    run_dir = tmp / app_id
    run_dir.mkdir(parents=True)
    topic, output = f"{app_id}-in", f"{app_id}-out"
    listen = "off"
    if system.name == "streams-log":
        inputs.write_log(run_dir / "log", {topic: ((), {}), output: ((), {})})
        listen = f"127.0.0.1:{free_port()}"
        bootstrap = listen  # the worker serves its own log
    else:
        inputs.create_topics(bootstrap, [topic, output])
    env = {
        "BENCH_WORKLOAD": "stateless",
        "BENCH_APP_ID": app_id,
        "BENCH_BOOTSTRAP": bootstrap,
        "BENCH_INPUT": topic,
        "BENCH_OUTPUT": output,
        "BENCH_EVENTS": "0",  # follow the input; never done
        "BENCH_RESULT": str(run_dir / "result.json"),
        "BENCH_STATE_DIR": str(run_dir / "state"),
        "BENCH_PARTITIONS": str(spec.PARTITIONS),
    }
    outcome = Outcome(system.name, "latency", 0)
    command = system.command("stateless", run_dir, bootstrap, listen)
    proc = AppProcess(command, env, run_dir / "app.log")
    try:
        if listen != "off":
            wait_listening(listen, proc)
        outcome.figures, outcome.error = latency.measure(bootstrap, topic, output, rate, duration_s)
        if proc.proc.poll() is not None:
            outcome.error = outcome.error or f"exited {proc.proc.returncode}: {proc.tail()}"
    finally:
        proc.stop()
    if outcome.error and "exited" not in outcome.error:
        outcome.error += f" ({proc.tail(2)})"
    outcome.events = int(outcome.figures.get("outputs", 0))
    return outcome


def wait_listening(address: str, proc: AppProcess) -> None:
    """Until the worker accepts connections on `address` (so clients start clean)."""
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline and proc.proc.poll() is None:
        with socket.socket() as s, contextlib.suppress(OSError):
            s.connect((host, int(port)))
            return
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
