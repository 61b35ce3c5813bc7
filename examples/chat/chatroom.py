"""The chat's rules, shared by its servers (``app.py``, which ``server.py`` runs, and ``../echo_cherrypy_server.py``).

No sockets here: a server hands each peer's text message to :class:`Room` and
writes out what comes back (:class:`Reply`): some messages for that peer only,
some for everyone connected (a broadcast).

The messages are JSON objects, one per WebSocket text message, told apart by
``"type"``. From a page to the server:

- ``{"type": "hello", "name": "guest-1234"}``: join the chat under that name
  (1 to 32 characters). Sent again later: a change of name.
- ``{"type": "say", "text": "..."}``: a chat message, 1 to :data:`MAX_TEXT`
  characters.

From the server:

- ``{"type": "welcome", "name": ..., "online": n, "max_length": MAX_TEXT}``:
  to a peer that said hello, with the limit its page checks before sending.
- ``{"type": "join" | "leave", "name": ..., "online": n}``: to everyone, when a
  peer joins or leaves (``online``: how many have joined and are connected).
- ``{"type": "rename", "old": ..., "name": ..., "online": n}``: to everyone.
- ``{"type": "message", "name": ..., "text": ...}``: to everyone.
- ``{"type": "error", "text": ...}``: to the sender only, for a message the
  server refuses (too long, empty, not JSON, before hello...); the connection
  stays open.

A client that never says hello (``examples/manager_clients.py``) is a
listener: it receives every broadcast and counts for nobody's ``online``.
Pages show every text with ``textContent``: a message is data, never markup.
"""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The longest chat message, in characters (Unicode code points).
MAX_TEXT = 2000
#: The longest name, in characters.
MAX_NAME = 32
#: What a server accepts as one WebSocket message, in bytes: far above the
#: longest JSON a page sends (``MAX_TEXT`` characters of 4 UTF-8 bytes, or
#: 6-byte escapes), so an overlong chat message gets an ``error`` notice; only
#: a client that is no chat page meets the protocol's 1009 close.
MAX_MESSAGE_BYTES = 64 * 1024
#: The page, served at ``/`` by both servers.
PAGE = Path(__file__).resolve().parent / "chat.html"
#: Where the page opens its WebSocket (``examples/manager_clients.py`` connects there too).
WS_PATH = "/ws"


def command_line(doc: str | None) -> argparse.Namespace:
    """The arguments of a chat server (both take the same ones): ``host``, ``port`` and ``origin``, a list."""
    parser = argparse.ArgumentParser(description=(doc or "").partition("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--origin", action="append", default=[], help="another origin whose pages may connect")
    return parser.parse_args()


def allowed_origins(host: str, port: int, extra: Iterable[str] = ()) -> list[str | None]:
    """The ``Origin`` values a chat server on ``host:port`` accepts.

    The page's own origin, spelled as a browser may reach it (``localhost`` and
    ``127.0.0.1`` are the same machine; a server on every interface, ``0.0.0.0``,
    is reached under names it cannot know: name them in ``extra``, such as
    ``http://chat.example:9000``); other web sites get 403, so no page elsewhere
    can make a visitor's browser join the chat. ``None``: a client that sends no
    ``Origin`` (no browser) may connect.
    """
    hosts = {host}
    if host in ("localhost", "127.0.0.1", "0.0.0.0", "", "::", "::1"):
        hosts = {"localhost", "127.0.0.1", "::1"}
    spelled = {f"[{name}]" if ":" in name else name for name in hosts}
    suffix = "" if port == 80 else f":{port}"  # a browser leaves the scheme's default port out
    return [*sorted(f"http://{name}{suffix}" for name in spelled), *extra, None]


def encode(kind: str, **fields: Any) -> str:
    """One server message as JSON text."""
    return json.dumps({"type": kind, **fields}, ensure_ascii=False)


@dataclass
class Reply:
    """What a server sends after one event: ``to_sender`` to that peer, ``to_all`` to everyone."""

    to_sender: list[str] = field(default_factory=list)
    to_all: list[str] = field(default_factory=list)


class Room:
    """Who has joined under which name; turns each peer's message into a :class:`Reply`.

    A peer is any hashable object standing for one connection. Thread-safe: the
    CherryPy server calls it from its manager's thread and from engine threads.
    ``elsewhere()``: how many have joined the same room on other processes
    (a chat on several workers, ``app.py``), counted in every ``online``.
    """

    def __init__(self, elsewhere: Callable[[], int] | None = None) -> None:
        self._names: dict[Hashable, str] = {}
        self._lock = threading.Lock()
        self._elsewhere = elsewhere or (lambda: 0)

    @property
    def online(self) -> int:
        """How many peers have joined and are still connected (here and elsewhere)."""
        return len(self._names) + self._elsewhere()

    @property
    def here(self) -> int:
        """How many peers of this process have joined and are still connected."""
        return len(self._names)

    def receive(self, peer: Hashable, message: str | bytes) -> Reply:
        """A message from ``peer``: what to send, and to whom."""
        if not isinstance(message, str):
            return _refuse("binary messages are not part of this chat: send JSON text")
        try:
            data = json.loads(message)
        except ValueError:
            return _refuse('not a chat message: send JSON text such as {"type": "say", "text": "hi"}')
        if not isinstance(data, dict):
            return _refuse("not a chat message: send a JSON object")
        kind = data.get("type")
        if kind == "hello":
            return self._hello(peer, data.get("name"))
        if kind == "say":
            return self._say(peer, data.get("text"))
        return _refuse(f"unknown message type: {str(kind)[:40]!r}")

    def leave(self, peer: Hashable) -> Reply:
        """``peer``'s connection is gone: everyone learns it, if it had joined."""
        with self._lock:
            name = self._names.pop(peer, None)
            online = len(self._names) + self._elsewhere()
        if name is None:
            return Reply()
        return Reply(to_all=[encode("leave", name=name, online=online)])

    def _hello(self, peer: Hashable, name: object) -> Reply:
        if not isinstance(name, str) or not name.strip():
            return _refuse("a name is needed: 1 to 32 characters")
        name = " ".join(name.split())
        if len(name) > MAX_NAME:
            return _refuse(f"that name is too long: {len(name)} characters, the limit is {MAX_NAME}")
        with self._lock:
            old = self._names.get(peer)
            self._names[peer] = name
            online = len(self._names) + self._elsewhere()
        welcome = encode("welcome", name=name, online=online, max_length=MAX_TEXT)
        if old is None:
            return Reply(to_sender=[welcome], to_all=[encode("join", name=name, online=online)])
        if old == name:
            return Reply(to_sender=[welcome])
        return Reply(to_sender=[welcome], to_all=[encode("rename", old=old, name=name, online=online)])

    def _say(self, peer: Hashable, text: object) -> Reply:
        name = self._names.get(peer)
        if name is None:
            return _refuse('say hello first: {"type": "hello", "name": "..."}')
        if not isinstance(text, str) or not text.strip():
            return _refuse("an empty message is not sent")
        if len(text) > MAX_TEXT:
            return _refuse(f"message not sent: it has {len(text):,} characters, the limit is {MAX_TEXT:,}")
        return Reply(to_all=[encode("message", name=name, text=text)])


def _refuse(text: str) -> Reply:
    return Reply(to_sender=[encode("error", text=text)])
