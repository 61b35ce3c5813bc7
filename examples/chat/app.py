"""The chat as an application of ``python -m ws4py serve``, its room on a pub/sub channel.

Run, from the repository's root::

    python -m ws4py serve examples.chat.app:ChatApp --port 9000
    python -m ws4py serve examples.chat.app:ChatApp --port 9000 --workers 2 --broker redis://127.0.0.1:6379

(``scripts/serve``, ``server.py``, runs the same application in one process.)
Every connection is subscribed to the channel :data:`CHANNEL` of the
process's broker (``ws4py.pubsub.get_broker()``); what the room says to
everyone (messages, join, leave and rename notices) is published there, so
with a Redis broker the peers of every worker, or of several servers, are in
one room. What the room says to one peer (``welcome``, ``error``) goes to it
alone. The ``online`` counts add the peers of the other processes, learnt
from their presence notes (``presence.py``); with the in-process broker there
are no other processes, and no notes.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ws4py.asyncio import ServerConnection, broadcast
from ws4py.protocol import Request, Response
from ws4py.protocol.headers import Headers
from ws4py.pubsub import Broker, BrokerUnavailable, InProcessBroker, get_broker

sys.path.insert(0, str(Path(__file__).resolve().parent))  # chatroom.py and presence.py, beside this file
from chatroom import MAX_MESSAGE_BYTES, PAGE, WS_PATH, Reply, Room, allowed_origins
from presence import Presence

__all__ = ["CHANNEL", "ChatApp"]

#: The channel of the room: every page's connection is subscribed to it.
CHANNEL = "chat"

logger = logging.getLogger("chat")


class ChatApp:
    """The room, the page, and the handlers ``serve`` calls (see the module docstring)."""

    def __init__(self, broker: Broker | None = None) -> None:
        self.broker = broker if broker is not None else get_broker()
        self.page = PAGE.read_bytes()
        self.presence: Presence | None = None
        self._publisher: ThreadPoolExecutor | None = None
        self._leaving: set[asyncio.Task[None]] = set()
        if isinstance(self.broker, InProcessBroker):
            self.room = Room()
        else:
            # Redis's publish waits for its answer: one thread does it, in order, off the event loop.
            self._publisher = ThreadPoolExecutor(1, thread_name_prefix="chat-publish")
            self.presence = Presence(self.broker, lambda: self.room.here, self.publish, hold=[CHANNEL])
            self.room = Room(self.presence.elsewhere)

    def serve_options(self, host: str | None, port: int, origins: Iterable[str] = ()) -> dict[str, Any]:
        """The keyword arguments of ``ws4py.asyncio.serve`` for the chat on ``host:port``."""
        return {
            "origins": allowed_origins(host or "", port, origins),
            "process_request": self.process_request,
            "max_size": MAX_MESSAGE_BYTES,
        }

    async def startup(self) -> None:
        """Before serving: hear the other processes' presence notes (a shared broker only)."""
        if self.presence is not None:
            await self.presence.start()

    async def shutdown(self) -> None:
        """After serving: tell the other processes this one has left."""
        if self._leaving:
            await asyncio.wait(self._leaving, timeout=5.0)
        if self.presence is not None:
            await self.presence.stop()
        if self._publisher is not None:
            self._publisher.shutdown(wait=True)

    def process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        """``GET /``: the page; ``/ws``: on with the WebSocket handshake; anything else: 404."""
        path = request.target.split("?", 1)[0]
        if path == WS_PATH:
            return None  # the handshake decides (a plain GET there gets 426, an alien Origin 403)
        if path == "/" and request.method == "GET":
            headers = Headers([("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")])
            return Response(200, "OK", headers, self.page)
        return conn.respond(404, "not found: the chat is at /")

    async def handler(self, conn: ServerConnection) -> None:
        """One connection: hear the room's channel, send what the room replies, leave at the end."""
        self.broker.subscribe(conn, CHANNEL)  # and unsubscribed by the broker when it closes
        try:
            async for message in conn:
                await self._send(conn, self.room.receive(conn, message))
        finally:
            reply = self.room.leave(conn)
            if self._publisher is None:
                for text in reply.to_all:
                    self.broker.publish(CHANNEL, text)  # in-process: delivered now, nothing to wait for
            elif reply.to_all:
                # Not awaited here: the handler may be ending because the server shuts down (cancelled).
                task = asyncio.get_running_loop().create_task(self._send(conn, reply))
                self._leaving.add(task)
                task.add_done_callback(self._leaving.discard)

    async def publish(self, channel: str, text: str) -> None:
        """Publish ``text`` on ``channel``: at once in-process, else on the publishing thread.

        A broker that cannot take it (Redis down) loses it, with a log line:
        the room goes on, as the chat does with a peer that is too slow.
        """
        try:
            if self._publisher is None:
                self.broker.publish(channel, text)
            else:
                await asyncio.get_running_loop().run_in_executor(self._publisher, self.broker.publish, channel, text)
        except BrokerUnavailable as exc:
            logger.warning("chat: a message on %r was lost: %s", channel, exc)

    async def _send(self, conn: ServerConnection, reply: Reply) -> None:
        # broadcast() writes without waiting; a peer that does not keep up is skipped, not waited for.
        for text in reply.to_sender:
            broadcast([conn], text)
        if self.presence is not None:
            # The new count first: a process that hears this join, then a hello, counts the joined peer.
            await self.presence.update()
        for text in reply.to_all:
            await self.publish(CHANNEL, text)
