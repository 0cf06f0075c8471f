"""The ACL file (runtime/security/acl_file.py): round trip, refusals, atomic replacement."""

from __future__ import annotations

import asyncio
import json

import pytest

from runtime.broker.authorize import AclStore
from runtime.security import acl_file
from runtime.security.acls import Acl, AclFilter, Operation, PatternType, Permission, ResourceType
from runtime.security.errors import AclFileError

ACLS = [
    Acl(
        ResourceType.TOPIC,
        "orders",
        PatternType.LITERAL,
        "User:alice",
        "*",
        Operation.READ,
        Permission.ALLOW,
    ),
    Acl(
        ResourceType.GROUP,
        "app-",
        PatternType.PREFIXED,
        "User:*",
        "10.0.0.1",
        Operation.ALL,
        Permission.DENY,
    ),
]


def test_round_trip_and_missing_file(tmp_path):
    path = tmp_path / acl_file.FILE_NAME
    assert acl_file.load(path) == []
    acl_file.save(path, ACLS)
    assert sorted(acl_file.load(path)) == sorted(ACLS)
    assert json.loads(path.read_text())["acls"][0]["operation"] in ("READ", "ALL")
    assert path.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{", "not JSON"),
        ('{"format": "other"}', "not a streams ACL file"),
        ('{"format": "streams-acls", "version": 9, "acls": []}', "version 9"),
        ('{"format": "streams-acls", "version": 1, "acls": {}}', "not a list"),
        ('{"format": "streams-acls", "version": 1, "acls": [{"x": 1}]}', "entry 0"),
    ],
)
def test_a_file_that_does_not_check_out_is_refused_whole(tmp_path, text, reason):
    path = tmp_path / acl_file.FILE_NAME
    path.write_text(text)
    with pytest.raises(AclFileError, match=reason):
        acl_file.load(path)


def test_an_entry_with_an_unknown_name_or_invalid_acl_names_the_entry(tmp_path):
    path = tmp_path / acl_file.FILE_NAME
    acl_file.save(path, ACLS)
    document = json.loads(path.read_text())
    document["acls"][1]["operation"] = "FLY"
    path.write_text(json.dumps(document))
    with pytest.raises(AclFileError, match=r"entry 1: operation 'FLY' unknown"):
        acl_file.load(path)
    document["acls"][1]["operation"] = "READ"
    document["acls"][1]["principal"] = "alice"
    path.write_text(json.dumps(document))
    with pytest.raises(AclFileError, match="entry 1: principal 'alice'"):
        acl_file.load(path)


def test_a_temporary_file_left_by_a_crash_is_ignored_then_replaced(tmp_path):
    path = tmp_path / acl_file.FILE_NAME
    acl_file.save(path, ACLS[:1])
    (tmp_path / f".{acl_file.FILE_NAME}.tmp").write_text("torn")
    assert acl_file.load(path) == ACLS[:1]
    acl_file.save(path, ACLS)
    assert len(acl_file.load(path)) == 2
    assert not (tmp_path / f".{acl_file.FILE_NAME}.tmp").exists()


def test_store_writes_the_file_before_deciding_by_it(tmp_path):
    async def run() -> None:
        store = AclStore.open(tmp_path, allow_everyone_if_no_acl=False)
        await store.add(ACLS)
        assert sorted(acl_file.load(tmp_path / acl_file.FILE_NAME)) == sorted(ACLS)
        again = AclStore.open(tmp_path, allow_everyone_if_no_acl=False)
        assert again.authorizer.acls == store.authorizer.acls
        removed = await again.remove([AclFilter(resource_type=ResourceType.GROUP)])
        assert removed == [[ACLS[1]]]
        assert acl_file.load(tmp_path / acl_file.FILE_NAME) == ACLS[:1]

    asyncio.run(run())


def test_store_keeps_its_acls_when_the_file_cannot_be_written(tmp_path):
    async def run() -> None:
        store = AclStore.open(tmp_path, allow_everyone_if_no_acl=False)
        await store.add(ACLS[:1])
        # a directory where the file goes: the rename over it fails, also for root
        (tmp_path / acl_file.FILE_NAME).unlink()
        (tmp_path / acl_file.FILE_NAME).mkdir()
        with pytest.raises(AclFileError, match="cannot write"):
            await store.add(ACLS[1:])
        assert store.authorizer.acls == frozenset(ACLS[:1])

    asyncio.run(run())
