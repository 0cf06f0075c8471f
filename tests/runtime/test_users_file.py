"""The users file: salted credentials only, atomic replacement, refused when malformed."""

from __future__ import annotations

import json
import logging
import os
import stat

import pytest

from runtime.security import users
from runtime.security.errors import UsersFileError
from runtime.security.scram import new_credential


def credentials(password: str) -> dict:
    return {m: new_credential(m, password, 4096) for m in ("SCRAM-SHA-256", "SCRAM-SHA-512")}


def test_round_trip_holds_no_password_and_is_private(tmp_path):
    path = tmp_path / "users.json"
    users.set_user(path, "alice", credentials("correct horse"))
    users.set_user(path, "bob", credentials("battery staple"))
    text = path.read_text()
    assert "correct horse" not in text and "battery staple" not in text
    loaded = users.load(path)
    assert sorted(loaded) == ["alice", "bob"]
    assert loaded["alice"]["SCRAM-SHA-512"].iterations == 4096
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["users.json", "users.json.lock"]  # no temporary left
    assert users.remove_user(path, "alice")
    assert not users.remove_user(path, "alice")
    assert sorted(users.load(path)) == ["bob"]


def test_a_temporary_file_left_by_a_crash_is_replaced(tmp_path):
    path = tmp_path / "users.json"
    (tmp_path / ".users.json.tmp").write_text("half written")
    users.set_user(path, "alice", credentials("pw"))
    assert sorted(users.load(path)) == ["alice"]
    assert not (tmp_path / ".users.json.tmp").exists()


def good_document(tmp_path) -> dict:
    path = tmp_path / "good.json"
    users.set_user(path, "alice", credentials("pw"))
    return json.loads(path.read_text())


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d.update(format="other"), "not a streams users file"),
        (lambda d: d.update(version=2), "version 2 unknown"),
        (lambda d: d["users"]["alice"]["SCRAM-SHA-256"].update(iterations=1000), "iterations"),
        (lambda d: d["users"]["alice"]["SCRAM-SHA-256"].update(salt="!!"), "salt"),
        (lambda d: d["users"]["alice"]["SCRAM-SHA-256"].update(stored_key="AAAA"), "32 bytes"),
        (lambda d: d["users"]["alice"].update({"MD5": {}}), "unknown mechanism"),
        (lambda d: d["users"].update({"bob": {}}), "no credentials"),
        (lambda d: d["users"].update({"a\nb": d["users"]["alice"]}), "printable"),
    ],
)
def test_malformed_files_are_refused_whole(tmp_path, change, reason):
    document = good_document(tmp_path)
    change(document)
    path = tmp_path / "users.json"
    path.write_text(json.dumps(document))
    with pytest.raises(UsersFileError, match=reason) as info:
        users.load(path)
    assert document["users"]["alice"]["SCRAM-SHA-512"]["stored_key"] not in str(info.value)


def test_the_brokers_view_follows_changes_and_survives_a_bad_one(tmp_path, caplog):
    path = tmp_path / "users.json"
    users.set_user(path, "alice", credentials("pw"))
    view = users.UsersFile(path)
    assert view.credential("alice", "SCRAM-SHA-256") is not None
    assert view.credential("bob", "SCRAM-SHA-256") is None
    users.set_user(path, "bob", credentials("pw2"))
    assert view.credential("bob", "SCRAM-SHA-256") is not None
    path.write_text("{not json")
    with caplog.at_level(logging.WARNING):
        assert sorted(view.users) == ["alice", "bob"]
        assert sorted(view.users) == ["alice", "bob"]
    assert len([r for r in caplog.records if "keeping the users" in r.message]) == 1


def test_the_broker_refuses_a_missing_or_bad_file_at_start(tmp_path):
    with pytest.raises(UsersFileError, match="does not exist"):
        users.UsersFile(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("[]")
    with pytest.raises(UsersFileError, match="not a streams users file"):
        users.UsersFile(tmp_path / "bad.json")


def test_a_file_others_can_read_is_warned_about(tmp_path, caplog):
    path = tmp_path / "users.json"
    users.set_user(path, "alice", credentials("pw"))
    os.chmod(path, 0o644)
    with caplog.at_level(logging.WARNING):
        users.UsersFile(path)
    assert any("readable by others" in r.message for r in caplog.records)
