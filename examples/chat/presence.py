"""Who is online on the other processes of a chat room: presence notes on a pub/sub channel.

A chat on several workers (``python -m ws4py serve examples.chat.app:ChatApp
--workers 2 --broker redis://...``) has one room but one :class:`~chatroom.Room`
per process, each knowing its own peers. So each process publishes a note
``{"worker": id, "here": n}`` on :data:`CHANNEL` whenever its count changes
and every :data:`HEARTBEAT` seconds, and counts the latest notes of the
others; a process that stops says ``here: 0``, and the notes of one killed
outright expire after :data:`EXPIRY` seconds. A process that starts asks
(``"ask": true``) and every other answers at once. The count is eventually
right: a join or leave on another worker is counted once its note arrives.

A process hears the channel like any subscriber: through a WebSocket
connection subscribed to it. Here that is a connection to itself, on a Unix
socket of its own (the broker delivers to connections, not to functions),
which :class:`Presence` reads. That connection also holds the room's own
channel (``hold``), so the process is subscribed to it from the start: the
first peer's ``join`` is heard by its own process too (a Redis subscription
takes a round trip; one made by the first peer would come after its join).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from ws4py.asyncio import ClientConnection, Connection, ServerConnection, connect, serve
from ws4py.pubsub import Broker

#: The channel of the presence notes (no page subscribes to it).
CHANNEL = "chat.presence"
#: Seconds between two notes of a process whose count did not change.
HEARTBEAT = 2.0
#: Seconds after which a silent process's note no longer counts (it was killed).
EXPIRY = 3 * HEARTBEAT

logger = logging.getLogger("chat")


class Presence:
    """The peers joined on the other processes (:meth:`elsewhere`), from their notes on :data:`CHANNEL`.

    ``here()``: this process's own count; ``publish(channel, text)``: how to
    publish without holding up the event loop; ``hold``: more channels this
    process stays subscribed to while it runs.
    """

    def __init__(
        self,
        broker: Broker,
        here: Callable[[], int],
        publish: Callable[[str, str], Awaitable[None]],
        hold: Iterable[str] = (),
    ) -> None:
        self.id = uuid.uuid4().hex[:12]
        self._channels = (CHANNEL, *hold)
        self._broker = broker
        self._here = here
        self._publish = publish
        self._others: dict[str, tuple[int, float]] = {}  # worker -> (its count, when heard)
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._listener: ClientConnection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._sent: int | None = None  # the count of the last note

    def elsewhere(self) -> int:
        """How many have joined on the other processes, as their latest notes say."""
        now = time.monotonic()
        return sum(count for count, heard in self._others.values() if now - heard < EXPIRY)

    async def start(self) -> None:
        """Listen to the channel, ask the others for their counts, send notes from now on."""
        self._folder = tempfile.TemporaryDirectory(prefix="ws4py-chat-")
        path = str(Path(self._folder.name) / "presence.sock")
        self._server = await serve(self._subscribe, unix=path, compression=None, ping_interval=None)
        conn = await connect("ws://presence/", unix=path, compression=None, ping_interval=None)
        assert isinstance(conn, ClientConnection)
        self._listener = conn
        self._tasks = [asyncio.create_task(self._hear(conn)), asyncio.create_task(self._heartbeat())]
        await self._subscribed()
        await self.changed(ask=True)

    async def _subscribed(self, timeout: float = 5.0) -> None:
        # A Redis broker says when Redis confirmed a subscription; serving starts after that (or the timeout).
        subscribed = getattr(self._broker, "subscribed", None)
        deadline = time.monotonic() + timeout
        while subscribed is not None and time.monotonic() < deadline:
            if all(subscribed(channel) for channel in self._channels):
                return
            await asyncio.sleep(0.02)
        if subscribed is not None:
            logger.warning("chat: the broker has not confirmed the subscriptions after %.0f s; serving anyway", timeout)

    async def stop(self) -> None:
        """Tell the others this process has no one any more; stop listening."""
        for task in self._tasks:
            task.cancel()
        await self.changed(leaving=True)
        if self._listener is not None:
            await self._listener.close()
        self._server.close()
        await self._server.wait_closed()
        if self._folder is not None:
            self._folder.cleanup()

    async def update(self) -> None:
        """Publish this process's count if it changed since the last note."""
        if self._here() != self._sent:
            await self.changed()

    async def changed(self, *, ask: bool = False, leaving: bool = False) -> None:
        """Publish this process's count (it changed, or it is time, or the process starts or stops)."""
        here = 0 if leaving else self._here()
        self._sent = here
        await self._publish(CHANNEL, json.dumps({"worker": self.id, "here": here, "ask": ask}))

    async def _subscribe(self, conn: ServerConnection) -> None:
        # The server side of this process's own connection: the broker writes the notes to it.
        self._broker.subscribe(conn, *self._channels)
        await conn.wait_closed()

    async def _hear(self, conn: Connection) -> None:
        async for text in conn:
            with contextlib.suppress(ValueError, TypeError, KeyError):  # the held channels' messages, too
                note = json.loads(text)
                worker, here = str(note["worker"]), int(note["here"])
                if worker == self.id:
                    continue
                if here:
                    self._others[worker] = (here, time.monotonic())
                else:
                    self._others.pop(worker, None)
                if note.get("ask"):
                    await self.changed()

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            await self.changed()
