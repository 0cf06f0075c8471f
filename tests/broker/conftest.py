"""Fixtures for the broker's integration tests: a real `streams broker` process.

`broker` is a broker on free loopback ports (Kafka and HTTP) with a fresh data
directory; `start_broker(*args)` starts one with extra command-line options
(`--flush batch`, `--no-auto-create`, `--partitions N`), on `data_dir=` if
given, its PLAINTEXT listener on `plaintext_host=` (default 127.0.0.1).
`secure_broker` (one per test module) adds SASL_SSL, SASL_PLAINTEXT and SSL
listeners, with certificates from `pki` (made once per session) and a users
file tests add their users to. Every process started here is stopped in
teardown, whatever the test did to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from broker_process import BrokerProcess, free_ports, start_broker
from secure_setup import Listeners, Pki, add_user, broker_args, make_pki

__all__ = ["start_broker"]  # a fixture: importing it offers it to these tests


@pytest.fixture
def broker(start_broker: Callable[..., BrokerProcess]) -> BrokerProcess:
    return start_broker()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@dataclass
class SecureBroker:
    process: BrokerProcess
    pki: Pki
    users_file: Path
    listeners: Listeners
    passwords: dict[str, str]

    def add_user(self, name: str) -> str:
        """Add a user (the running broker reads the file again); returns its password."""
        password = f"pässword-of-{name}-{len(self.passwords)}"
        add_user(self.users_file, name, password)
        self.passwords[name] = password
        return password

    def log_lines(self, *texts: str) -> list[str]:
        return [line for line in self.process.log if all(t in line for t in texts)]


@pytest.fixture(scope="module")
def secure_broker(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    directory = tmp_path_factory.mktemp("secure")
    users_file = directory / "users.json"
    add_user(users_file, "admin", "admin-password")
    listeners = Listeners(*free_ports(3))
    process = BrokerProcess(directory / "data", broker_args(pki, users_file, listeners))
    secure = SecureBroker(process, pki, users_file, listeners, {"admin": "admin-password"})
    process.start()
    try:
        yield secure
    finally:
        process.close()
        log = process.log_text()
        leaked = [p for p in secure.passwords.values() if p in log]
        assert not leaked, f"passwords in the broker's log: {leaked}"
