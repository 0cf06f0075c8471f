"""The broker: the group coordinator (and the servers that expose the log)."""

from runtime.broker.coordinator import GroupCoordinator, LeaveResult, LeftMember
from runtime.broker.errors import ErrorCode
from runtime.broker.group_admin import GroupDescription, GroupListing, MemberDescription
from runtime.broker.groups import GroupState, JoinMember, JoinResult, SyncResult

__all__ = [
    "ErrorCode",
    "GroupCoordinator",
    "GroupDescription",
    "GroupListing",
    "GroupState",
    "JoinMember",
    "JoinResult",
    "LeaveResult",
    "LeftMember",
    "MemberDescription",
    "SyncResult",
]
