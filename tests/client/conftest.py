"""Fixtures for the client tests that need a `streams broker` process (one that
can be killed and restarted, or that clients of other processes can reach).

`start_broker` is tests/broker/conftest.py's, loaded from that file rather
than copied: one implementation of starting, killing and reaping broker
processes (by pid) for every test directory. (Its `broker` fixture is left
out: here `broker` is client_helpers' in-process broker.)
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "broker_process_fixtures", Path(__file__).resolve().parents[1] / "broker" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)

BrokerProcess = _fixtures.BrokerProcess
start_broker = _fixtures.start_broker
