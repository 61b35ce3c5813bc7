"""1,000 clients over 2 workers (``python -m ws4py serve --workers 2 --broker redis://...``) through a real Redis.

Two publishers, 50 messages each, at the same time: a plain synchronous process
(``ws4py.pubsub.publish``, this test's, with no server) and a WebSocket client whose
worker publishes what it sends. Every client, whichever worker holds it, must receive
all 100 messages, each publisher's in the order published.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from scale_support import free_port, serving, wait_listening, wait_workers_ready

from redis_support import RedisServer
from ws4py.asyncio import Connection, connect
from ws4py.pubsub import publish

HOST = "127.0.0.1"
CLIENTS = 1_000
PER_PUBLISHER = 50
CHANNEL = "fanout"  # fanout_app.CHANNEL
#: Bound of one client's wait for its next message: far above what it takes.
RECV_TIMEOUT = 15.0


async def open_clients(url: str, count: int) -> list[tuple[Connection, int]]:
    """``count`` clients, 50 handshakes at a time; each with the pid of the worker that holds it."""
    gate = asyncio.Semaphore(50)

    async def open_one() -> tuple[Connection, int]:
        async with gate:
            conn = await connect(url, compression=None, open_timeout=RECV_TIMEOUT)
            hello = await asyncio.wait_for(conn.recv(), RECV_TIMEOUT)
            assert isinstance(hello, str) and hello.startswith("worker "), hello
            return conn, int(hello.split()[1])

    return await asyncio.gather(*(open_one() for _ in range(count)))


async def receive(conn: Connection, count: int) -> list[str]:
    got: list[str] = []
    try:
        while len(got) < count:
            message = await asyncio.wait_for(conn.recv(), RECV_TIMEOUT)
            assert isinstance(message, str)
            got.append(message)
    except asyncio.TimeoutError:
        raise AssertionError(f"a client received {len(got)} of {count} messages; the last: {got[-3:]}") from None
    return got


async def fan_out(redis: RedisServer, port: int, workers: list[int]) -> None:
    clients = await open_clients(f"ws://{HOST}:{port}/", CLIENTS)
    try:
        held = {pid: sum(1 for _, p in clients if p == pid) for pid in workers}
        assert all(held.values()) and sum(held.values()) == CLIENTS, f"clients per worker: {held}"
        # One Redis subscription per process (not per client), in place before anything is published.
        deadline = time.monotonic() + RECV_TIMEOUT
        while redis.numsub(CHANNEL) != len(workers):
            assert time.monotonic() < deadline, f"Redis subscribers of {CHANNEL!r}: {redis.numsub(CHANNEL)}"
            await asyncio.sleep(0.02)

        def from_plain_code() -> list[int]:
            return [publish(redis.url, CHANNEL, f"plain {i}") for i in range(PER_PUBLISHER)]

        async def from_a_client() -> None:
            for i in range(PER_PUBLISHER):
                await clients[0][0].send(f"client {i}")

        receiving = [asyncio.ensure_future(receive(conn, 2 * PER_PUBLISHER)) for conn, _ in clients]
        reached, _ = await asyncio.gather(asyncio.to_thread(from_plain_code), from_a_client())
        assert reached == [len(workers)] * PER_PUBLISHER  # publish() counts the processes it reached
        for got in await asyncio.gather(*receiving):
            for publisher in ("plain", "client"):
                mine = [m for m in got if m.startswith(publisher + " ")]
                assert mine == [f"{publisher} {i}" for i in range(PER_PUBLISHER)], mine
    finally:
        await asyncio.wait_for(asyncio.gather(*(conn.close() for conn, _ in clients)), RECV_TIMEOUT)


def test_thousand_clients_over_two_workers_get_every_message_in_order_per_publisher(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    port = free_port()
    argv = ["--port", str(port), "--workers", "2", "--broker", redis_server.url]
    with serving(argv, tmp_path / "serve.log") as served:
        workers = wait_workers_ready(served, 2)
        wait_listening(served, HOST, port)
        asyncio.run(asyncio.wait_for(fan_out(redis_server, port, workers), 60))
        served.check_alive()
