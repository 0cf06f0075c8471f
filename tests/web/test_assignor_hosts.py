"""The group carries each worker's web URL: in its subscription, and back to every
member as the partition -> owner map (what table lookups route by)."""

from __future__ import annotations

from runtime.assignor import (
    StreamsAssignor,
    decode_hosts,
    decode_numbers,
    decode_web,
    encode_numbers,
)
from runtime.client.consumer_protocol import Subscription


def test_every_member_learns_every_partitions_owner() -> None:
    assignor = StreamsAssignor(4)
    assignor.web_url = "http://a:1"
    members = {
        "a": Subscription(("t",), assignor.metadata(["t"])),
        "b": Subscription(("t",), encode_numbers([], [], web="http://b:2")),
        "c": Subscription(("t",), encode_numbers([], [])),  # no web server
    }
    assert decode_web(members["a"].user_data) == "http://a:1"
    result = assignor.assign({"t": [0, 1, 2, 3]}, members)
    owners = {p: m for m, a in result.items() for p in decode_numbers(a.user_data).active}
    hosts = decode_hosts(result["c"].user_data)
    assert all(decode_hosts(a.user_data) == hosts for a in result.values())
    webs = {"a": "http://a:1", "b": "http://b:2"}
    assert hosts == {p: webs[m] for p, m in owners.items() if m in webs}
    assert set(owners.values()) == {"a", "b", "c"}  # c owns partitions nobody can route to


def test_unreadable_user_data_has_no_hosts() -> None:
    for data in (None, b"", b"not json", b"[1, 2]", b'{"hosts": [1]}', b'{"web": 7}'):
        assert decode_hosts(data) == {}
        assert decode_web(data) is None
    assert decode_hosts(b'{"hosts": {"0": "http://x:1", "one": "http://y:2", "2": 3}}') == {
        0: "http://x:1"
    }
