"""Connect/disconnect cycles against a WebSocket server, from a process of their own.

Usage: python cycle_client.py PORT PATH CYCLES THREADS

Each cycle opens a connection, does the opening handshake by hand and checks
the 101; every other cycle then does the closing handshake (and waits for the
server to close TCP), the others just close the socket. Prints ``done N``.
"""

from __future__ import annotations

import socket
import sys
import threading
from pathlib import Path

# The handshake helpers of the threaded tests (this script runs in a process of its own).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "threaded"))
from threaded_support import read_head, upgrade_request

MASKED_CLOSE_1000 = bytes([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8])


def cycle(port: int, path: str, close_handshake: bool) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(upgrade_request(path, port))
        received, _ = read_head(sock)
        if not received.startswith(b"HTTP/1.1 101 "):
            raise AssertionError(received)
        if close_handshake:
            sock.sendall(MASKED_CLOSE_1000)
            while sock.recv(4096):
                pass


def main() -> None:
    port, path, cycles, threads = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    errors: list[BaseException] = []

    def run(count: int) -> None:
        try:
            for i in range(count):
                cycle(port, path, close_handshake=bool(i % 2))
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(cycles // threads,)) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]
    print("done", cycles // threads * threads)


if __name__ == "__main__":
    main()
