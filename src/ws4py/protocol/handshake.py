"""The opening handshake of RFC 6455 section 4, both sides, sans I/O.

A server feeds the request bytes to :class:`ServerHandshake` (or builds a
:class:`~ws4py.protocol.http11.Request` itself, as a WSGI server does from its
environ), then calls :meth:`~ServerHandshake.accept`, which checks the request
and returns the 101 response, or raises :class:`~ws4py.exc.HandshakeError`
whose ``status`` and ``headers`` :meth:`~ServerHandshake.reject` turns into the
refusal. A client sends :meth:`ClientHandshake.request_bytes` and feeds the
answer to :meth:`ClientHandshake.receive_data`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..exc import HandshakeError
from .connection import Connection, Role
from .deflate import EXTENSION_NAME, DeflateOptions, PerMessageDeflate
from .headers import Headers, parse_extensions, split_tokens
from .http11 import (
    MAX_HEADERS,
    MAX_SIZE,
    HeadReader,
    Request,
    Response,
    check_field,
    serialize_request,
    serialize_response,
)

__all__ = [
    "HANDSHAKE_RESPONSE_FIELDS",
    "WS_KEY",
    "WS_VERSION",
    "accept_key",
    "check_extra_response_headers",
    "ServerHandshake",
    "ClientHandshake",
]

#: The GUID of RFC 6455 that the opening handshake appends to the client's key before hashing it.
WS_KEY = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: The protocol versions a server accepts in ``Sec-WebSocket-Version``: 13 (RFC 6455).
WS_VERSION = (13,)

SubprotocolSelector = Callable[[list[str]], "str | None"]

#: The fields of the 101 response that the handshake itself sets (lower case): the extra
#: fields an application adds may not name them (the subprotocol is chosen with
#: ``select_subprotocol``, the extensions are negotiated).
HANDSHAKE_RESPONSE_FIELDS = frozenset(
    ("upgrade", "connection", "sec-websocket-accept", "sec-websocket-protocol", "sec-websocket-extensions")
)


def check_extra_response_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """``headers`` as a list, once checked as extra fields of a 101 response.

    Raises ``ValueError`` for a field the handshake sets itself (see
    :data:`HANDSHAKE_RESPONSE_FIELDS`) and for a name or value that is not a
    valid header field (RFC 9110 5.1 and 5.5: a token, no control characters).
    """
    checked = list(headers)
    for name, value in checked:
        check_field(name, value)
        if name.lower() in HANDSHAKE_RESPONSE_FIELDS:
            raise ValueError(f"the handshake sets {name} itself: it cannot be an extra response header")
    return checked


def accept_key(key: str | bytes) -> str:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key``."""
    if isinstance(key, str):
        key = key.encode("ascii")
    return base64.b64encode(hashlib.sha1(key + WS_KEY).digest()).decode("ascii")


def _single(headers: Headers, name: str) -> str:
    values = headers.get_all(name)
    if not values:
        raise HandshakeError(f"missing {name} header")
    if len(values) > 1:
        raise HandshakeError(f"more than one {name} header")
    return values[0]


def _origin_key(origin: str | None) -> str | None:
    """An ``Origin`` value as compared: scheme and host are case-insensitive (RFC 6454)."""
    return None if origin is None else origin.lower()


def _has_token(headers: Headers, name: str, token: str) -> bool:
    """Whether one of the comma-separated elements of the ``name`` fields is ``token`` (lowercase), in any case."""
    # Plain loops: every handshake asks twice, and a generator costs three times as much.
    for value in headers.get_all(name):
        for part in value.split(","):
            if part.strip().lower() == token:
                return True
    return False


