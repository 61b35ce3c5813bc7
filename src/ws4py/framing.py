"""ws4py 0.6's frame object, as a thin layer over the core's frame codec.

:class:`Frame` keeps 0.6's attributes, :meth:`Frame.build` and its
:attr:`Frame.parser` generator, for code written against ws4py 0.6. The bytes
come from the codec every ws4py connection uses (``ws4py._speedups``, or its
pure-Python twin): :meth:`~Frame.build` is its ``build_frame``,
:meth:`~Frame.mask` its ``apply_mask``, and the parser checks each header
field with its ``parse_frames``, so the rules are those of the core. New code
uses :class:`ws4py.protocol.Connection` instead, which parses whole streams.

Differences from 0.6 are listed in docs/differences-from-0.6.md.
"""

from __future__ import annotations

from collections.abc import Generator

from .exc import FrameTooLargeException, ProtocolException
from .protocol import frames as _frames
from .protocol.frames import Opcode

__all__ = [
    "Frame",
    "OPCODE_CONTINUATION",
    "OPCODE_TEXT",
    "OPCODE_BINARY",
    "OPCODE_CLOSE",
    "OPCODE_PING",
    "OPCODE_PONG",
]

# Plain ints, as in 0.6 (the core's Opcode members are IntEnums, whose repr differs).
#: The opcode of a continuation frame (0x0, ``Opcode.CONTINUATION``).
OPCODE_CONTINUATION: int = Opcode.CONTINUATION.value
#: The opcode of a text frame (0x1, ``Opcode.TEXT``).
OPCODE_TEXT: int = Opcode.TEXT.value
#: The opcode of a binary frame (0x2, ``Opcode.BINARY``).
OPCODE_BINARY: int = Opcode.BINARY.value
#: The opcode of a close frame (0x8, ``Opcode.CLOSE``).
OPCODE_CLOSE: int = Opcode.CLOSE.value
#: The opcode of a ping frame (0x9, ``Opcode.PING``).
OPCODE_PING: int = Opcode.PING.value
#: The opcode of a pong frame (0xA, ``Opcode.PONG``).
OPCODE_PONG: int = Opcode.PONG.value

_NO_LIMIT = 2**63 - 1
#: What the parser is fed: bytes-like, or (as 0.6 took it) a str of code points below 256.
Chunk = bytes | bytearray | memoryview | str | None


def header_stages(header: bytes | bytearray) -> tuple[int, ...]:
    """Where the fields of the frame header starting ``header`` end: 0.6's parser steps.

    The first byte, the second, the extended length (if any), the masking key
    (if any); ``header`` needs its first two bytes for more than the first two steps.
    """
    if len(header) < 2:
        return (1, 2)
    length = header[1] & 0x7F
    extended = 2 + (2 if length == 126 else 8 if length == 127 else 0)
    return (1, 2, extended, _frames.header_length(header[1]))


def frame_error(header: bytes | bytearray) -> tuple[int, str] | None:
    """The core's verdict on the frame header starting ``header`` (one byte or more), as far as it goes.

    ``None`` while nothing is wrong yet, else the ``(close code, reason)`` the
    codec fails the frame with. The codec needs two bytes: a first byte alone
    is checked as the header of an empty frame (the second byte says nothing
    about the first's rules).
    """
    if len(header) == 1:
        header = bytes((header[0], 0))
    masked = bool(header[1] & 0x80)
    # Masking is the stream's business (0.6's Frame parsed either); no limit: 0.6 had none.
    return _frames.parse_frames(header, 0, masked, 0, _NO_LIMIT)[2]


