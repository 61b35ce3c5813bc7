"""The Redis broker on a Redis Cluster of three masters: sharded pub/sub (SSUBSCRIBE/SPUBLISH) on every master."""

from __future__ import annotations

from aio_support import HOST, serving
from pubsub_support import eventually, run, within

from redis_support import RedisCluster, RedisServer
from ws4py.asyncio import Connection, connect
from ws4py.pubsub import BrokerUnavailable, RedisBroker, publish


def channels_on_each_master(cluster: RedisCluster) -> list[str]:
    """A channel name whose slot each master serves, in the order of ``cluster.nodes``."""
    found: dict[int, str] = {}
    n = 0
    while len(found) < len(cluster.nodes):
        channel = f"room-{n}"
        found.setdefault(cluster.nodes.index(cluster.node_of(channel)), channel)
        n += 1
    return [found[i] for i in range(len(cluster.nodes))]


def test_sharded_pubsub_delivers_a_channel_on_each_master(redis_cluster: RedisCluster) -> None:
    channels = channels_on_each_master(redis_cluster)

    async def main() -> None:
        with RedisBroker(redis_cluster.url) as broker, RedisBroker(redis_cluster.url) as publisher:
            assert broker.cluster

            async def handler(websocket: Connection) -> None:
                broker.subscribe(websocket, *channels)
                await websocket.send("subscribed")
                await websocket.wait_closed()

            async with serving(handler) as server:
                port = server.sockets[0].getsockname()[1]
                client = await within(connect(f"ws://{HOST}:{port}"))
                assert await within(client.recv()) == "subscribed"
                await eventually(lambda: all(broker.subscribed(c) for c in channels), "subscribed on every master")
                for node, channel in zip(redis_cluster.nodes, channels, strict=True):
                    # One sharded subscription, on the master of the channel's slot.
                    assert node.numsub(channel) == 1
                    assert [other.numsub(channel) for other in redis_cluster.nodes if other is not node] == [0, 0]
                for channel in channels:
                    publisher.publish(channel, f"broker on {channel}")
                    assert publish(redis_cluster.url, channel, f"one-shot on {channel}") == 1
                received = [await within(client.recv()) for _ in range(2 * len(channels))]
                assert received == [f"{how} on {c}" for c in channels for how in ("broker", "one-shot")]
                await client.close()
                await eventually(
                    lambda: all(n.numsub(c) == 0 for n, c in zip(redis_cluster.nodes, channels, strict=True)),
                    "SUNSUBSCRIBEd",
                )

    run(main())


def test_subscribing_when_no_cluster_node_answers_raises_and_leaves_nothing_subscribed() -> None:
    nowhere = RedisServer()  # a free port, no server
    try:

        async def main() -> None:
            with RedisBroker(f"redis+cluster://{HOST}:{nowhere.port}", publish_timeout=0.5) as broker:

                async def handler(websocket: Connection) -> None:
                    try:
                        broker.subscribe(websocket, "room")
                    except BrokerUnavailable:
                        await websocket.send("unavailable")
                    await websocket.wait_closed()

                async with serving(handler) as server:
                    port = server.sockets[0].getsockname()[1]
                    client = await within(connect(f"ws://{HOST}:{port}"))
                    assert await within(client.recv()) == "unavailable"
                    assert not broker.subscribers("room") and not broker.subscribed("room")
                    await client.close()

        run(main())
    finally:
        nowhere.stop()
