"""How many connections the broker holds, in total and per client address.

A connection over either limit is closed as soon as it is accepted, before a
byte of it is read, so a flood of connections costs an accept and a close each
and never the broker's file descriptors. Refusals are logged once per interval
per limit, with how many there were.

Invariants:
- total == sum(by_host.values()) <= total_max, and by_host[h] <= per_host_max.
- by_host has no zero counts (hosts come and go with their connections).
"""

from __future__ import annotations

from collections import Counter

from runtime.logs import RateLimitedLog


class ConnectionLimits:
    def __init__(self, total_max: int, per_host_max: int, log: RateLimitedLog) -> None:
        if total_max < 1 or per_host_max < 1:
            raise ValueError(f"limits must be >= 1, got {total_max}, {per_host_max}")
        self.total_max = total_max
        self.per_host_max = per_host_max
        self.total = 0
        self.refused = 0
        self.by_host: Counter[str] = Counter()
        self._log = log

    def admit(self, host: str) -> bool:
        """Count a new connection from `host`, or refuse it (False) if over a limit."""
        if self.total >= self.total_max:
            self._refuse(
                "total",
                "refused a connection from %s: %d connections open, the limit (--connections-max)",
                host,
                self.total,
            )
            return False
        if self.by_host[host] >= self.per_host_max:
            self._refuse(
                ("host", host),
                "refused a connection from %s: it has %d open, the limit "
                "per address (--connections-per-ip-max)",
                host,
                self.by_host[host],
            )
            return False
        self.total += 1
        self.by_host[host] += 1
        return True

    def release(self, host: str) -> None:
        """A connection admitted from `host` has closed."""
        if self.by_host[host] < 1:
            raise ValueError(f"no connection from {host} to release")
        self.total -= 1
        self.by_host[host] -= 1
        if not self.by_host[host]:
            del self.by_host[host]

    def _refuse(self, key: object, message: str, *args: object) -> None:
        self.refused += 1
        self._log.warning(("refused", key), message, *args)
