"""`streams users`: add, list and remove round trip; no clear password in the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from runtime.security.scram import password_matches
from runtime.security.users import load
from streams.cli import cli

REPO = Path(__file__).resolve().parents[2]


def invoke(*args: str, stdin: str | None = None):
    return CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)


def test_add_list_remove_round_trip(tmp_path):
    users = str(tmp_path / "users.json")
    r = invoke("users", "add", "alice", "--users", users, "--password-stdin", stdin="s3cret ü\n")
    assert r.exit_code == 0, r.output
    r = invoke("users", "add", "bob", "--users", users, "--mechanism", "SCRAM-SHA-512",
               "--iterations", "4096", stdin="hunter2\nhunter2\n")  # fmt: skip
    assert r.exit_code == 0, r.output  # from the prompt, typed twice
    r = invoke("users", "list", "--users", users)
    assert r.output.splitlines() == [
        "alice\tSCRAM-SHA-256:8192,SCRAM-SHA-512:8192",
        "bob\tSCRAM-SHA-512:4096",
    ]
    text = Path(users).read_text()
    assert "s3cret" not in text and "hunter2" not in text
    for credentials in json.loads(text)["users"].values():
        for credential in credentials.values():
            assert sorted(credential) == ["iterations", "salt", "server_key", "stored_key"]
    stored = load(users)
    assert password_matches("SCRAM-SHA-256", stored["alice"]["SCRAM-SHA-256"], "s3cret ü")
    assert oct(os.stat(users).st_mode & 0o777) == "0o600"
    r = invoke("users", "remove", "alice", "--users", users)
    assert r.exit_code == 0, r.output
    assert invoke("users", "list", "--users", users).output == "bob\tSCRAM-SHA-512:4096\n"
    r = invoke("users", "remove", "alice", "--users", users)
    assert r.exit_code == 1 and "no user 'alice'" in r.output


def test_adding_again_replaces_the_password(tmp_path):
    users = str(tmp_path / "users.json")
    for password in ("first", "second"):
        r = invoke("users", "add", "alice", "--users", users, "--password-stdin",
                   stdin=f"{password}\n")  # fmt: skip
        assert r.exit_code == 0, r.output
    credential = load(users)["alice"]["SCRAM-SHA-512"]
    assert password_matches("SCRAM-SHA-512", credential, "second")
    assert not password_matches("SCRAM-SHA-512", credential, "first")


def test_refused_input(tmp_path):
    users = str(tmp_path / "users.json")
    r = invoke("users", "add", "alice", "--users", users, "--password-stdin", stdin="\n")
    assert r.exit_code == 2 and "empty" in r.output
    r = invoke("users", "add", "bad\tname", "--users", users, "--password-stdin", stdin="x\n")
    assert r.exit_code == 2 and "printable" in r.output
    r = invoke("users", "add", "alice", "--users", users, "--iterations", "100")
    assert r.exit_code == 2
    assert not Path(users).exists()
    Path(users).write_text("not json")
    r = invoke("users", "list", "--users", users)
    assert r.exit_code == 1 and "not JSON" in r.output


def test_the_command_reads_the_password_from_stdin_not_argv(tmp_path):
    """The real `streams` executable, as a script would run it."""
    users = tmp_path / "users.json"
    done = subprocess.run(
        [sys.executable, "-m", "streams", "users", "add", "carol", "--users", str(users),
         "--password-stdin"],
        input="pipe-password\n", cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "pipe-password" not in users.read_text() + done.stderr + done.stdout
    assert password_matches("SCRAM-SHA-256", load(users)["carol"]["SCRAM-SHA-256"], "pipe-password")