class Frame:
    """One WebSocket frame (RFC 6455 section 5.2), built or parsed.

    ``body`` is bytes: the payload as it travels, so masked when
    ``masking_key`` is set (:meth:`unmask` gives it back). ``fin`` and the
    ``rsv`` bits are 0 or 1.
    """

    def __init__(
        self,
        opcode: int | None = None,
        body: bytes = b"",
        masking_key: bytes | None = None,
        fin: int = 0,
        rsv1: int = 0,
        rsv2: int = 0,
        rsv3: int = 0,
    ) -> None:
        if not isinstance(body, bytes):
            raise TypeError("The body must be properly encoded")
        self.opcode = opcode
        self.body = body
        self.masking_key = masking_key
        self.fin = fin
        self.rsv1 = rsv1
        self.rsv2 = rsv2
        self.rsv3 = rsv3
        self.payload_length = len(body)
        self._parser: Generator[int | None, Chunk, None] | None = None

    @property
    def parser(self) -> Generator[int | None, Chunk, None]:
        """A started generator that parses one frame from the bytes it is sent.

        Each ``send(bytes)`` returns how many more bytes the field being read
        still needs (1 for each of the first two header bytes, then the
        extended length, the masking key, the payload), and ``None`` once the
        frame is complete: its fields are set, ``body`` is the payload (still
        masked, if it was) and the generator then finishes. Bytes beyond the
        frame are not taken. A broken header raises :class:`ProtocolException`
        (a reserved bit or opcode, a fragmented control frame) or
        :class:`FrameTooLargeException` (a control frame over 125 bytes, a
        64-bit length with its top bit set) as soon as it arrives.
        """
        if self._parser is None:
            self._parser = self._parsing()
            next(self._parser)
        return self._parser

    def _cleanup(self) -> None:
        if self._parser is not None:
            self._parser.close()
            self._parser = None

    def build(self) -> bytes:
        """The frame's bytes: the header, the masking key if set, the (masked) body."""
        if self.fin not in (0, 1):
            raise ValueError("FIN bit parameter must be 0 or 1")
        if not {self.rsv1, self.rsv2, self.rsv3} <= {0, 1}:
            raise ValueError("RSV bit parameters must be 0 or 1")
        try:
            opcode = Opcode(-1 if self.opcode is None else self.opcode)
        except ValueError:
            raise ValueError("Opcode cannot be a reserved opcode") from None
        if self.payload_length >> 63:
            raise FrameTooLargeException(f"a frame payload is under 2**63 bytes, not {self.payload_length}")
        first_byte = (self.fin << 7) | (self.rsv1 << 6) | (self.rsv2 << 5) | (self.rsv3 << 4) | opcode
        # 0.6 masked with any true key; the codec takes exactly 4 bytes (ValueError otherwise).
        key = bytes(self.masking_key) if self.masking_key else None
        return _frames.build_frame(first_byte, self.body, key)

    def _parsing(self) -> Generator[int | None, Chunk, None]:
        got = bytearray()
        header = 0  # the header's length once it is all in
        while True:
            if header:
                need = header + self.payload_length - len(got)
                if need <= 0:
                    break
            else:
                need = next(end for end in header_stages(got) if end > len(got)) - len(got)
            chunk = yield need
            if not chunk:
                continue
            if isinstance(chunk, str):
                chunk = chunk.encode("latin-1")  # 0.6 read a str by the ordinals of its characters
            got += chunk
            if not header:
                self._read_header(got)
                stages = header_stages(got)
                if len(stages) == 4 and len(got) >= stages[3]:
                    header = stages[3]
            if header:
                # Only this frame's bytes: 0.6's parser never took the next frame's either.
                del got[header + self.payload_length :]
        self.body = bytes(got[header:])
        yield None

    def _read_header(self, got: bytearray) -> None:
        """Check the header fields ``got`` holds, with the codec's rules, and set them."""
        error = frame_error(got[:1])
        if error is not None:
            raise ProtocolException(error[1], error[0])
        first = got[0]
        self.fin, self.rsv1, self.rsv2, self.rsv3 = first >> 7, (first >> 6) & 1, (first >> 5) & 1, (first >> 4) & 1
        self.opcode = first & 0x0F
        if len(got) < 2:
            return
        stages = header_stages(got)
        error = frame_error(got[: stages[3]])
        if error is not None:
            # The first byte passed: what the codec refuses now is a length (a control
            # frame over 125 bytes, a 64-bit length with its top bit set), as 0.6 said.
            raise FrameTooLargeException(error[1], error[0])
        self.payload_length = got[1] & 0x7F
        if stages[2] > 2 and len(got) >= stages[2]:
            self.payload_length = int.from_bytes(got[2 : stages[2]], "big")
        if got[1] & 0x80 and len(got) >= stages[3]:
            self.masking_key = bytes(got[stages[2] : stages[3]])

    def mask(self, data: bytes | bytearray | memoryview) -> bytearray:
        """``data`` XORed with the masking key (masking and unmasking are the same), as 0.6: a bytearray."""
        if not self.masking_key:
            raise ValueError("this frame has no masking key")
        return bytearray(_frames.apply_mask(data, bytes(self.masking_key)))

    unmask = mask
