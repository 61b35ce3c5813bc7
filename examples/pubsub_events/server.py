"""The WebSocket side of the events example: each client hears the channels it asked for.

Run several, on one Redis (see ``README.md`` beside this file)::

    python -m ws4py serve examples.pubsub_events.server:EventsApp --port 8001 --broker redis://127.0.0.1:6379
    python -m ws4py serve examples.pubsub_events.server:EventsApp --port 8002 --broker redis://127.0.0.1:6379

A client connects to ``/events?channel=orders&channel=news`` (one or more
channels; names of letters, digits, ``.``, ``-``, ``_`` and ``:``); its
connection is subscribed to them on the process's broker
(``ws4py.pubsub.get_broker()``, which ``--broker`` sets) and receives, as
they are, the events a publisher (``publisher.py``, a Django view, a cron
job) sends to those channels with ``ws4py.pubsub.publish``. Nothing is kept
per client but the subscription, which the broker drops when the connection
closes. ``GET /`` is a page that shows the events of the channels in its own
query string (``/?channel=orders``).
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from ws4py.asyncio import ServerConnection
from ws4py.protocol import Request, Response
from ws4py.protocol.headers import Headers
from ws4py.pubsub import get_broker

__all__ = ["EventsApp"]

PAGE = Path(__file__).resolve().parent / "events.html"
#: What a channel name may be made of, and how many a client may ask for.
CHANNEL_NAME = re.compile(r"[A-Za-z0-9._:-]{1,64}")
MAX_CHANNELS = 16


def channels_of(target: str) -> list[str]:
    """The channels a request target asks for (``?channel=a&channel=b``); ``ValueError`` if one is not a name."""
    names = parse_qs(urlsplit(target).query).get("channel", [])
    if not names or len(names) > MAX_CHANNELS:
        raise ValueError(f"name 1 to {MAX_CHANNELS} channels: /events?channel=NAME&channel=...")
    for name in names:
        if not CHANNEL_NAME.fullmatch(name):
            raise ValueError(f"not a channel name: {name[:64]!r}")
    return names


class EventsApp:
    """The page at ``/``; at ``/events``, subscribe the connection to its channels and keep it open."""

    def __init__(self) -> None:
        self.page = PAGE.read_bytes()

    def serve_options(self, host: str | None, port: int) -> dict[str, object]:
        """``serve``'s options: the page and the check of the channels, before the handshake."""
        return {"process_request": self.process_request}

    def process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.target).path
        if path == "/events":
            try:
                channels_of(request.target)
            except ValueError as exc:
                return conn.respond(400, str(exc))
            return None
        if path == "/" and request.method == "GET":
            headers = Headers([("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")])
            return Response(200, "OK", headers, self.page)
        return conn.respond(404, "not found: events are at /events?channel=NAME")

    async def handler(self, conn: ServerConnection) -> None:
        """Subscribe ``conn`` to its channels; the broker writes the events, this only waits for the end."""
        get_broker().subscribe(conn, *channels_of(conn.request.target))
        async for _ in conn:
            pass  # clients have nothing to say; reading notices the close (and answers pings)
