"""permessage-deflate (RFC 7692): negotiation and per-message (de)compression.

:class:`DeflateOptions` is what a user configures, for either side; the
handshake turns an agreed offer into a :class:`PerMessageDeflate`, which a
:class:`~ws4py.protocol.connection.Connection` uses for every data message.
"""

from __future__ import annotations

import sys
import zlib
from dataclasses import dataclass

from ..exc import FrameTooLargeException, HandshakeError, InvalidBytesError
from .headers import format_extension

__all__ = ["EXTENSION_NAME", "DeflateOptions", "PerMessageDeflate"]

#: The extension's token in ``Sec-WebSocket-Extensions`` (RFC 7692).
EXTENSION_NAME = "permessage-deflate"
_TAIL = b"\x00\x00\xff\xff"
_PARAMS = (
    "server_no_context_takeover",
    "client_no_context_takeover",
    "server_max_window_bits",
    "client_max_window_bits",
)


class PerMessageDeflate:
    """The agreed permessage-deflate of one connection.

    ``local_*`` parameters govern what this endpoint compresses, ``remote_*``
    what the peer compresses. zlib cannot compress with an 8-bit window (it
    silently uses 9), so when this endpoint must stay within 8 bits it sends
    its messages uncompressed, which RFC 7692 allows for any message.
    """

    name = EXTENSION_NAME

    def __init__(
        self,
        *,
        local_no_context_takeover: bool = False,
        remote_no_context_takeover: bool = False,
        local_max_window_bits: int = 15,
        remote_max_window_bits: int = 15,
        compress_level: int = 6,
        memory_level: int = 8,
    ) -> None:
        self.local_no_context_takeover = local_no_context_takeover
        self.remote_no_context_takeover = remote_no_context_takeover
        self.local_max_window_bits = local_max_window_bits
        self.remote_max_window_bits = remote_max_window_bits
        self.compress_level = compress_level
        self.memory_level = memory_level
        self.compresses = local_max_window_bits > 8
        # The zlib streams are made when first needed: an idle connection
        # should not hold the ~300 KiB they cost.
        self._compressor: zlib._Compress | None = None
        self._decompressor: zlib._Decompress | None = None

    def __repr__(self) -> str:
        return (
            f"PerMessageDeflate(local_no_context_takeover={self.local_no_context_takeover}, "
            f"remote_no_context_takeover={self.remote_no_context_takeover}, "
            f"local_max_window_bits={self.local_max_window_bits}, "
            f"remote_max_window_bits={self.remote_max_window_bits})"
        )

    def decompress(self, data: bytes, fin: bool, max_size: int) -> bytes:
        """Inflate one frame's payload of a compressed message.

        Never produces more than ``max_size`` bytes: a deflate bomb fails with
        :class:`FrameTooLargeException` (1009) before it can use the memory.
        """
        decompressor = self._decompressor
        if decompressor is None:
            decompressor = self._decompressor = zlib.decompressobj(wbits=-self.remote_max_window_bits)
        if fin:
            data += _TAIL
        try:
            # max_length 0 means "no limit" to zlib.
            out = decompressor.decompress(data, max_size + 1 if max_size < sys.maxsize else 0)
        except zlib.error as exc:
            raise InvalidBytesError(f"invalid compressed data: {exc}") from None
        if len(out) > max_size or decompressor.unconsumed_tail:
            raise FrameTooLargeException(f"message exceeds the limit of {max_size} bytes once decompressed")
        # A peer may end a message with a final block (RFC 7692 7.2.3.4): its
        # next message then starts a new stream.
        if fin and (self.remote_no_context_takeover or decompressor.eof):
            self._decompressor = None
        return out

    def compress(self, data: bytes | bytearray | memoryview, fin: bool) -> bytes:
        """Deflate one frame's payload of a message this endpoint sends."""
        compressor = self._compressor
        if compressor is None:
            compressor = self._compressor = zlib.compressobj(
                self.compress_level, zlib.DEFLATED, -self.local_max_window_bits, self.memory_level
            )
        out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
        if fin:
            if out.endswith(_TAIL):
                out = out[:-4]
            if self.local_no_context_takeover:
                self._compressor = None
        return out


def _window_bits(value: str | None, param: str) -> int:
    if value is None or not value.isdigit() or value.startswith("0") or not 8 <= int(value) <= 15:
        raise HandshakeError(f"invalid {param}: {value!r} (must be 8 to 15)")
    return int(value)


def _check_params(params: list[tuple[str, str | None]]) -> dict[str, str | None]:
    seen: dict[str, str | None] = {}
    for name, value in params:
        if name not in _PARAMS:
            raise HandshakeError(f"unknown permessage-deflate parameter: {name}")
        if name in seen:
            raise HandshakeError(f"duplicate permessage-deflate parameter: {name}")
        if name.endswith("no_context_takeover") and value is not None:
            raise HandshakeError(f"{name} takes no value")
        seen[name] = value
    return seen


