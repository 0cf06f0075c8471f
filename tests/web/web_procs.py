"""Worker processes with a web server, for the web tests: started on free loopback
ports, their stderr drained by a thread, reaped by pid whatever the test did."""

from __future__ import annotations

import json
import os
import signal
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from broker_process import free_port
from child_process import REPO, ChildProcess


class WorkerProcess(ChildProcess):
    """`python -m streams -A APP worker --web 127.0.0.1:PORT ...`."""

    def __init__(
        self,
        app: str,
        data: Path,
        *args: str,
        pythonpath: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.web_port = free_port()
        self.url = f"http://127.0.0.1:{self.web_port}"
        command = [sys.executable, "-m", "streams", "-A", app, "worker", "--data", str(data)]
        command += ["--web", f"127.0.0.1:{self.web_port}", "-l", "info", *args]
        paths = [str(pythonpath)] if pythonpath else []
        variables = {**(env or {}), "PYTHONPATH": os.pathsep.join([*paths, str(REPO)])}
        super().__init__(command, variables)

    def get(self, path: str, timeout_s: float = 10.0) -> tuple[int, Any]:
        """(status, JSON body) of GET path; (0, None) while nothing listens."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout_s) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            with error:
                return error.code, json.loads(error.read())
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return 0, None

    def stop(self) -> int:
        """SIGTERM (if running), then wait; SIGKILL past the timeout. The exit code."""
        return self.reap(signal.SIGTERM)
