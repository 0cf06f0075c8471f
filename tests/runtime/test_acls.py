"""The authorizer's rules (runtime/security/acls.py), one test per rule of its module doc."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.security.acls import (
    CLUSTER_NAME,
    Acl,
    AclFilter,
    Authorizer,
    InvalidAclError,
    Operation,
    PatternType,
    Permission,
    ResourceType,
    check_acl,
)

T, G, C = (
    ResourceType.TOPIC,
    ResourceType.GROUP,
    ResourceType.CLUSTER,
)
Op = Operation
HOST = "10.0.0.7"


def acl(
    name: str,
    operation: Operation,
    *,
    principal: str = "User:alice",
    rtype: ResourceType = T,
    pattern: PatternType = PatternType.LITERAL,
    host: str = "*",
    permission: Permission = Permission.ALLOW,
) -> Acl:
    return Acl(rtype, name, pattern, principal, host, operation, permission)


def allowed(authorizer: Authorizer, op: Operation, name: str, **kw: object) -> bool:
    principal = str(kw.get("principal", "User:alice"))
    rtype = kw.get("rtype", T)
    host = str(kw.get("host", HOST))
    assert isinstance(rtype, ResourceType)
    return authorizer.authorize(principal, host, op, rtype, name)


def test_a_literal_allow_allows_that_operation_on_that_name_only():
    a = Authorizer([acl("orders", Op.WRITE)])
    assert allowed(a, Op.WRITE, "orders")
    assert not allowed(a, Op.READ, "orders")
    assert not allowed(a, Op.WRITE, "orders2")
    assert not allowed(a, Op.WRITE, "orders", principal="User:bob")


def test_no_acl_on_a_resource_follows_allow_everyone_if_no_acl():
    acls = [acl("orders", Op.WRITE)]
    assert not allowed(Authorizer(acls), Op.READ, "payments")
    assert allowed(Authorizer(acls, allow_everyone_if_no_acl=True), Op.READ, "payments")
    # an ACL on the resource, for someone else, is an ACL: no longer open to all
    assert not allowed(Authorizer(acls, allow_everyone_if_no_acl=True), Op.READ, "orders")


def test_deny_wins_over_allow_also_over_all():
    a = Authorizer(
        [
            acl("orders", Op.ALL),
            acl("orders", Op.WRITE, permission=Permission.DENY),
        ]
    )
    assert allowed(a, Op.READ, "orders")
    assert not allowed(a, Op.WRITE, "orders")
    denied_all = Authorizer(
        [acl("orders", Op.READ), acl("*", Op.ALL, permission=Permission.DENY, principal="User:*")]
    )
    assert not allowed(denied_all, Op.READ, "orders")


def test_implied_operations():
    for implying in (Op.READ, Op.WRITE, Op.DELETE, Op.ALTER):
        a = Authorizer([acl("t", implying)])
        assert allowed(a, Op.DESCRIBE, "t"), implying
    a = Authorizer([acl("t", Op.ALTER_CONFIGS)])
    assert allowed(a, Op.DESCRIBE_CONFIGS, "t")
    assert not allowed(Authorizer([acl("t", Op.DESCRIBE)]), Op.READ, "t")
    assert not allowed(Authorizer([acl("t", Op.CREATE)]), Op.DESCRIBE, "t")
    everything = Authorizer([acl("t", Op.ALL)])
    assert all(allowed(everything, op, "t") for op in Op if op.value > Op.ALL)


def test_a_deny_of_read_does_not_deny_describe():
    # implication is of ALLOW only, as in Kafka
    a = Authorizer([acl("t", Op.DESCRIBE), acl("t", Op.READ, permission=Permission.DENY)])
    assert allowed(a, Op.DESCRIBE, "t")
    assert not allowed(a, Op.READ, "t")


def test_prefixed_and_wildcard_patterns():
    a = Authorizer(
        [
            acl("app-", Op.READ, pattern=PatternType.PREFIXED),
            acl("*", Op.DESCRIBE),
        ]
    )
    assert allowed(a, Op.READ, "app-orders")
    assert allowed(a, Op.READ, "app-")
    assert not allowed(a, Op.READ, "ap")
    assert not allowed(a, Op.READ, "other")
    assert allowed(a, Op.DESCRIBE, "other")
    # a PREFIXED "*" is a prefix like any other, not a wildcard
    b = Authorizer([acl("*", Op.READ, pattern=PatternType.PREFIXED)])
    assert not allowed(b, Op.READ, "orders")
    assert allowed(b, Op.READ, "*orders")


def test_everyone_and_host():
    a = Authorizer([acl("t", Op.READ, principal="User:*", host="10.0.0.8")])
    assert allowed(a, Op.READ, "t", principal="User:bob", host="10.0.0.8")
    assert not allowed(a, Op.READ, "t", principal="User:bob", host=HOST)


def test_super_users_bypass_everything_even_deny():
    a = Authorizer(
        [acl("*", Op.ALL, principal="User:*", permission=Permission.DENY)],
        super_users=["User:admin"],
    )
    assert allowed(a, Op.DELETE, "t", principal="User:admin")
    assert allowed(a, Op.ALTER, CLUSTER_NAME, principal="User:admin", rtype=C)
    assert not allowed(a, Op.READ, "t")


def test_resource_types_are_separate():
    a = Authorizer([acl("x", Op.READ, rtype=G)])
    assert allowed(a, Op.READ, "x", rtype=G)
    assert not allowed(a, Op.READ, "x", rtype=T)


def test_authorize_any_topic_for_idempotent_writes():
    a = Authorizer([acl("app-", Op.WRITE, pattern=PatternType.PREFIXED)])
    assert a.authorize_any("User:alice", HOST, Op.WRITE, T)
    assert not a.authorize_any("User:bob", HOST, Op.WRITE, T)
    covered = Authorizer(
        [
            acl("app-x", Op.WRITE),
            acl("app-", Op.WRITE, pattern=PatternType.PREFIXED, permission=Permission.DENY),
        ]
    )
    assert not covered.authorize_any("User:alice", HOST, Op.WRITE, T)
    partly = Authorizer(
        [acl("app-x", Op.WRITE), acl("app-y", Op.WRITE, permission=Permission.DENY)]
    )
    assert partly.authorize_any("User:alice", HOST, Op.WRITE, T)
    assert not Authorizer().authorize_any("User:alice", HOST, Op.WRITE, T)
    assert Authorizer(allow_everyone_if_no_acl=True).authorize_any("User:a", HOST, Op.WRITE, T)


def test_authorized_operations_bit_set():
    a = Authorizer([acl("t", Op.READ), acl("t", Op.ALTER_CONFIGS)])
    bits = a.authorized_operations("User:alice", HOST, T, "t")
    expected = {Op.READ, Op.DESCRIBE, Op.ALTER_CONFIGS, Op.DESCRIBE_CONFIGS}
    assert bits == sum(1 << op for op in expected)
    assert a.authorized_operations("User:bob", HOST, T, "t") == 0
    assert not bits & (1 << 31)  # never the "not asked" bit


def test_invalid_acls_are_refused_with_a_reason():
    bad = [
        (acl("t", Op.ANY), "concrete operation"),
        (acl("t", Op.READ, permission=Permission.ANY), "ALLOW or DENY"),
        (acl("t", Op.READ, pattern=PatternType.MATCH), "LITERAL or PREFIXED"),
        (acl("t", Op.READ, rtype=ResourceType.ANY), "concrete resource type"),
        (acl("other", Op.ALTER, rtype=C), CLUSTER_NAME),
        (acl("t", Op.READ, principal="alice"), "TYPE:NAME"),
        (acl("t", Op.READ, principal="Group:ops"), "User:"),
        (acl("", Op.READ), "resource name"),
        (Acl(T, "t", PatternType.LITERAL, "User:a", "*", 99, Permission.ALLOW), "operation 99"),  # type: ignore[arg-type]
    ]
    for binding, reason in bad:
        with pytest.raises(InvalidAclError, match=reason):
            check_acl(binding)
    with pytest.raises(InvalidAclError):
        Authorizer(super_users=["admin"])


def test_filters_select_as_kafka_does():
    acls = [
        acl("orders", Op.READ),
        acl("app-", Op.WRITE, pattern=PatternType.PREFIXED),
        acl("*", Op.DESCRIBE, principal="User:bob"),
        acl("g", Op.READ, rtype=G),
    ]
    a = Authorizer(acls)
    assert len(a.select(AclFilter())) == 4
    assert a.select(AclFilter(resource_type=G)) == [acls[3]]
    assert a.select(AclFilter(principal="User:bob")) == [acls[2]]
    assert a.select(AclFilter(resource_type=T, pattern_type=PatternType.PREFIXED)) == [acls[1]]
    # MATCH: every ACL that applies to the named resource
    matched = a.select(AclFilter(T, "app-orders", PatternType.MATCH))
    assert set(matched) == {acls[1], acls[2]}
    literal = a.select(AclFilter(T, "orders", PatternType.LITERAL))
    assert literal == [acls[0]]
    with pytest.raises(InvalidAclError):
        AclFilter(ResourceType.UNKNOWN).checked()


def test_replace_swaps_the_whole_set_and_keeps_one_of_duplicates():
    a = Authorizer([acl("t", Op.READ), acl("t", Op.READ)])
    assert len(a.acls) == 1
    a.replace([acl("u", Op.READ)])
    assert not allowed(a, Op.READ, "t")
    assert allowed(a, Op.READ, "u")


_names = st.sampled_from(["a", "ab", "abc", "b", "*"])
_ops = st.sampled_from([Op.READ, Op.WRITE, Op.DESCRIBE, Op.ALL, Op.DELETE])
_acl = st.builds(
    Acl,
    st.just(T),
    _names,
    st.sampled_from([PatternType.LITERAL, PatternType.PREFIXED]),
    st.sampled_from(["User:alice", "User:*", "User:bob"]),
    st.sampled_from(["*", HOST]),
    _ops,
    st.sampled_from([Permission.ALLOW, Permission.DENY]),
)


@given(st.lists(_acl, max_size=6), _names, _ops)
def test_adding_a_deny_never_allows_more(acls, name, op):
    before = Authorizer(acls)
    deny = acl(name, op, principal="User:alice", permission=Permission.DENY)
    after = Authorizer([*acls, deny])
    for resource in ("a", "ab", "abc", "b"):
        for operation in (Op.READ, Op.WRITE, Op.DESCRIBE, Op.DELETE):
            if allowed(after, operation, resource):
                assert allowed(before, operation, resource)


@given(st.lists(_acl, max_size=6), _acl)
def test_adding_an_allow_never_denies_more(acls, extra):
    before = Authorizer(acls)
    after = Authorizer([*acls, dataclasses.replace(extra, permission=Permission.ALLOW)])
    for resource in ("a", "ab", "abc", "b"):
        for operation in (Op.READ, Op.WRITE, Op.DESCRIBE, Op.DELETE):
            if allowed(before, operation, resource):
                assert allowed(after, operation, resource)
