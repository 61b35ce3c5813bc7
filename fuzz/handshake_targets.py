"""Fuzz target of the opening handshake: requests, responses and the extension header, from any bytes.

``check_handshake`` feeds the input, in the input's chunking, to a
:class:`~ws4py.protocol.ServerHandshake` (as a request) or a
:class:`~ws4py.protocol.ClientHandshake` (as a response, raw or after a valid
101 start, so that the fuzzer reaches the extension and subprotocol checks),
or parses it as a ``Sec-WebSocket-Extensions`` value and negotiates
permessage-deflate from it both ways. Only :class:`~ws4py.exc.HandshakeError`
may come out. A request the server accepts must get a 101 response that a
strict parser reads back, with the right ``Sec-WebSocket-Accept``; a refusal
must be a response too. The codec plays no part here, so this runs once.
"""

from __future__ import annotations

from contextlib import suppress

from fuzz_common import Finding, Input

from ws4py.exc import HandshakeError
from ws4py.protocol import ClientHandshake, DeflateOptions, Response, ServerHandshake, accept_key
from ws4py.protocol.headers import parse_extensions
from ws4py.protocol.http11 import HeadReader

__all__ = ["check_handshake"]

_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
_OPTIONS = (
    None,
    DeflateOptions(),
    DeflateOptions(server_no_context_takeover=True, client_no_context_takeover=True),
    DeflateOptions(server_max_window_bits=10, client_max_window_bits=9),
)
_CHUNK_SIZES = (1, 2, 3, 7, 64, 1000, 20_000)


def _chunks(data: bytes, how: int) -> list[bytes]:
    if not how & 1:
        return [data]
    size = _CHUNK_SIZES[(how >> 1) % len(_CHUNK_SIZES)]
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


def _read_back(response: bytes) -> Response:
    """``response`` as a strict client parses it: what the server wrote must be well-formed."""
    reader = HeadReader(is_request=False)
    try:
        parsed = reader.feed(response)
    except HandshakeError as exc:
        raise Finding(f"the server wrote a response it cannot parse ({exc}): {response!r}") from None
    if not isinstance(parsed, Response):
        raise Finding(f"the server wrote an incomplete response: {response!r}")
    return parsed


def _server(inp: Input, flags: int) -> None:
    handshake = ServerHandshake(
        subprotocols=["chat", "superchat"] if flags & 16 else None,
        compression=_OPTIONS[(flags >> 5) & 3],
        origins=["https://example.com", None] if flags & 128 else None,
        max_request_size=(16384, 300)[(flags >> 2) & 1],
        max_headers=(128, 4)[(flags >> 3) & 1],
    )
    how = inp.byte()
    try:
        request = None
        for chunk in _chunks(inp.rest(), how):
            request = handshake.receive_data(chunk)
            if request is not None:
                break
        if request is None:
            return
        response = handshake.accept()
    except HandshakeError as exc:
        refusal = _read_back(ServerHandshake.reject(exc))
        if not 400 <= refusal.status <= 599:
            raise Finding(f"a refusal with status {refusal.status}") from None
        return
    parsed = _read_back(response)
    key = request.headers.get_all("Sec-WebSocket-Key")[0]
    if parsed.status != 101 or parsed.headers.get_all("Sec-WebSocket-Accept") != [accept_key(key)]:
        raise Finding(f"a bad 101 response: {response!r}")
    # Whatever the server agreed to, it can run a connection with.
    handshake.connection()


def _client(inp: Input, flags: int) -> None:
    handshake = ClientHandshake(
        "example.com",
        subprotocols=["chat", "superchat"] if flags & 16 else None,
        compression=_OPTIONS[(flags >> 5) & 3],
        key=_KEY,
        max_response_size=(16384, 300)[(flags >> 2) & 1],
    )
    how = inp.byte()
    data = inp.rest()
    if flags & 8:
        # A valid start, so the fuzzer's bytes are the rest of the header fields.
        start = f"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: {accept_key(_KEY)}\r\n"
        data = start.encode() + data
    try:
        for chunk in _chunks(data, how):
            if handshake.receive_data(chunk) is not None:
                handshake.connection()
                return
    except HandshakeError:
        pass


def _extensions(inp: Input, flags: int) -> None:
    value = inp.rest().decode("latin-1")
    try:
        offers = parse_extensions([value])
    except HandshakeError:
        return
    options = _OPTIONS[1 + (flags >> 5) % 3]
    for _name, params in offers:
        for negotiate in (options.accept_offer, options.accept_response):
            with suppress(HandshakeError):
                negotiate(params)


def check_handshake(data: bytes) -> None:
    inp = Input(data)
    flags = inp.byte()
    (_server, _client, _extensions, _server)[flags & 3](inp, flags)
