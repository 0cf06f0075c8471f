"""A broker that runs out of file descriptors on cue (`fd_starved_broker.py DATA INTERVAL_MS`).

Runs a Broker in this process with RLIMIT_NOFILE at 256, prints its port, then
opens files until none are left and prints `exhausted`: connections that arrive
now make accept() fail with EMFILE. On a line on stdin it closes those files and
prints `freed`; on the next line (or EOF) it stops. Logs go to stderr; repeated
warnings once per INTERVAL_MS.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import sys

from runtime.broker.limits import BrokerLimits
from runtime.broker.server import Address, Broker

OPEN_FILES = 256


async def main(data_dir: str, log_interval_ms: int) -> None:
    limits = BrokerLimits(log_interval_ms=log_interval_ms)
    async with Broker(data_dir, listen=Address("127.0.0.1", 0), limits=limits) as broker:
        assert broker.address is not None
        print(broker.address.port, flush=True)
        await asyncio.to_thread(int)  # the thread pool, started while files can be opened
        hogs = []
        try:
            while True:
                hogs.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            pass
        print("exhausted", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        for fd in hogs:
            os.close(fd)
        print("freed", flush=True)
        await asyncio.to_thread(sys.stdin.readline)


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES, OPEN_FILES))
    logging.basicConfig(level="INFO", stream=sys.stderr)
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