class ServerHandshake:
    """The server side of one opening handshake.

    ``subprotocols`` lists what the server speaks, in its order of
    preference; ``select_subprotocol(offered)`` overrides the choice (return
    ``None`` for none). ``compression`` is a :class:`DeflateOptions` to accept
    permessage-deflate, or ``None``. ``origins``, when given, lists the
    allowed ``Origin`` values (``None`` in it allows requests without one),
    compared without regard to case (RFC 6454 serialises scheme and host in
    lower case); others get 403. ``response_headers`` are extra fields of the
    101 response, after the negotiated ones (checked with
    :func:`check_extra_response_headers` when the response is made: a bad one
    refuses the handshake with 500).
    """

    def __init__(
        self,
        *,
        subprotocols: Sequence[str] | None = None,
        select_subprotocol: SubprotocolSelector | None = None,
        compression: DeflateOptions | None = None,
        origins: Iterable[str | None] | None = None,
        max_request_size: int = MAX_SIZE,
        max_headers: int = MAX_HEADERS,
    ) -> None:
        self.subprotocols = list(subprotocols or [])
        self.select_subprotocol = select_subprotocol
        self.compression = compression
        self.origins = None if origins is None else {_origin_key(origin) for origin in origins}
        self._reader = HeadReader(is_request=True, max_size=max_request_size, max_headers=max_headers)
        self.request: Request | None = None
        self.subprotocol: str | None = None
        self.extensions: list[PerMessageDeflate] = []
        self.response_headers: list[tuple[str, str]] = []

    @property
    def leftover(self) -> bytes:
        """Bytes received after the request head (the client's first frames)."""
        return self._reader.leftover

    def receive_data(self, data: bytes | bytearray | memoryview) -> Request | None:
        """Feed request bytes; the parsed request once complete, else ``None``."""
        request = self._reader.feed(data)
        if request is not None:
            self.request = request  # type: ignore[assignment]
        return self.request

    def negotiate(self, request: Request) -> list[tuple[str, str]]:
        """Check ``request`` and return the 101 response's header fields.

        Raises :class:`HandshakeError` with the status to refuse with: 405 for
        a method other than GET, 426 (with ``Sec-WebSocket-Version: 13``) for
        a version other than 13, 403 for a refused Origin, 400 otherwise.
        """
        self.request = request
        headers = request.headers
        if request.method != "GET":
            raise HandshakeError(f"method {request.method} is not GET", 405, [("Allow", "GET")])
        if len(headers.get_all("Host")) != 1:
            raise HandshakeError("a WebSocket request needs exactly one Host header")
        if not _has_token(headers, "Upgrade", "websocket"):
            raise HandshakeError("missing or invalid Upgrade header: expected 'websocket'")
        if not _has_token(headers, "Connection", "upgrade"):
            raise HandshakeError("missing or invalid Connection header: expected 'Upgrade'")
        versions = headers.get_all("Sec-WebSocket-Version")
        if versions != ["13"]:
            raise HandshakeError(
                f"unsupported Sec-WebSocket-Version: {', '.join(versions) or 'none'}",
                426,
                [("Sec-WebSocket-Version", "13")],
            )
        key = _single(headers, "Sec-WebSocket-Key")
        try:
            raw_key = base64.b64decode(key.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raw_key = b""
        if len(raw_key) != 16:
            raise HandshakeError(f"invalid Sec-WebSocket-Key: {key!r}")
        if self.origins is not None:
            origins = headers.get_all("Origin")
            if len(origins) > 1 or _origin_key(origins[0] if origins else None) not in self.origins:
                raise HandshakeError(f"origin not allowed: {', '.join(origins) or 'none'}", 403)

        response = [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", accept_key(key)),
        ]
        offered = split_tokens(headers.get_all("Sec-WebSocket-Protocol"))
        self.subprotocol = None
        if offered:
            if self.select_subprotocol is not None:
                chosen = self.select_subprotocol(offered)
                if chosen is not None and chosen not in offered:
                    raise HandshakeError(f"selected subprotocol {chosen!r} was not offered", 500)
            else:
                chosen = next((p for p in self.subprotocols if p in offered), None)
            if chosen is not None:
                self.subprotocol = chosen
                response.append(("Sec-WebSocket-Protocol", chosen))

        self.extensions = []
        if self.compression is not None:
            for name, params in parse_extensions(headers.get_all("Sec-WebSocket-Extensions")):
                if name != EXTENSION_NAME:
                    continue
                try:
                    agreed = self.compression.accept_offer(params)
                except HandshakeError:
                    # RFC 7692 section 5: an invalid offer is declined, not refused.
                    continue
                if agreed is not None:
                    response.append(("Sec-WebSocket-Extensions", agreed[0]))
                    self.extensions.append(agreed[1])
                    break
        if self.response_headers:
            try:
                response += check_extra_response_headers(self.response_headers)
            except ValueError as exc:
                raise HandshakeError(str(exc), 500) from None
        return response

    def accept(self, request: Request | None = None, headers: Iterable[tuple[str, str]] = ()) -> bytes:
        """The 101 response for ``request`` (default: the one received), plus ``headers``."""
        if request is None:
            request = self.request
        if request is None:
            raise HandshakeError("no complete request received yet", 400)
        return serialize_response(101, self.negotiate(request) + list(headers))

    @staticmethod
    def reject(error: HandshakeError | int, body: str | None = None) -> bytes:
        """A complete refusal response (``Connection: close``) for ``error``."""
        if isinstance(error, int):
            error = HandshakeError(body or "", error)
        text = (body if body is not None else error.msg) + "\n"
        headers = Headers([*error.headers, ("Content-Type", "text/plain; charset=utf-8")])
        return ServerHandshake.respond(Response(error.status or 400, "", headers, text.encode()))

    @staticmethod
    def respond(response: Response) -> bytes:
        """``response`` complete, to send instead of the 101: ``Content-Length`` from its body,
        and ``Connection: close`` unless it says otherwise."""
        headers = Headers([(n, v) for n, v in response.headers.items() if n.lower() != "content-length"])
        headers.add("Content-Length", str(len(response.body)))
        if "connection" not in headers:
            headers.add("Connection", "close")
        return serialize_response(response.status, headers, response.body, response.reason or None)

    def connection(self, **limits: Any) -> Connection:
        """The server :class:`Connection` with what was negotiated."""
        return Connection(Role.SERVER, extensions=self.extensions, subprotocol=self.subprotocol, **limits)


class ClientHandshake:
    """The client side of one opening handshake.

    ``host`` and ``port`` make the ``Host`` header (the port is left out when
    it is the scheme's default). ``headers`` are added as given; a header
    named there or in ``exclude_headers`` replaces or removes the default of
    that name (``Host``, ``Origin``, ``User-Agent``...).
    """

    def __init__(
        self,
        host: str,
        resource: str = "/",
        *,
        port: int | None = None,
        secure: bool = False,
        subprotocols: Sequence[str] | None = None,
        compression: DeflateOptions | None = None,
        headers: Iterable[tuple[str, str]] = (),
        exclude_headers: Iterable[str] = (),
        origin: str | None = None,
        key: str | None = None,
        max_response_size: int = MAX_SIZE,
        max_headers: int = MAX_HEADERS,
    ) -> None:
        self.host = host
        self.port = port
        self.resource = resource or "/"
        self.secure = secure
        self.subprotocols = list(subprotocols or [])
        self.compression = compression
        self.extra_headers = list(headers)
        self.exclude_headers = {name.lower() for name in exclude_headers}
        self.origin = origin
        self.key = key or base64.b64encode(os.urandom(16)).decode("ascii")
        self._reader = HeadReader(is_request=False, max_size=max_response_size, max_headers=max_headers)
        self.response: Response | None = None
        self.subprotocol: str | None = None
        self.extensions: list[PerMessageDeflate] = []

    @property
    def leftover(self) -> bytes:
        """Bytes received after the 101 response head (the server's first frames)."""
        return self._reader.leftover

    def request_headers(self) -> list[tuple[str, str]]:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port is not None and self.port != (443 if self.secure else 80):
            host = f"{host}:{self.port}"
        defaults: list[tuple[str, str]] = [
            ("Host", host),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", self.key),
            ("Sec-WebSocket-Version", "13"),
        ]
        if self.origin is not None:
            defaults.append(("Origin", self.origin))
        if self.subprotocols:
            defaults.append(("Sec-WebSocket-Protocol", ", ".join(self.subprotocols)))
        if self.compression is not None:
            defaults.append(("Sec-WebSocket-Extensions", self.compression.offer()))
        overridden = {name.lower() for name, _ in self.extra_headers} | self.exclude_headers
        kept = [(n, v) for n, v in defaults if n.lower() not in overridden]
        extra = [(n, v) for n, v in self.extra_headers if n.lower() not in self.exclude_headers]
        return kept + extra

    def request_bytes(self) -> bytes:
        """The GET request that opens the handshake."""
        return serialize_request("GET", self.resource, self.request_headers())

    def receive_data(self, data: bytes | bytearray | memoryview) -> Response | None:
        """Feed response bytes; the accepted 101 response once complete, else ``None``.

        Raises :class:`HandshakeError` (``status`` is the server's) when the
        server refused or answered outside RFC 6455.
        """
        response = self._reader.feed(data)
        if response is None:
            return None
        assert isinstance(response, Response)
        self.response = response
        self.check_response(response)
        return response

    def check_response(self, response: Response) -> None:
        headers = response.headers
        status = response.status
        if status != 101:
            raise HandshakeError(f"server refused the handshake: {status} {response.reason}", status, headers.items())
        if not _has_token(headers, "Upgrade", "websocket"):
            raise HandshakeError("missing or invalid Upgrade header in the response", status)
        if not _has_token(headers, "Connection", "upgrade"):
            raise HandshakeError("missing or invalid Connection header in the response", status)
        if headers.get_all("Sec-WebSocket-Accept") != [accept_key(self.key)]:
            raise HandshakeError("missing or wrong Sec-WebSocket-Accept in the response", status)
        protocols = split_tokens(headers.get_all("Sec-WebSocket-Protocol"))
        if len(protocols) > 1:
            raise HandshakeError("the server selected more than one subprotocol", status)
        if protocols and protocols[0] not in self.subprotocols:
            raise HandshakeError(f"the server selected a subprotocol not offered: {protocols[0]}", status)
        self.subprotocol = protocols[0] if protocols else None
        self.extensions = []
        for name, params in parse_extensions(headers.get_all("Sec-WebSocket-Extensions")):
            if name != EXTENSION_NAME or self.compression is None or self.extensions:
                raise HandshakeError(f"the server accepted an extension not offered: {name}", status)
            try:
                self.extensions.append(self.compression.accept_response(params))
            except HandshakeError as exc:
                raise HandshakeError(exc.msg, status) from None

    def connection(self, **limits: Any) -> Connection:
        """The client :class:`Connection` with what was negotiated."""
        return Connection(Role.CLIENT, extensions=self.extensions, subprotocol=self.subprotocol, **limits)
