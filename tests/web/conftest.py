"""Fixtures for the web tests: `start_broker` starts real `streams broker` processes."""

from __future__ import annotations

from broker_process import start_broker

__all__ = ["start_broker"]  # a fixture: importing it offers it to these tests
