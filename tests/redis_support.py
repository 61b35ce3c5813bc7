"""Real Redis servers for the tests: Debian's ``redis-server``, on free ports of 127.0.0.1.

- :class:`RedisServer`: one Redis (``--save '' --appendonly no``, its files in a
  temporary folder), which a test can :meth:`~RedisServer.kill` (``kill -9``)
  and :meth:`~RedisServer.restart` on the same port.
- :class:`RedisCluster`: three masters started with ``--cluster-enabled yes``
  and joined by ``redis-cli --cluster create ... --cluster-yes``.

Both are stopped and their files removed by :meth:`stop` (the fixtures of
tests/pubsub/conftest.py do it). Import this module from a conftest that puts
``tests/`` on ``sys.path`` (tests/pubsub/conftest.py does).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Any

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
HOST = "127.0.0.1"
#: Bound of a wait for a Redis to answer: far above what it takes.
START_TIMEOUT = 10.0


def free_port(cluster_bus: bool = False) -> int:
    """A TCP port of 127.0.0.1 free now (and, for a cluster node, its bus port + 10000 too)."""
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            port: int = sock.getsockname()[1]
        if not cluster_bus:
            return port
        if port + 10000 < 65536:
            with socket.socket() as bus:
                try:
                    bus.bind((HOST, port + 10000))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


class RedisServer:
    """One ``redis-server`` process; :meth:`start` waits until it answers PING."""

    def __init__(self, *args: str, port: int | None = None, cluster: bool = False) -> None:
        self.port = port or free_port(cluster_bus=cluster)
        self.cluster = cluster
        self.args = list(args)
        self.dir = tempfile.mkdtemp(prefix=f"ws4py-redis-{self.port}-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}"

    def start(self) -> RedisServer:
        command = [REDIS_SERVER, "--port", str(self.port), "--bind", HOST, "--save", "", "--appendonly", "no"]
        command += ["--dir", self.dir, "--logfile", os.path.join(self.dir, "redis.log")]
        if self.cluster:
            command += ["--cluster-enabled", "yes", "--cluster-config-file", os.path.join(self.dir, "nodes.conf")]
        self.process = subprocess.Popen([*command, *self.args], stdin=subprocess.DEVNULL)
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} exited: {self.log()}")
            try:
                with socket.create_connection((HOST, self.port), timeout=1.0) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not answer within {START_TIMEOUT}s")
            time.sleep(0.01)

    def log(self) -> str:
        with contextlib.suppress(OSError), open(os.path.join(self.dir, "redis.log")) as log:
            return log.read()[-2000:]
        return ""

    def kill(self) -> None:
        """``kill -9``: the clients' connections end with no goodbye."""
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(START_TIMEOUT)
        self.process = None

    def restart(self) -> None:
        """Start again on the same port (empty: nothing was saved)."""
        self.kill()
        self.start()

    def stop(self) -> None:
        """Stop the server and remove its files."""
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(START_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.process = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def cli(self, *args: str) -> str:
        """``redis-cli -p PORT ARGS...``: its output."""
        done = subprocess.run(
            [REDIS_CLI, "-h", HOST, "-p", str(self.port), *args],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            check=True,
        )
        return done.stdout.strip()

    def client(self) -> Any:
        """A ``redis.Redis`` on this server (the caller closes it)."""
        import redis

        return redis.Redis(host=HOST, port=self.port, socket_timeout=START_TIMEOUT)

    def numsub(self, channel: str) -> int:
        """How many connections are subscribed to ``channel`` (PUBSUB NUMSUB; SHARDNUMSUB on a cluster node)."""
        command = "SHARDNUMSUB" if self.cluster else "NUMSUB"
        client = self.client()
        try:
            reply = client.execute_command("PUBSUB", command, channel)
        finally:
            client.close()
        return int(reply[1])

    def pubsub_clients(self) -> set[int]:
        """The ids of the connections subscribed to something (CLIENT LIST TYPE pubsub)."""
        lines = self.cli("CLIENT", "LIST", "TYPE", "pubsub").splitlines()
        return {int(line.split()[0].removeprefix("id=")) for line in lines if line.startswith("id=")}


class RedisCluster:
    """Three masters (no replicas), every slot assigned."""

    def __init__(self, masters: int = 3) -> None:
        self.nodes = [RedisServer(cluster=True) for _ in range(masters)]

    @property
    def url(self) -> str:
        return f"redis+cluster://{HOST}:{self.nodes[0].port}"

    def start(self) -> RedisCluster:
        for node in self.nodes:
            node.start()
        addresses = [f"{HOST}:{node.port}" for node in self.nodes]
        subprocess.run(
            [REDIS_CLI, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            timeout=30,
            check=True,
        )
        deadline = time.monotonic() + 30
        while not all("cluster_state:ok" in node.cli("CLUSTER", "INFO") for node in self.nodes):
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis Cluster did not reach cluster_state:ok")
            time.sleep(0.05)
        return self

    def node_of(self, channel: str) -> RedisServer:
        """The master serving ``channel``'s slot."""
        slot = int(self.nodes[0].cli("CLUSTER", "KEYSLOT", channel))
        for node in self.nodes:
            for line in node.cli("CLUSTER", "NODES").splitlines():
                fields = line.split()
                if "myself" in fields[2]:
                    for span in fields[8:]:
                        low, _, high = span.partition("-")
                        if low.isdigit() and int(low) <= slot <= int(high or low):
                            return node
        raise AssertionError(f"no master serves slot {slot}")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