@dataclass
class DeflateOptions:
    """permessage-deflate settings, for a client's offer or a server's answer.

    ``server_*``/``client_*`` follow RFC 7692: the ``no_context_takeover``
    flags ask that side to reset its compressor after each message (less
    memory, worse ratio); ``max_window_bits`` (8-15) bounds that side's LZ77
    window. ``None`` leaves a window to the other side's choice (15).
    """

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int | None = None
    client_max_window_bits: int | None = None
    compress_level: int = 6
    memory_level: int = 8

    def __post_init__(self) -> None:
        for bits in (self.server_max_window_bits, self.client_max_window_bits):
            if bits is not None and not 8 <= bits <= 15:
                raise ValueError("max_window_bits must be from 8 to 15")

    # -- client side -----------------------------------------------------

    def offer(self) -> str:
        """The ``Sec-WebSocket-Extensions`` value a client sends."""
        params: list[tuple[str, str | None]] = []
        if self.server_no_context_takeover:
            params.append(("server_no_context_takeover", None))
        if self.client_no_context_takeover:
            params.append(("client_no_context_takeover", None))
        if self.server_max_window_bits is not None:
            params.append(("server_max_window_bits", str(self.server_max_window_bits)))
        # Always advertise that we can honour a limit on our own window.
        bits = self.client_max_window_bits
        params.append(("client_max_window_bits", None if bits is None else str(bits)))
        return format_extension(EXTENSION_NAME, params)

    def accept_response(self, params: list[tuple[str, str | None]]) -> PerMessageDeflate:
        """Check a server's answer to :meth:`offer`; raise :class:`HandshakeError` if it breaks RFC 7692."""
        got = _check_params(params)
        if self.server_no_context_takeover and "server_no_context_takeover" not in got:
            raise HandshakeError("server ignored server_no_context_takeover")
        server_bits = 15
        if "server_max_window_bits" in got:
            server_bits = _window_bits(got["server_max_window_bits"], "server_max_window_bits")
            if self.server_max_window_bits is not None and server_bits > self.server_max_window_bits:
                raise HandshakeError("server_max_window_bits larger than offered")
        elif self.server_max_window_bits is not None:
            raise HandshakeError("server ignored server_max_window_bits")
        client_bits = self.client_max_window_bits or 15
        if "client_max_window_bits" in got:
            client_bits = _window_bits(got["client_max_window_bits"], "client_max_window_bits")
            if self.client_max_window_bits is not None and client_bits > self.client_max_window_bits:
                raise HandshakeError("client_max_window_bits larger than offered")
        return PerMessageDeflate(
            local_no_context_takeover=self.client_no_context_takeover or "client_no_context_takeover" in got,
            remote_no_context_takeover="server_no_context_takeover" in got,
            local_max_window_bits=client_bits,
            remote_max_window_bits=server_bits,
            compress_level=self.compress_level,
            memory_level=self.memory_level,
        )

    # -- server side -----------------------------------------------------

    def accept_offer(self, params: list[tuple[str, str | None]]) -> tuple[str, PerMessageDeflate] | None:
        """Answer one client offer: the response value and the agreed extension.

        Returns ``None`` to decline this offer (the client may have made
        others); raises :class:`HandshakeError` if the offer is malformed.
        """
        got = _check_params(params)
        response: list[tuple[str, str | None]] = []

        server_nct = self.server_no_context_takeover or "server_no_context_takeover" in got
        if server_nct:
            response.append(("server_no_context_takeover", None))
        client_nct = self.client_no_context_takeover or "client_no_context_takeover" in got
        if client_nct:
            response.append(("client_no_context_takeover", None))

        server_bits = 15
        if "server_max_window_bits" in got:
            server_bits = _window_bits(got["server_max_window_bits"], "server_max_window_bits")
        if self.server_max_window_bits is not None:
            server_bits = min(server_bits, self.server_max_window_bits)
        if server_bits < 15 or "server_max_window_bits" in got:
            response.append(("server_max_window_bits", str(server_bits)))

        client_bits = 15
        if "client_max_window_bits" in got:
            offered = got["client_max_window_bits"]
            if offered is not None:
                client_bits = _window_bits(offered, "client_max_window_bits")
            if self.client_max_window_bits is not None:
                client_bits = min(client_bits, self.client_max_window_bits)
            if client_bits < 15 or offered is not None:
                response.append(("client_max_window_bits", str(client_bits)))
        elif self.client_max_window_bits is not None:
            # We may not limit a client that did not say it could be limited.
            return None

        return format_extension(EXTENSION_NAME, response), PerMessageDeflate(
            local_no_context_takeover=server_nct,
            remote_no_context_takeover=client_nct,
            local_max_window_bits=server_bits,
            remote_max_window_bits=client_bits,
            compress_level=self.compress_level,
            memory_level=self.memory_level,
        )
