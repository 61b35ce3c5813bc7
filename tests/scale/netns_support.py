"""Three "machines" on one host: network namespaces joined by veth pairs on a private /24.

:class:`Network` makes namespace ``r`` (its bridge holds ``SUBNET.1``) and one namespace per
other machine, each linked to the bridge by a veth pair and given the next address
(``SUBNET.2``, ``SUBNET.3``...); :meth:`Network.remove` deletes them all (their interfaces
go with them). Nothing is added to the host's own namespace, so whatever these machines say
to each other crosses the veths and nothing else. :class:`NamespacedRedis` is
tests/redis_support.py's :class:`RedisServer` run inside a namespace, bound to that
namespace's address only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Sequence

from redis_support import REDIS_CLI, REDIS_SERVER, START_TIMEOUT, RedisServer

#: A private /24 (RFC 1918) that exists only inside the namespaces of a test.
SUBNET = "10.213.7"


def ip(*args: str) -> str:
    """``ip ARGS...``; its output (a failure raises, with ip's error)."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=START_TIMEOUT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def unavailable() -> str | None:
    """Why network namespaces cannot be made here (not root, no ``ip``, no namespaces), or None."""
    if os.geteuid() != 0:
        return "making network namespaces needs root"
    if shutil.which("ip") is None:
        return "no ip command (iproute2)"
    probe = f"ws4py-probe-{os.getpid()}"
    try:
        ip("netns", "add", probe)
    except RuntimeError as exc:
        return f"ip netns is not available: {exc}"
    ip("netns", "del", probe)
    return None


class Network:
    """Namespace ``r`` with a bridge at ``SUBNET.1``, and one namespace per name in ``machines``."""

    def __init__(self, machines: Sequence[str]) -> None:
        self.prefix = f"ws4py-{os.getpid()}-"
        self.names = ["r", *machines]
        self.address = {name: f"{SUBNET}.{i + 1}" for i, name in enumerate(self.names)}
        self.made: list[str] = []

    def ns(self, name: str) -> str:
        """The namespace of machine ``name``."""
        return self.prefix + name

    def exec(self, name: str) -> list[str]:
        """The command prefix that runs a program on machine ``name``."""
        return ["ip", "netns", "exec", self.ns(name)]

    def make(self) -> Network:
        for name in self.names:
            ip("netns", "add", self.ns(name))
            self.made.append(name)
            ip("-n", self.ns(name), "link", "set", "lo", "up")
        hub = self.ns("r")
        ip("-n", hub, "link", "add", "br0", "type", "bridge")
        ip("-n", hub, "addr", "add", f"{self.address['r']}/24", "dev", "br0")
        ip("-n", hub, "link", "set", "br0", "up")
        for i, name in enumerate(self.names[1:]):
            # Made in the namespaces directly: no interface ever appears in the host's.
            ip("link", "add", f"hub{i}", "netns", hub, "type", "veth", "peer", "name", "eth0", "netns", self.ns(name))
            ip("-n", hub, "link", "set", f"hub{i}", "master", "br0", "up")
            ip("-n", self.ns(name), "addr", "add", f"{self.address[name]}/24", "dev", "eth0")
            ip("-n", self.ns(name), "link", "set", "eth0", "up")
        return self

    def remove(self) -> None:
        """Delete every namespace made (their processes must be gone); errors are not the test's result."""
        for name in self.made:
            with contextlib.suppress(RuntimeError):
                ip("netns", "del", self.ns(name))
        self.made.clear()


class NamespacedRedis(RedisServer):
    """A :class:`RedisServer` on a machine of a :class:`Network`, bound to that machine's address only."""

    def __init__(self, network: Network, name: str, port: int = 6379) -> None:
        # protected mode refuses every address but loopback when no password is set: this Redis
        # is reachable only from the namespaces of the test.
        super().__init__("--protected-mode", "no", port=port)
        self.prefix = network.exec(name)
        self.host = network.address[name]

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}"

    def start(self) -> NamespacedRedis:
        command = [*self.prefix, REDIS_SERVER, "--port", str(self.port), "--bind", self.host]
        command += ["--save", "", "--appendonly", "no", "--dir", self.dir]
        command += ["--logfile", os.path.join(self.dir, "redis.log"), *self.args]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL)  # ip netns exec execs redis-server
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.log()}")
            try:
                if self.cli("PING") == "PONG":
                    return
            except subprocess.CalledProcessError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on {self.host} did not answer within {START_TIMEOUT}s")
            time.sleep(0.02)

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [*self.prefix, REDIS_CLI, "-h", self.host, "-p", str(self.port), *args],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            check=True,
        )
        return done.stdout.strip()

    def numsub(self, channel: str) -> int:
        return int(self.cli("PUBSUB", "NUMSUB", channel).split()[-1])
