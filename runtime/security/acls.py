"""ACLs and the authorizer: who may do what to which resource (Kafka's rules).

An ACL binds a resource pattern (resource type, name, LITERAL or PREFIXED)
to an entry: principal (`User:NAME`, or `User:*` for everyone), host (the
peer's address, or `*`), operation and permission (ALLOW or DENY). Numbers
are Kafka's (they travel in CreateAcls/DescribeAcls/DeleteAcls).

How `Authorizer.authorize(principal, host, operation, resource)` decides:
1. a super user may do anything;
2. the ACLs that match the resource are those of its type whose pattern is
   the literal name, the literal `*`, or a prefix of the name (PREFIXED);
3. none at all (for anyone): allowed iff `allow_everyone_if_no_acl`;
4. a matching DENY of the operation (or ALL) for the principal (or `User:*`)
   and host (or `*`) denies: deny wins over allow;
5. else a matching ALLOW of the operation, of ALL, or of an operation that
   implies it allows: READ, WRITE, DELETE and ALTER imply DESCRIBE;
   ALTER_CONFIGS implies DESCRIBE_CONFIGS. Otherwise denied.

Invariants:
- The authorizer's ACLs are a set: adding an ACL twice keeps one.
- Every ACL it holds passed `check_acl` (a concrete, valid binding).
- The authorizer is pure: no I/O, no clock; its owner persists the set.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

__all__ = [
    "CLUSTER_NAME",
    "WILDCARD",
    "Acl",
    "AclFilter",
    "Authorizer",
    "InvalidAclError",
    "Operation",
    "PatternType",
    "Permission",
    "ResourceType",
    "check_acl",
]

WILDCARD = "*"
CLUSTER_NAME = "kafka-cluster"  # the one name of the CLUSTER resource
PRINCIPAL_TYPE = "User"
EVERYONE = "User:*"


class ResourceType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5
    DELEGATION_TOKEN = 6
    USER = 7


class Operation(IntEnum):
    UNKNOWN = 0
    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12
    CREATE_TOKENS = 13
    DESCRIBE_TOKENS = 14


class PatternType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    MATCH = 2
    LITERAL = 3
    PREFIXED = 4


class Permission(IntEnum):
    UNKNOWN = 0
    ANY = 1
    DENY = 2
    ALLOW = 3


_O = Operation
# the operations whose ALLOW also allows the key (besides itself and ALL)
_IMPLIED_BY: dict[Operation, frozenset[Operation]] = {
    _O.DESCRIBE: frozenset({_O.READ, _O.WRITE, _O.DELETE, _O.ALTER}),
    _O.DESCRIBE_CONFIGS: frozenset({_O.ALTER_CONFIGS}),
}

# what authorized-operations bit sets (Metadata, DescribeGroups, DescribeCluster) list
OPERATIONS_OF: dict[ResourceType, tuple[Operation, ...]] = {
    ResourceType.TOPIC: (
        _O.READ, _O.WRITE, _O.CREATE, _O.DELETE, _O.ALTER, _O.DESCRIBE,
        _O.DESCRIBE_CONFIGS, _O.ALTER_CONFIGS,
    ),
    ResourceType.GROUP: (_O.READ, _O.DESCRIBE, _O.DELETE),
    ResourceType.CLUSTER: (
        _O.CREATE, _O.ALTER, _O.DESCRIBE, _O.CLUSTER_ACTION, _O.DESCRIBE_CONFIGS,
        _O.ALTER_CONFIGS, _O.IDEMPOTENT_WRITE,
    ),
    ResourceType.TRANSACTIONAL_ID: (_O.DESCRIBE, _O.WRITE),
}  # fmt: skip

_CONCRETE_RESOURCES = frozenset(OPERATIONS_OF) | {ResourceType.DELEGATION_TOKEN, ResourceType.USER}
_CONCRETE_PATTERNS = frozenset({PatternType.LITERAL, PatternType.PREFIXED})
_CONCRETE_PERMISSIONS = frozenset({Permission.ALLOW, Permission.DENY})
NAME_CHARS_MAX = 1024


class InvalidAclError(ValueError):
    """An ACL (or filter) that cannot be stored or matched; the message is for the client."""


@dataclass(frozen=True, slots=True, order=True)
class Acl:
    """One ACL binding: a resource pattern and an access control entry."""

    resource_type: ResourceType
    resource_name: str
    pattern_type: PatternType
    principal: str
    host: str
    operation: Operation
    permission: Permission

    def __str__(self) -> str:
        return (
            f"{self.permission.name} {self.principal} {self.operation.name} from {self.host} "
            f"on {self.resource_type.name}:{self.pattern_type.name}:{self.resource_name}"
        )


def _enum(kind: type[IntEnum], value: int, what: str) -> IntEnum:
    try:
        return kind(value)
    except ValueError:
        raise InvalidAclError(f"unknown {what} {value}") from None


def check_principal(principal: str) -> None:
    kind, sep, name = principal.partition(":")
    if not sep or not name:
        raise InvalidAclError(f"principal {principal!r} is not TYPE:NAME (e.g. User:alice)")
    if kind != PRINCIPAL_TYPE:
        raise InvalidAclError(f"principal {principal!r}: only {PRINCIPAL_TYPE}: principals exist")


def check_acl(acl: Acl) -> Acl:
    """`acl` with its numbers as enums, or InvalidAclError saying what is wrong."""
    rtype = ResourceType(_enum(ResourceType, acl.resource_type, "resource type"))
    pattern = PatternType(_enum(PatternType, acl.pattern_type, "pattern type"))
    operation = Operation(_enum(Operation, acl.operation, "operation"))
    permission = Permission(_enum(Permission, acl.permission, "permission type"))
    if rtype not in _CONCRETE_RESOURCES:
        raise InvalidAclError(f"an ACL needs a concrete resource type, not {rtype.name}")
    if pattern not in _CONCRETE_PATTERNS:
        raise InvalidAclError(f"an ACL's pattern type is LITERAL or PREFIXED, not {pattern.name}")
    if operation in (Operation.ANY, Operation.UNKNOWN):
        raise InvalidAclError(f"an ACL needs a concrete operation, not {operation.name}")
    if permission not in _CONCRETE_PERMISSIONS:
        raise InvalidAclError(f"an ACL's permission is ALLOW or DENY, not {permission.name}")
    if not acl.resource_name or len(acl.resource_name) > NAME_CHARS_MAX:
        raise InvalidAclError(f"resource name must be 1 to {NAME_CHARS_MAX} characters")
    if rtype is ResourceType.CLUSTER and acl.resource_name != CLUSTER_NAME:
        raise InvalidAclError(f"the only valid name for the CLUSTER resource is {CLUSTER_NAME}")
    check_principal(acl.principal)
    if not acl.host:
        raise InvalidAclError("an ACL's host is an address or *")
    return Acl(rtype, acl.resource_name, pattern, acl.principal, acl.host, operation, permission)


@dataclass(frozen=True, slots=True)
class AclFilter:
    """What DescribeAcls and DeleteAcls select: None (and ANY) match anything.

    A MATCH pattern type selects the ACLs that would apply to the named resource:
    its literal name, the literal `*`, and the prefixes of the name."""

    resource_type: ResourceType = ResourceType.ANY
    resource_name: str | None = None
    pattern_type: PatternType = PatternType.ANY
    principal: str | None = None
    host: str | None = None
    operation: Operation = Operation.ANY
    permission: Permission = Permission.ANY

    def checked(self) -> AclFilter:
        rtype = ResourceType(_enum(ResourceType, self.resource_type, "resource type"))
        pattern = PatternType(_enum(PatternType, self.pattern_type, "pattern type"))
        operation = Operation(_enum(Operation, self.operation, "operation"))
        permission = Permission(_enum(Permission, self.permission, "permission type"))
        for value, kind in ((rtype, "resource type"), (pattern, "pattern type")):
            if value.name == "UNKNOWN":
                raise InvalidAclError(f"a filter's {kind} may not be UNKNOWN")
        if operation is Operation.UNKNOWN or permission is Permission.UNKNOWN:
            raise InvalidAclError("a filter's operation and permission may not be UNKNOWN")
        return AclFilter(
            rtype, self.resource_name, pattern, self.principal, self.host, operation, permission
        )

    def matches(self, acl: Acl) -> bool:
        return (
            self.resource_type in (ResourceType.ANY, acl.resource_type)
            and self._pattern_matches(acl)
            and self.principal in (None, acl.principal)
            and self.host in (None, acl.host)
            and self.operation in (Operation.ANY, acl.operation)
            and self.permission in (Permission.ANY, acl.permission)
        )

    def _pattern_matches(self, acl: Acl) -> bool:
        name = self.resource_name
        if self.pattern_type is PatternType.MATCH:
            if name is None:
                return True
            if acl.pattern_type is PatternType.PREFIXED:
                return name.startswith(acl.resource_name)
            return acl.resource_name in (name, WILDCARD)
        if self.pattern_type not in (PatternType.ANY, acl.pattern_type):
            return False
        return name in (None, acl.resource_name)


class _Index:
    """The ACLs of one resource type: literal ones by name, prefixed ones in a list."""

    __slots__ = ("literal", "prefixed")

    def __init__(self) -> None:
        self.literal: dict[str, list[Acl]] = {}
        self.prefixed: list[Acl] = []

    def add(self, acl: Acl) -> None:
        if acl.pattern_type is PatternType.PREFIXED:
            self.prefixed.append(acl)
        else:
            self.literal.setdefault(acl.resource_name, []).append(acl)

    def matching(self, name: str) -> list[Acl]:
        found = list(self.literal.get(name, ()))
        if name != WILDCARD:
            found += self.literal.get(WILDCARD, ())
        found += [a for a in self.prefixed if name.startswith(a.resource_name)]
        return found


class Authorizer:
    """Decides requests by a set of ACLs, super users and the no-ACL rule (module doc)."""

    def __init__(
        self,
        acls: Iterable[Acl] = (),
        *,
        super_users: Iterable[str] = (),
        allow_everyone_if_no_acl: bool = False,
    ) -> None:
        self.super_users = frozenset(super_users)
        for principal in self.super_users:
            check_principal(principal)
        self.allow_everyone_if_no_acl = allow_everyone_if_no_acl
        self._acls: frozenset[Acl] = frozenset()
        self._index: dict[ResourceType, _Index] = {}
        self.replace(acls)

    @property
    def acls(self) -> frozenset[Acl]:
        return self._acls

    def replace(self, acls: Iterable[Acl]) -> None:
        """Decide by `acls` from now on (each one checked first)."""
        checked = frozenset(check_acl(a) for a in acls)
        index: dict[ResourceType, _Index] = {}
        for acl in checked:
            index.setdefault(acl.resource_type, _Index()).add(acl)
        self._acls, self._index = checked, index

    def select(self, selector: AclFilter) -> list[Acl]:
        return sorted(a for a in self._acls if selector.matches(a))

    # --- decisions --------------------------------------------------------------

    def authorize(
        self, principal: str, host: str, operation: Operation, rtype: ResourceType, name: str
    ) -> bool:
        if principal in self.super_users:
            return True
        index = self._index.get(rtype)
        acls = index.matching(name) if index is not None else []
        if not acls:
            return self.allow_everyone_if_no_acl
        applying = [a for a in acls if _applies(a, principal, host)]
        if any(
            a.permission is Permission.DENY and a.operation in (operation, Operation.ALL)
            for a in applying
        ):
            return False
        allowing = _IMPLIED_BY.get(operation, frozenset()) | {operation, Operation.ALL}
        return any(a.permission is Permission.ALLOW and a.operation in allowing for a in applying)

    def authorize_any(
        self, principal: str, host: str, operation: Operation, rtype: ResourceType
    ) -> bool:
        """Whether `operation` is allowed on some resource of `rtype` (Kafka's
        authorizeByResourceType: an idempotent producer needs WRITE on any topic).

        An ALLOW counts unless a DENY that applies covers its whole pattern: the
        literal `*`, the same literal name, or a prefix of its name."""
        if principal in self.super_users:
            return True
        index = self._index.get(rtype)
        if index is None:
            return self.allow_everyone_if_no_acl
        everything = [a for named in index.literal.values() for a in named] + index.prefixed
        applying = [a for a in everything if _applies(a, principal, host)]
        allowing = _IMPLIED_BY.get(operation, frozenset()) | {operation, Operation.ALL}
        denies = [
            a
            for a in applying
            if a.permission is Permission.DENY and a.operation in (operation, Operation.ALL)
        ]
        return any(
            a.permission is Permission.ALLOW
            and a.operation in allowing
            and not any(_covers(d, a) for d in denies)
            for a in applying
        )

    def authorized_operations(
        self, principal: str, host: str, rtype: ResourceType, name: str
    ) -> int:
        """Kafka's bit set (bit n: operation n) of what `principal` may do to the resource."""
        bits = 0
        for operation in OPERATIONS_OF.get(rtype, ()):
            if self.authorize(principal, host, operation, rtype, name):
                bits |= 1 << operation
        return bits


def _applies(acl: Acl, principal: str, host: str) -> bool:
    return acl.principal in (principal, EVERYONE) and acl.host in (host, WILDCARD)


def _covers(deny: Acl, allow: Acl) -> bool:
    if deny.pattern_type is PatternType.LITERAL:
        return deny.resource_name == WILDCARD or (
            allow.pattern_type is PatternType.LITERAL and deny.resource_name == allow.resource_name
        )
    return allow.resource_name.startswith(deny.resource_name)
