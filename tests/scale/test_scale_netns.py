"""Across machines: two ws4py servers in two network namespaces share a channel through Redis in a third.

The namespaces, their veth pairs and their private /24 are made by the test and removed
after it (tests/scale/netns_support.py). Redis listens only on its namespace's address; each
server (``python -m ws4py serve --broker redis://<that address>``) and its client run in
their own namespace. A client of each server must see what the client of the other sent,
and Redis must have its two subscribers at the servers' addresses: the traffic crossed the
veths, not the host's loopback.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from netns_support import NamespacedRedis, Network, ip, unavailable
from scale_support import HERE, Served

CHANNEL = "fanout"  # fanout_app.CHANNEL
PORT = 8765
#: Bound of every wait: far above what it takes.
TIMEOUT = 20.0


@pytest.fixture
def network() -> Iterator[Network]:
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)
    net = Network(["a", "b"])
    try:
        yield net.make()
    finally:
        net.remove()


class Lines:
    """The output of a client, line by line, each wait bounded (select on the pipe itself: no buffer hides a line)."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        self.fd = process.stdout.fileno()
        self.buffer = b""
        self.seen: list[str] = []

    def next(self, want: str) -> str:
        """The next line that starts with ``want``, within :data:`TIMEOUT`."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            while b"\n" in self.buffer:
                line, _, self.buffer = self.buffer.partition(b"\n")
                self.seen.append(line.decode())
                if self.seen[-1].startswith(want):
                    return self.seen[-1]
            ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(self.fd, 4096) if ready else b""
            if not chunk:
                raise AssertionError(f"no {want!r} line from the client; it said: {self.seen}")
            self.buffer += chunk


def test_servers_in_two_namespaces_share_a_channel_through_redis_in_a_third(network: Network, tmp_path: Path) -> None:
    redis = NamespacedRedis(network, "r").start()
    servers: list[Served] = []
    clients: list[subprocess.Popen[bytes]] = []
    try:
        for name in ("a", "b"):
            argv = ["--host", network.address[name], "--port", str(PORT), "--broker", redis.url]
            servers.append(Served(argv, tmp_path / f"serve-{name}.log", prefix=network.exec(name)))
        for name, other in (("a", "b"), ("b", "a")):
            url = f"ws://{network.address[name]}:{PORT}/"
            command = [*network.exec(name), sys.executable, str(HERE / "netns_client.py"), url, name, other]
            clients.append(subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE))
        outputs = [Lines(client) for client in clients]
        for output in outputs:
            output.next("ready")
        deadline = time.monotonic() + TIMEOUT
        while redis.numsub(CHANNEL) != 2:  # each server subscribed at Redis: nothing published is lost
            for server in servers:
                server.check_alive()
            assert time.monotonic() < deadline, f"Redis subscribers of {CHANNEL!r}: {redis.numsub(CHANNEL)}"
            time.sleep(0.02)

        for client in clients:
            assert client.stdin is not None
            client.stdin.write(b"go\n")
            client.stdin.flush()
        assert outputs[0].next("got") == "got b"  # a's client saw what b's client sent to b
        assert outputs[1].next("got") == "got a"
        for client in clients:
            assert client.wait(TIMEOUT) == 0

        # The servers' subscriptions come from their namespaces' addresses, to Redis' only address.
        peers = {field.split("=")[1].rsplit(":", 1)[0] for field in redis.cli("CLIENT", "LIST").split() if
                 field.startswith("addr=")}  # fmt: skip
        assert {network.address["a"], network.address["b"]} <= peers, peers
        assert redis.cli("CONFIG", "GET", "bind").split()[-1] == network.address["r"]
        # ...and the host's own namespace has no address on that network.
        host_addresses = {a["local"] for link in json.loads(ip("-j", "addr")) for a in link.get("addr_info", [])}
        assert not {a for a in host_addresses if a.startswith(network.address["r"].rsplit(".", 1)[0] + ".")}
        for server in servers:
            server.check_alive()
    finally:
        for client in clients:
            client.kill()
            client.wait(TIMEOUT)
            for stream in (client.stdin, client.stdout):
                if stream is not None:
                    stream.close()
        for server in servers:
            server.stop()
        redis.stop()
