"""A `streams worker` on `kafka://` against a broker's SASL_SSL listener: the
broker URL names the protocol, mechanism, user and CA; the password comes from
the environment. The worker counts every event, and its changelog says so."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from broker_process import BrokerProcess, free_ports
from secure_setup import Listeners, Login, add_user, broker_args, make_pki
from worker_procs import create_topic, produce, read_table, wait_covered

pytestmark = pytest.mark.slow

EVENTS = 2_000
KEYS = [f"k{i % 41}" for i in range(EVENTS)]
TIMEOUT_S = 60.0


@pytest.fixture
def secured(tmp_path: Path):
    (tmp_path / "pki").mkdir()
    pki = make_pki(tmp_path / "pki")
    users_file = tmp_path / "users.json"
    add_user(users_file, "tally-worker", "worker-pässword")
    listeners = Listeners(*free_ports(3))
    broker = BrokerProcess(tmp_path / "broker", broker_args(pki, users_file, listeners))
    broker.start()
    try:
        yield broker, pki, listeners
    finally:
        broker.close()


def test_a_worker_runs_against_a_sasl_ssl_listener(secured, workers, tmp_path) -> None:
    broker, pki, listeners = secured
    create_topic(broker.bootstrap)  # operators' side: the plaintext listener on loopback
    produce(broker.bootstrap, KEYS)
    login = Login("SASL_SSL", "SCRAM-SHA-512", "tally-worker", "worker-pässword")
    url, env = login.streams_url(pki, listeners.sasl_ssl)
    worker = workers(url, **env)
    wait_covered(tmp_path / "trace", EVENTS, TIMEOUT_S)
    worker.terminate()
    assert "worker-pässword" not in worker.text()
    assert read_table(broker.bootstrap) == Counter(KEYS)
