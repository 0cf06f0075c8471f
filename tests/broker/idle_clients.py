"""A flood of idle connections, run as its own process (`python idle_clients.py`).

Opens `--count` TCP connections to `--port` from `--source`, sends nothing, and
holds them: a process of its own, so the test's file descriptors are not spent.
Connects are non-blocking, `--window` at a time, so a broker that accepts slowly
slows the flood instead of hanging it. Prints `connected N failed M` when done,
then on each stdin line `check` prints `open N closed M` (closed: the broker
closed it), and exits (closing everything) on EOF.
"""

from __future__ import annotations

import argparse
import errno
import resource
import selectors
import socket
import sys
import time


def raise_open_files_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def flood(source: str, port: int, count: int, window: int, deadline_s: float) -> tuple:
    selector = selectors.DefaultSelector()
    connected: list[socket.socket] = []
    failed = 0
    started = 0
    deadline = time.monotonic() + deadline_s
    while (started < count or selector.get_map()) and time.monotonic() < deadline:
        while started < count and len(selector.get_map()) < window:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.bind((source, 0))
            code = sock.connect_ex(("127.0.0.1", port))
            started += 1
            if code in (0, errno.EINPROGRESS):
                selector.register(sock, selectors.EVENT_WRITE)
            else:
                sock.close()
                failed += 1
        for key, _ in selector.select(timeout=0.5):
            sock = key.fileobj
            selector.unregister(sock)
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                connected.append(sock)
            else:
                sock.close()
                failed += 1
    for key in list(selector.get_map().values()):
        key.fileobj.close()
        failed += 1
    return connected, failed + count - started


def count_closed(sockets: list[socket.socket]) -> int:
    closed = 0
    for sock in sockets:
        try:
            if sock.recv(1, socket.MSG_PEEK) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    return closed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--deadline-s", type=float, default=30.0)
    args = parser.parse_args()
    raise_open_files_limit()
    connected, failed = flood(args.source, args.port, args.count, args.window, args.deadline_s)
    print(f"connected {len(connected)} failed {failed}", flush=True)
    for line in sys.stdin:
        if line.strip() == "check":
            closed = count_closed(connected)
            print(f"open {len(connected) - closed} closed {closed}", flush=True)
    for sock in connected:
        sock.close()


if __name__ == "__main__":
    main()
