"""Fixtures for the client tests that need a `streams broker` process (one that
can be killed and restarted, or that clients of other processes can reach):
`start_broker`, shared with the broker tests (tests/support/broker_process.py).
Here `broker` is client_helpers' in-process broker.
"""

from __future__ import annotations

from broker_process import BrokerProcess, start_broker

__all__ = ["BrokerProcess", "start_broker"]
