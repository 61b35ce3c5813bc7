"""The Redis broker on a single Redis: sharing, order and envelope, gaps, faults, unsubscribing, timeouts."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aio_support import HOST, serving
from pubsub_support import Gaps, call_bounded, eventually, run, within

from redis_support import RedisServer
from ws4py.asyncio import ClientConnection, Connection, connect
from ws4py.pubsub import BrokerUnavailable, RedisBroker, publish
from ws4py.pubsub.envelope import decode


@asynccontextmanager
async def room(broker: RedisBroker, clients: int = 1, **options: object) -> AsyncIterator[list[ClientConnection]]:
    """A server whose connections subscribe to ``room`` on ``broker``, and ``clients`` clients of it."""

    async def handler(websocket: Connection) -> None:
        broker.subscribe(websocket, "room")
        await websocket.send("subscribed")
        await websocket.wait_closed()

    async with serving(handler, **options) as server:
        port = server.sockets[0].getsockname()[1]
        connections = [await within(connect(f"ws://{HOST}:{port}", max_size=None)) for _ in range(clients)]
        for client in connections:
            assert await within(client.recv()) == "subscribed"
        await eventually(lambda: broker.subscribed("room"), "subscribed on Redis")
        try:
            yield connections
        finally:
            for client in connections:
                client.abort()


async def receive_until(client: ClientConnection, last: str) -> list[str]:
    received: list[str] = []
    while not received or received[-1] != last:
        received.append(await within(client.recv()))
    return received


def test_two_brokers_share_a_channel_in_order_per_publisher_with_id_and_sequence(redis_server: RedisServer) -> None:
    witness = redis_server.client().pubsub()
    witness.subscribe("room")

    async def main() -> None:
        with RedisBroker(redis_server.url) as first, RedisBroker(redis_server.url) as second:
            async with room(first, 2) as first_clients, room(second, 1) as second_clients:
                assert redis_server.numsub("room") == 3  # one subscription per process (broker), and the witness
                for n in range(50):
                    first.publish("room", f"first {n}")
                    second.publish("room", f"second {n}")
                for client in first_clients + second_clients:
                    received = [await within(client.recv()) for _ in range(100)]
                    for name in ("first", "second"):
                        assert [m for m in received if m.startswith(name)] == [f"{name} {n}" for n in range(50)]
            envelopes = []
            while len(envelopes) < 100:
                message = await asyncio.to_thread(witness.get_message, timeout=5)
                assert message is not None, "the witness missed messages"
                if message["type"] == "message":
                    envelopes.append(decode(message["data"]))
            for broker in (first, second):
                mine = [e for e in envelopes if e.publisher.hex() == broker.publisher_id]
                assert [e.seq for e in mine] == list(range(1, 51))

    try:
        run(main())
    finally:
        witness.close()


def test_messages_published_while_the_subscriber_connection_is_down_are_reported_as_a_gap(
    redis_server: RedisServer,
) -> None:
    gaps = Gaps()

    async def main() -> None:
        # A slow reconnection (0.25 to 0.5 s), so that the messages below are missed for sure.
        with RedisBroker(redis_server.url, on_gap=gaps, backoff=(0.5, 0.5)) as broker:
            async with room(broker) as (client,):
                assert publish(redis_server.url, "room", "first") == 1
                assert await within(client.recv()) == "first"
                redis_server.cli("CLIENT", "KILL", "TYPE", "pubsub")
                assert [publish(redis_server.url, "room", f"missed {n}") for n in range(7)] == [0] * 7
                await eventually(lambda: redis_server.numsub("room") == 1, "subscribed again")
                assert publish(redis_server.url, "room", "last") == 1
                assert await within(client.recv()) == "last"
                assert client.open
        assert [gap.missed for gap in gaps.gaps] == [7]
        assert gaps.gaps[0].channel == "room"

    run(main())


def test_redis_killed_and_restarted_the_broker_resubscribes_and_reports_the_gap(redis_server: RedisServer) -> None:
    gaps = Gaps()

    async def main() -> None:
        with RedisBroker(redis_server.url, on_gap=gaps, backoff=(0.5, 0.5), publish_timeout=1.0) as broker:
            async with room(broker, 2) as clients:
                assert publish(redis_server.url, "room", "before") == 1  # this process's publisher
                for client in clients:
                    assert await within(client.recv()) == "before"
                redis_server.kill()
                with pytest.raises(BrokerUnavailable):
                    await asyncio.to_thread(call_bounded, lambda: broker.publish("room", "while down"))
                redis_server.start()  # on the same port, empty
                # Published after the restart, before the broker is back: missed.
                missed = [publish(redis_server.url, "room", f"missed {n}") for n in range(3)]
                await eventually(lambda: redis_server.numsub("room") == 1, "subscribed again")
                broker.publish("room", "again")  # the broker's publisher connection is back by itself
                assert publish(redis_server.url, "room", "after") == 1  # the gap is known now
                for client in clients:
                    assert await receive_until(client, "after") == ["again", "after"]
                    assert client.open
                    await within(await client.ping())  # the server still serves it
        assert missed == [0, 0, 0]
        assert [gap.missed for gap in gaps.gaps] == [3]

    run(main())


def test_redis_dropping_a_slow_subscriber_past_its_output_buffer_limit_the_broker_recovers(
    redis_server: RedisServer,
) -> None:
    redis_server.cli("CONFIG", "SET", "client-output-buffer-limit", "pubsub 256kb 128kb 1")
    gaps = Gaps()
    total, size = 500, 65536  # 32 MB: more than the sockets' buffers and the limit hold

    async def main() -> None:
        # max_pending=1: while the event loop is busy, the reader waits and Redis holds the rest.
        with (
            RedisBroker(redis_server.url, on_gap=gaps, max_pending=1) as broker,
            RedisBroker(redis_server.url) as publisher,
        ):
            async with room(broker, write_limit=256 * 1024 * 1024) as (client,):
                (before,) = redis_server.pubsub_clients()

                def flood() -> None:
                    for n in range(total):
                        publisher.publish("room", f"{n:06d}".ljust(size, "x"))

                flooding = threading.Thread(target=flood)
                flooding.start()
                flooding.join(20)  # the loop is blocked meanwhile: the subscriber does not keep up
                assert not flooding.is_alive()
                assert "output buffer limits" in redis_server.log(), "Redis did not drop the subscriber"
                # Subscribed again on a new connection (Redis closes the old one asynchronously).
                await eventually(lambda: redis_server.pubsub_clients() - {before}, "connected again", timeout=20)
                await eventually(lambda: broker.subscribed("room"), "subscribed again")
                assert before not in redis_server.pubsub_clients()
                publisher.publish("room", "marker")
                received = await receive_until(client, "marker")
                assert client.open
        delivered = len(received) - 1
        assert 0 < delivered < total
        assert sum(gap.missed for gap in gaps.gaps) == total - delivered
        assert {gap.publisher for gap in gaps.gaps} == {publisher.publisher_id}

    run(main(), timeout=60)


def test_a_reader_waits_for_a_busy_event_loop_and_redis_holds_the_backlog(redis_server: RedisServer) -> None:
    """No queue grows in the process: while the loop is busy, Redis holds what is not read yet; nothing is lost."""
    total, size = 500, 65536  # 32 MB, more than the sockets' buffers hold

    async def main() -> None:
        gaps = Gaps()
        with (
            RedisBroker(redis_server.url, on_gap=gaps, max_pending=4) as broker,
            RedisBroker(redis_server.url) as publisher,
        ):
            async with room(broker, write_limit=256 * 1024 * 1024) as (client,):
                for n in range(total):  # the event loop is busy all along
                    publisher.publish("room", f"{n:06d}".ljust(size, "x"))
                held = max(
                    int(field.removeprefix("omem="))
                    for field in redis_server.cli("CLIENT", "LIST", "TYPE", "pubsub").split()
                    if field.startswith("omem=")
                )
                assert held > 1024 * 1024, "the subscriber process took the backlog in instead of Redis"
                received = [await within(client.recv()) for _ in range(total)]
                assert [m[:6] for m in received] == [f"{n:06d}" for n in range(total)]
        assert not gaps.gaps

    run(main(), timeout=60)


def test_subscribing_and_unsubscribing_in_quick_succession_keeps_the_connection(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        with RedisBroker(redis_server.url) as broker:
            async with room(broker) as (client,):
                (connection,) = broker.subscribers("room")
                broker.subscribe(connection, "anchor")  # the subscriber connection stays all along
                await eventually(lambda: broker.subscribed("anchor"), "anchored")
                for _ in range(30):
                    broker.unsubscribe(connection, "room")
                    await asyncio.sleep(0.01 * (_ % 3))  # some changes seen one by one, some together
                    broker.subscribe(connection, "room")
                await eventually(lambda: redis_server.numsub("room") == 1, "subscribed in the end")
                await eventually(lambda: broker.subscribed("room"), "confirmed")
                assert publish(redis_server.url, "room", "still here") == 1
                assert await within(client.recv()) == "still here"
                assert len(redis_server.pubsub_clients()) == 1

    run(main())
    assert not [r for r in caplog.records if "lost" in r.getMessage()], "the subscriber connection was dropped"


def test_a_message_that_is_not_an_envelope_is_dropped_and_a_failing_on_gap_is_logged(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    def on_gap(gap: object) -> None:
        raise RuntimeError("a broken on_gap")

    async def main() -> None:
        with RedisBroker(redis_server.url, on_gap=on_gap) as broker:
            async with room(broker) as (client,):
                raw = redis_server.client()
                try:
                    assert raw.publish("room", b"not ws4py's") == 1
                finally:
                    raw.close()
                assert publish(redis_server.url, "room", "one") == 1
                redis_server.cli("CLIENT", "KILL", "TYPE", "pubsub")
                publish(redis_server.url, "room", "missed")
                await eventually(lambda: redis_server.numsub("room") == 1, "subscribed again")
                assert publish(redis_server.url, "room", "three") == 1
                assert await receive_until(client, "three") == ["one", "three"]

    run(main())
    messages = [r.getMessage() for r in caplog.records]
    assert any("that is not ws4py's" in m for m in messages)
    assert any("missed 1 message(s) from publisher" in m for m in messages)
    assert any("on_gap failed" in m for m in messages)


def test_publishing_while_redis_is_down_or_hung_raises_broker_unavailable(redis_server: RedisServer) -> None:
    with RedisBroker(redis_server.url, publish_timeout=0.5) as broker:
        broker.publish("room", "up")
        assert redis_server.process is not None
        os.kill(redis_server.process.pid, signal.SIGSTOP)  # hung: connections open, no answer
        try:
            with pytest.raises(BrokerUnavailable, match="in time"):
                call_bounded(lambda: broker.publish("room", "hung"))
            with pytest.raises(BrokerUnavailable):
                call_bounded(lambda: publish(redis_server.url, "room", "hung", timeout=0.5))
        finally:
            os.kill(redis_server.process.pid, signal.SIGCONT)
        redis_server.kill()
        with pytest.raises(BrokerUnavailable, match="unavailable"):
            call_bounded(lambda: broker.publish("room", "down"))


def test_one_shot_publish_with_no_redis_raises_and_with_redis_counts_subscribed_processes(
    redis_server: RedisServer,
) -> None:
    assert publish(redis_server.url, "room", "nobody listens") == 0
    dead = RedisServer()  # a free port with no server
    with pytest.raises(BrokerUnavailable):
        call_bounded(lambda: publish(dead.url, "room", "hello", timeout=1.0))
    dead.stop()
    with pytest.raises(ValueError, match="scheme"):
        publish("http://127.0.0.1:1", "room", "hello")


def test_redis_unsubscribes_when_the_last_local_subscriber_leaves(redis_server: RedisServer) -> None:
    async def main() -> None:
        with RedisBroker(redis_server.url) as broker:
            async with room(broker, 3) as clients:
                assert redis_server.numsub("room") == 1  # three connections, one subscription
                await clients[0].close()
                await clients[1].close()
                await eventually(lambda: len(broker.subscribers("room")) == 1, "two let go")
                # Once the broker's subscriber connection has taken a later change, "room" is still there.
                (last,) = broker.subscribers("room")
                broker.subscribe(last, "later")
                await eventually(lambda: broker.subscribed("later"), "a later change taken")
                assert redis_server.numsub("room") == 1
                broker.unsubscribe(last, "room")
                await eventually(lambda: redis_server.numsub("room") == 0, "room UNSUBSCRIBEd")
                assert redis_server.numsub("later") == 1
                await clients[2].close()
                await eventually(lambda: not broker.subscribers("room"), "all let go")
                await eventually(
                    lambda: redis_server.numsub("room") + redis_server.numsub("later") == 0, "UNSUBSCRIBEd"
                )
                assert not broker.subscribed("room")
                await eventually(lambda: not redis_server.pubsub_clients(), "no subscriber connection left")

    run(main())


FORKING = """
import os, sys
from ws4py.pubsub import RedisBroker, publish
broker = RedisBroker(sys.argv[1])
broker.publish("room", "parent")
publish(sys.argv[1], "room", "parent one-shot")
pid = os.fork()
who = "child" if pid == 0 else "parent"
broker.publish("room", who)
publish(sys.argv[1], "room", who + " one-shot")
print(who, broker.publisher_id, flush=True)
if pid:
    os.waitpid(pid, 0)
broker.close()
"""


def test_a_forked_child_publishes_under_an_id_of_its_own(redis_server: RedisServer) -> None:
    """A pre-fork server's workers must not look like one publisher: their numbers would clash."""
    witness = redis_server.client().pubsub()
    witness.subscribe("room")
    try:
        done = subprocess.run(
            [sys.executable, "-c", FORKING, redis_server.url], capture_output=True, text=True, timeout=20, check=True
        )
        ids = dict(line.split() for line in done.stdout.splitlines())
        assert ids["parent"] != ids["child"]
        envelopes = []
        while len(envelopes) < 6:
            message = witness.get_message(timeout=5)
            assert message is not None, "the witness missed messages"
            if message["type"] == "message":
                envelopes.append(decode(message["data"]))
        by_publisher: dict[bytes, list[int]] = {}
        for envelope in envelopes:
            by_publisher.setdefault(envelope.publisher, []).append(envelope.seq)
        # parent broker: 1, 2; parent one-shot: 1, 2; child broker: 1; child one-shot: 1.
        assert sorted(by_publisher.values()) == [[1], [1], [1, 2], [1, 2]]
    finally:
        witness.close()
