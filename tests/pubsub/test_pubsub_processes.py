"""Server processes of each kind sharing a room: in-process under gevent, and through Redis across processes."""

from __future__ import annotations

import asyncio
import time

import pytest
from pubsub_support import RoomServer, run, within

from redis_support import RedisServer
from ws4py.asyncio import ClientConnection, connect
from ws4py.pubsub import publish


async def clients_of(*servers: RoomServer) -> list[ClientConnection]:
    """A client of each server, once its server-side connection is subscribed."""
    clients = [await within(connect(server.url)) for server in servers]
    for client in clients:
        assert await within(client.recv()) == "subscribed"
    return clients


def test_gevent_server_with_the_in_process_broker() -> None:
    server = RoomServer("gevent", "memory://")
    try:

        async def main() -> None:
            clients = await clients_of(server, server)
            await clients[0].send("hello")
            for client in clients:
                assert await within(client.recv()) == "hello"
            for client in clients:
                await client.close()

        run(main())
    finally:
        assert server.stop() == 0, server.errors
    assert not [line for line in server.errors if "Traceback" in line], server.errors


@pytest.mark.parametrize("kinds", [("asyncio", "threaded"), ("asyncio", "gevent")])
def test_two_server_processes_share_a_room_through_redis(redis_server: RedisServer, kinds: tuple[str, str]) -> None:
    servers = [RoomServer(kind, redis_server.url) for kind in kinds]
    try:

        async def main() -> None:
            clients = await clients_of(*servers)
            # Both processes subscribed on Redis: each message reaches both.
            deadline = time.monotonic() + 10
            while redis_server.numsub("room") < 2:
                assert time.monotonic() < deadline, "both processes subscribed"
                await asyncio.sleep(0.01)
            await clients[0].send("from the first")
            await clients[1].send("from the second")
            for client in clients:
                got = {await within(client.recv()), await within(client.recv())}
                assert got == {"from the first", "from the second"}
            assert publish(redis_server.url, "room", "from a cron job") == 2
            for client in clients:
                assert await within(client.recv()) == "from a cron job"
            for client in clients:
                await client.close()

        run(main())
    finally:
        statuses = [server.stop() for server in servers]
    assert statuses == [0, 0], [server.errors for server in servers]
