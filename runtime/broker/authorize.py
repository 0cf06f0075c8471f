"""Authorization on the broker: every handler asks `Access` before it acts.

`Access` puts a request's `Peer` (principal, address) to the authorizer
(runtime/security/acls.py) and logs denials: one line per principal,
operation and resource type per interval (the broker's RateLimitedLog),
naming the resource, with a count of the ones held back. Listings that
leave out what a principal may not see (Metadata of all topics, ListGroups)
ask `visible`, which logs nothing: omitting is not refusing.

`AclStore` owns the broker's ACLs: the authorizer's set and its file
(acl_file.py) in the data directory. A change is written to the file first
and only then decides requests, so an ACL the client was told exists
survives a restart, and one whose write failed was never in force.
Changes are serialized (one at a time), the file written off the event loop.
At most `ACLS_MAX` ACLs are kept (AclLimitError past it): every decision
looks through the prefixed ones of a resource type.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from runtime.broker.settings import Peer
from runtime.logs import RateLimitedLog
from runtime.security import acl_file
from runtime.security.acls import (
    CLUSTER_NAME,
    Acl,
    AclFilter,
    Authorizer,
    Operation,
    ResourceType,
)

__all__ = ["Access", "AclLimitError", "AclStore", "Operation", "ResourceType"]

logger = logging.getLogger(__name__)

ACLS_MAX = 100_000


class AclLimitError(ValueError):
    """Adding the ACLs would keep more than the store's acls_max."""


class AclStore:
    """The broker's ACLs: an Authorizer and, with a data directory, its file."""

    def __init__(self, authorizer: Authorizer, path: Path | None) -> None:
        self.authorizer = authorizer
        self.path = path
        self.acls_max = ACLS_MAX
        self._lock = asyncio.Lock()

    @classmethod
    def open(
        cls,
        data_dir: Path | None,
        *,
        super_users: Iterable[str] = (),
        allow_everyone_if_no_acl: bool,
    ) -> AclStore:
        """The ACLs kept in `data_dir` (none yet, or in memory only without one);
        AclFileError for a file that cannot be used."""
        path = data_dir / acl_file.FILE_NAME if data_dir is not None else None
        acls = acl_file.load(path) if path is not None else []
        authorizer = Authorizer(
            acls, super_users=super_users, allow_everyone_if_no_acl=allow_everyone_if_no_acl
        )
        logger.info(
            "authorizer acls=%d super_users=%s allow_everyone_if_no_acl=%s",
            len(authorizer.acls),
            ",".join(sorted(authorizer.super_users)) or "-",
            str(allow_everyone_if_no_acl).lower(),
        )
        return cls(authorizer, path)

    async def add(self, acls: Sequence[Acl]) -> None:
        """Add checked ACLs; AclFileError or AclLimitError (and nothing added) if they
        cannot be stored."""
        async with self._lock:
            wanted = self.authorizer.acls | set(acls)
            if len(wanted) > self.acls_max:
                raise AclLimitError(
                    f"{len(wanted)} ACLs would be more than this broker keeps ({self.acls_max})"
                )
            await self._put(wanted)

    async def remove(self, filters: Sequence[AclFilter]) -> list[list[Acl]]:
        """Remove what each filter selects; per filter, the ACLs it removed."""
        async with self._lock:
            removed = [self.authorizer.select(f) for f in filters]
            gone = {a for found in removed for a in found}
            if gone:
                await self._put(self.authorizer.acls - gone)
            return removed

    async def _put(self, acls: frozenset[Acl]) -> None:
        if acls == self.authorizer.acls:
            return
        if self.path is not None:
            await asyncio.to_thread(acl_file.save, self.path, acls)
        self.authorizer.replace(acls)


class Access:
    """The questions handlers ask, with the peer of the request."""

    def __init__(self, store: AclStore, ratelog: RateLimitedLog) -> None:
        self.store = store
        self._ratelog = ratelog

    @property
    def authorizer(self) -> Authorizer:
        return self.store.authorizer

    def allows(self, peer: Peer, operation: Operation, rtype: ResourceType, name: str) -> bool:
        if self.authorizer.authorize(peer.principal, peer.host, operation, rtype, name):
            return True
        self._ratelog.warning(
            ("denied", peer.principal, operation, rtype),
            "denied principal=%s host=%s operation=%s resource=%s:%s",
            peer.principal,
            peer.host,
            operation.name,
            rtype.name,
            name,
        )
        return False

    def visible(self, peer: Peer, operation: Operation, rtype: ResourceType, name: str) -> bool:
        return self.authorizer.authorize(peer.principal, peer.host, operation, rtype, name)

    def topic(self, peer: Peer, operation: Operation, name: str) -> bool:
        return self.allows(peer, operation, ResourceType.TOPIC, name)

    def group(self, peer: Peer, operation: Operation, name: str) -> bool:
        return self.allows(peer, operation, ResourceType.GROUP, name)

    def cluster(self, peer: Peer, operation: Operation) -> bool:
        return self.allows(peer, operation, ResourceType.CLUSTER, CLUSTER_NAME)

    def transactional_id(self, peer: Peer, operation: Operation, name: str) -> bool:
        return self.allows(peer, operation, ResourceType.TRANSACTIONAL_ID, name)

    def may_create_topic(self, peer: Peer, name: str) -> bool:
        """CREATE on the cluster or on the topic (Kafka asks the cluster first, quietly)."""
        if self.visible(peer, Operation.CREATE, ResourceType.CLUSTER, CLUSTER_NAME):
            return True
        return self.topic(peer, Operation.CREATE, name)

    def may_write_idempotently(self, peer: Peer) -> bool:
        """IDEMPOTENT_WRITE on the cluster, or WRITE on any topic."""
        if self.visible(peer, Operation.IDEMPOTENT_WRITE, ResourceType.CLUSTER, CLUSTER_NAME):
            return True
        if self.authorizer.authorize_any(
            peer.principal, peer.host, Operation.WRITE, ResourceType.TOPIC
        ):
            return True
        return self.cluster(peer, Operation.IDEMPOTENT_WRITE)  # logs the denial

    def operations(self, peer: Peer, rtype: ResourceType, name: str) -> int:
        """The authorized-operations bit set of `name` for the peer."""
        return self.authorizer.authorized_operations(peer.principal, peer.host, rtype, name)

    def cluster_operations(self, peer: Peer) -> int:
        return self.operations(peer, ResourceType.CLUSTER, CLUSTER_NAME)


def allow_everything() -> Access:
    """An Access that allows every request (no ACLs, allow everyone): for tests."""
    store = AclStore(Authorizer(allow_everyone_if_no_acl=True), None)
    return Access(store, RateLimitedLog(logger))
