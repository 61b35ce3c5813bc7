"""WebSocket URIs (RFC 6455 section 3): ``ws://`` and ``wss://``, and ws4py's ``ws+unix://``."""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import urlsplit

__all__ = ["WebSocketURI", "parse_uri"]


class WebSocketURI(NamedTuple):
    """A parsed WebSocket URI.

    ``resource`` is the path and query sent in the request line (``/`` at
    least; the fragment is dropped, as section 3 requires). ``unix_path`` is
    set for ``ws+unix://PATH`` and ``wss+unix://PATH``: the socket to connect
    to, with ``host`` ``localhost`` and ``port`` ``None``.
    """

    secure: bool
    host: str
    port: int | None
    resource: str
    unix_path: str | None = None


def parse_uri(uri: str, *, unix: bool = False) -> WebSocketURI:
    """Parse ``uri``; ``unix`` also admits the ``ws+unix``/``wss+unix`` schemes.

    Raises ``ValueError`` naming what is wrong: the scheme, a missing host or
    socket path, a port out of range.
    """
    parts = urlsplit(uri)
    schemes = ("ws", "wss", "ws+unix", "wss+unix") if unix else ("ws", "wss")
    if parts.scheme not in schemes:
        raise ValueError(f"not a WebSocket URI: {uri!r} (the scheme must be {', '.join(schemes)})")
    secure = parts.scheme.startswith("wss")
    if parts.scheme.endswith("+unix"):
        if not parts.path:
            raise ValueError(f"no socket path in {uri!r}")
        return WebSocketURI(secure, "localhost", None, "/", parts.path)
    if not parts.hostname:
        raise ValueError(f"no host in {uri!r}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"invalid port in {uri!r}") from None
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return WebSocketURI(secure, parts.hostname, port or (443 if secure else 80), resource)
