"""A small strict HTTP/1.1 parser for the opening handshake, with limits.

Only what a WebSocket handshake needs: a request or response head (start
line and header fields), no bodies. It is strict where laxness has been
exploited (obs-fold, bare CR, control characters, malformed field names) and
bounded: a head over ``max_size`` bytes or ``max_headers`` fields is refused
with 431, a request line over ``max_line`` with 414.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..exc import HandshakeError
from .headers import Headers

__all__ = [
    "Request",
    "Response",
    "HeadReader",
    "check_field",
    "parse_fields",
    "serialize_request",
    "serialize_response",
    "REASONS",
]

MAX_LINE = 8192
MAX_HEADERS = 128
MAX_SIZE = 16384

_FIELD_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(rb"[\x21-\x7e\x80-\xff]+(?:[ \t]+[\x21-\x7e\x80-\xff]+)*")
_METHOD = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TARGET = re.compile(rb"[\x21-\x7e]+")
_VERSION = re.compile(rb"HTTP/1\.[1-9]")
_STATUS_LINE = re.compile(rb"(HTTP/1\.[0-9]) ([0-9]{3}) ?([\t \x21-\x7e\x80-\xff]*)")

#: The reason phrase of each HTTP status ws4py answers with.
REASONS = {
    101: "Switching Protocols",
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    414: "URI Too Long",
    426: "Upgrade Required",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass
class Request:
    """An HTTP request head."""

    method: str
    target: str
    headers: Headers = field(default_factory=Headers)


@dataclass
class Response:
    """An HTTP response head (and the body a server sends with a refusal)."""

    status: int
    reason: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""


def parse_fields(lines: list[bytes], max_headers: int = MAX_HEADERS) -> Headers:
    """The header fields of a head's ``lines`` (without their CRLF), checked as RFC 9112 has them.

    :class:`~ws4py.exc.HandshakeError` for a line that is no valid field, an
    obsolete line folding, or more than ``max_headers`` fields (431).
    """
    if len(lines) > max_headers:
        raise HandshakeError(f"more than {max_headers} header fields", 431)
    headers = Headers()
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon or not _FIELD_NAME.fullmatch(name):
            if line[:1] in (b" ", b"\t"):
                raise HandshakeError("obsolete line folding in a header field")
            raise HandshakeError(f"invalid header line: {line[:100]!r}")
        value = value.strip(b" \t")
        if value and not _FIELD_VALUE.fullmatch(value):
            raise HandshakeError(f"invalid value in header field {name.decode()}")
        headers.add(name.decode("ascii"), value.decode("latin-1"))
    return headers


class HeadReader:
    """Accumulates bytes until a complete HTTP head, then parses it.

    ``feed`` returns the parsed head once complete (else ``None``); the bytes
    after it are in ``leftover``. Scans only new bytes for the end of the
    head, so a peer trickling its request costs linear time.
    """

    def __init__(
        self,
        *,
        is_request: bool,
        max_size: int = MAX_SIZE,
        max_line: int = MAX_LINE,
        max_headers: int = MAX_HEADERS,
    ) -> None:
        self.is_request = is_request
        self.max_size = max_size
        self.max_line = max_line
        self.max_headers = max_headers
        self._buf = bytearray()
        self._scanned = 0
        self.leftover = b""

    def feed(self, data: bytes | bytearray | memoryview) -> Request | Response | None:
        buf = self._buf
        buf += data
        end = buf.find(b"\r\n\r\n", max(0, self._scanned - 3))
        if end < 0:
            self._scanned = len(buf)
            if self.is_request and buf.find(b"\r\n") < 0 and len(buf) > self.max_line:
                raise HandshakeError("request line too long", 414)
            if len(buf) > self.max_size:
                raise HandshakeError(f"request head over {self.max_size} bytes", 431)
            return None
        if end + 4 > self.max_size:
            raise HandshakeError(f"request head over {self.max_size} bytes", 431)
        head = bytes(buf[:end])
        self.leftover = bytes(buf[end + 4 :])
        buf.clear()
        if b"\r" in head.replace(b"\r\n", b"") or b"\n" in head.replace(b"\r\n", b""):
            raise HandshakeError("bare CR or LF in the HTTP head")
        lines = head.split(b"\r\n")
        if self.is_request:
            return self._request(lines)
        return self._response(lines)

    def _request(self, lines: list[bytes]) -> Request:
        start = lines[0]
        if len(start) > self.max_line:
            raise HandshakeError("request line too long", 414)
        parts = start.split(b" ")
        if len(parts) != 3 or not _METHOD.fullmatch(parts[0]) or not _TARGET.fullmatch(parts[1]):
            raise HandshakeError(f"invalid request line: {start[:100]!r}")
        if not _VERSION.fullmatch(parts[2]):
            raise HandshakeError("the WebSocket handshake needs HTTP/1.1 or later")
        headers = parse_fields(lines[1:], self.max_headers)
        return Request(parts[0].decode("ascii"), parts[1].decode("ascii"), headers)

    def _response(self, lines: list[bytes]) -> Response:
        match = _STATUS_LINE.fullmatch(lines[0])
        if match is None:
            raise HandshakeError(f"invalid status line: {lines[0][:100]!r}", 0)
        headers = parse_fields(lines[1:], self.max_headers)
        return Response(int(match.group(2)), match.group(3).decode("latin-1"), headers)


def check_field(name: str, value: str) -> None:
    """Raise ``ValueError`` unless ``name: value`` is a valid header field to send.

    The name a token, the value visible characters (Latin-1) separated by
    spaces or tabs, with no control character (RFC 9110 5.1 and 5.5): what the
    parser of the other side accepts.
    """
    try:
        raw_name, raw_value = name.encode("latin-1"), value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"header field {name!r} is not Latin-1") from None
    if not _FIELD_NAME.fullmatch(raw_name):
        raise ValueError(f"invalid header field name {name!r}")
    if raw_value and not _FIELD_VALUE.fullmatch(raw_value):
        raise ValueError(f"invalid value in header field {name!r}")


def _breaks_a_line(text: str) -> bool:
    """Whether ``text`` would end its line of a head early (and start another: an injection)."""
    return "\r" in text or "\n" in text


def _head(start_line: str, headers: list[tuple[str, str]] | Headers) -> bytes:
    if _breaks_a_line(start_line):
        raise ValueError(f"invalid start line {start_line!r}")
    out = [start_line]
    for name, value in headers:
        if _breaks_a_line(value) or _breaks_a_line(name) or ":" in name:
            raise ValueError(f"invalid header field {name!r}")
        out.append(f"{name}: {value}")
    out.append("\r\n")
    return "\r\n".join(out).encode("latin-1")


def serialize_request(method: str, target: str, headers: list[tuple[str, str]] | Headers) -> bytes:
    """The bytes of an HTTP/1.1 request head: its request line, then ``headers``, then the blank line."""
    return _head(f"{method} {target} HTTP/1.1", headers)


def serialize_response(
    status: int,
    headers: list[tuple[str, str]] | Headers,
    body: bytes = b"",
    reason: str | None = None,
) -> bytes:
    """The bytes of an HTTP/1.1 response: its status line, ``headers``, the blank line, then ``body``.

    ``reason`` defaults to the status's phrase in :data:`REASONS` (``"Unknown"`` for others).

    A status outside 100-599 raises ``ValueError``.
    """
    if not 100 <= status <= 599:
        raise ValueError(f"invalid status code {status!r}: not in 100-599")
    if reason is None:
        reason = REASONS.get(status, "Unknown")
    return _head(f"HTTP/1.1 {status} {reason}", headers) + body
