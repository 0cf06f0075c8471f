"""Fixtures for the client tests that need a `streams broker` process (one that
can be killed and restarted, or that clients of other processes can reach):
`start_broker`, shared with the broker tests (tests/support/broker_process.py),
and `mock_cluster`, librdkafka's three-broker mock cluster (tests/support/mock_cluster.py).
Here `broker` is client_helpers' in-process broker.
"""

from __future__ import annotations

from broker_process import BrokerProcess, start_broker
from mock_cluster import MockCluster, mock_cluster

__all__ = ["BrokerProcess", "MockCluster", "mock_cluster", "start_broker"]
