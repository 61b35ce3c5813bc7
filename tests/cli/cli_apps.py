"""Applications the tests serve with ``python -m ws4py serve cli_apps:...`` (run from this folder)."""

from __future__ import annotations

import os

from ws4py.asyncio import ServerConnection
from ws4py.messaging import Message
from ws4py.websocket import WebSocket


async def pid_echo(conn: ServerConnection) -> None:
    """Echo each message after the worker's pid: a test knows which worker a client is on."""
    async for message in conn:
        await conn.send(f"{os.getpid()} {message!s}")


def not_async(conn: ServerConnection) -> None:
    """A handler written without ``async``: ``serve`` must say so, not start workers that die."""


class PidEchoWebSocket(WebSocket):
    """The same on the threaded stack (``--threaded``)."""

    def received_message(self, message: Message) -> None:
        self.send(f"{os.getpid()} {message}")


class DiesAtStartup:
    """An application whose every worker fails as it starts: the supervisor must back off."""

    async def handler(self, conn: ServerConnection) -> None:
        raise AssertionError("never served")

    async def startup(self) -> None:
        raise RuntimeError("this application cannot start")


async def echo(conn: ServerConnection) -> None:
    """Echo each message as it came (text or binary)."""
    async for message in conn:
        await conn.send(message)
