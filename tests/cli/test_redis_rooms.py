"""Processes that share channels through a real Redis: the chat demo's room, the events example, ``publish``."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import redis
from cli_support import ROOT, TIMEOUT, free_port, run, serve

from redis_support import RedisServer
from ws4py.asyncio import Connection, connect

STEP = 10.0


async def _next(conn: Connection, kind: str | None = None) -> dict[str, Any]:
    """The next chat message (of ``kind``, skipping the others)."""
    while True:
        message = json.loads(str(await asyncio.wait_for(conn.recv(), STEP)))
        if kind is None or message["type"] == kind:
            return message


def test_two_servers_share_one_chat_room_through_redis(redis_server: RedisServer) -> None:
    ports = [free_port(), free_port()]
    servers = [
        serve("examples.chat.app:ChatApp", "--port", str(port), "--broker", redis_server.url, cwd=ROOT)
        for port in ports
    ]
    try:

        async def scenario() -> None:
            alice = await connect(f"ws://127.0.0.1:{ports[0]}/ws")
            bob = await connect(f"ws://127.0.0.1:{ports[1]}/ws")
            await alice.send(json.dumps({"type": "hello", "name": "alice"}))
            assert await _next(alice, "welcome") == {
                "type": "welcome",
                "name": "alice",
                "online": 1,
                "max_length": 2000,
            }
            assert await _next(alice, "join") == {"type": "join", "name": "alice", "online": 1}
            assert await _next(bob, "join") == {"type": "join", "name": "alice", "online": 1}
            await bob.send(json.dumps({"type": "hello", "name": "bob"}))
            # bob's server counts alice, on the other server, once her presence note arrived.
            assert (await _next(bob, "welcome"))["online"] == 2
            assert await _next(alice, "join") == {"type": "join", "name": "bob", "online": 2}
            await alice.send(json.dumps({"type": "say", "text": "hello from 1"}))
            await bob.send(json.dumps({"type": "say", "text": "hello from 2"}))
            for conn in (alice, bob):
                said = {(m["name"], m["text"]) for m in [await _next(conn, "message"), await _next(conn, "message")]}
                assert said == {("alice", "hello from 1"), ("bob", "hello from 2")}
            await bob.close()
            assert await _next(alice, "leave") == {"type": "leave", "name": "bob", "online": 1}
            await alice.close()

        asyncio.run(scenario())
        assert [server.stop() for server in servers] == [0, 0]
    finally:
        for server in servers:
            server.close()


def test_events_published_by_a_plain_process_reach_the_subscribers_of_two_servers(redis_server: RedisServer) -> None:
    ports = [free_port(), free_port()]
    app = "examples.pubsub_events.server:EventsApp"
    servers = [serve(app, "--port", str(port), "--broker", redis_server.url, cwd=ROOT) for port in ports]
    try:

        async def scenario() -> None:
            orders = [await connect(f"ws://127.0.0.1:{port}/events?channel=orders") for port in ports]
            news = await connect(f"ws://127.0.0.1:{ports[1]}/events?channel=news")
            # Both servers have subscribed to "orders" in Redis before the publisher starts (at most once).
            client = redis.Redis.from_url(redis_server.url)
            for _ in range(200):
                if dict(client.pubsub_numsub("orders")).get(b"orders") == 2:
                    break
                await asyncio.sleep(0.02)
            client.close()
            command = [sys.executable, "examples/pubsub_events/publisher.py", redis_server.url, "orders"]
            done = subprocess.run(
                [*command, "--count", "3", "--interval", "0"], cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT
            )
            assert done.returncode == 0, done.stderr
            assert done.stdout.count("2 server process(es) received it") == 3
            for conn in orders:
                events = [json.loads(str(await asyncio.wait_for(conn.recv(), STEP))) for _ in range(3)]
                assert [(e["channel"], e["n"]) for e in events] == [("orders", 1), ("orders", 2), ("orders", 3)]
            news_events = asyncio.ensure_future(news.recv())
            await asyncio.sleep(0.2)
            assert not news_events.done()  # a client of "news" hears nothing of "orders"
            news_events.cancel()
            for conn in [*orders, news]:
                await conn.close()

        asyncio.run(scenario())
        assert [server.stop() for server in servers] == [0, 0]
    finally:
        for server in servers:
            server.close()


def test_publish_prints_the_subscriber_count_and_fails_clearly_when_redis_is_down(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    listener = client.pubsub()
    listener.subscribe("ops")
    assert listener.get_message(timeout=STEP)["type"] == "subscribe"
    done = run("publish", redis_server.url, "ops", "deploy done")
    assert done.returncode == 0, done.stderr
    assert "published to 'ops': received by 1 subscribed process" in done.stdout
    message = listener.get_message(timeout=STEP)
    assert message is not None and b"deploy done" in message["data"]  # in ws4py's envelope
    listener.close()
    client.close()
    redis_server.stop()
    done = run("publish", redis_server.url, "ops", "deploy done", "--timeout", "1")
    assert done.returncode == 1
    assert f"error: cannot publish to {redis_server.url}:" in done.stderr
