"""ws4py 0.6's ``Stream``, as a thin layer over the protocol core.

0.6's ``WebSocket`` fed a ``Stream`` the bytes it asked for and read what the
stream left in its attributes (``message``, ``pings``, ``pongs``,
``closing``, ``errors``). :class:`Stream` keeps that interface for code
written against 0.6, and hands every byte to a receive-only
:class:`ws4py.protocol.Connection`: the frames, fragments, UTF-8, close
payloads and limits follow the core's rules (RFC 6455, Autobahn's cases),
through the same codec as every ws4py connection. New code uses
:class:`~ws4py.protocol.Connection` directly.

Differences from 0.6 are listed in docs/differences-from-0.6.md.
"""

from __future__ import annotations

import inspect
from collections.abc import Generator

from .framing import OPCODE_BINARY, OPCODE_CONTINUATION, OPCODE_TEXT, Chunk, header_stages
from .messaging import (
    BinaryMessage,
    CloseControlMessage,
    Message,
    PingControlMessage,
    PongControlMessage,
    TextMessage,
)
from .protocol import frames as _frames
from .protocol.close_codes import is_valid_on_wire
from .protocol.connection import DEFAULT_MAX_MESSAGE_SIZE, Connection, Role
from .protocol.events import (
    BinaryReceived,
    CloseReceived,
    ConnectionFailed,
    Event,
    PingReceived,
    PongReceived,
    TextReceived,
)

__all__ = ["Stream", "VALID_CLOSING_CODES"]

#: The registered close codes a peer may send (3000-4999 may be sent too): 0.6's list and
#: 1012-1014, which the IANA registered since. A close frame with another code fails the connection.
VALID_CLOSING_CODES = [code for code in range(1000, 1016) if is_valid_on_wire(code)]


class Stream:
    """The bytes of one direction of a WebSocket, parsed into messages, and message builders.

    Feed :attr:`parser` with ``send(bytes)``; after each send:

    - :attr:`message` is the latest data message: complete (:attr:`has_message`)
      or, while its fragments arrive, a :class:`~ws4py.messaging.TextMessage` or
      :class:`~ws4py.messaging.BinaryMessage` with ``completed`` false and no
      data yet; :attr:`messages` lists every message the send completed (more
      than one when it held several).
    - :attr:`pings` and :attr:`pongs` gain the control messages received (the
      caller empties them).
    - :attr:`closing` is the peer's :class:`~ws4py.messaging.CloseControlMessage`
      once it arrived (code 1005 when it had none).
    - :attr:`errors` holds a :class:`~ws4py.messaging.CloseControlMessage`
      with the close code and reason of a protocol violation: 1002, 1007
      (invalid UTF-8), 1009 (over ``max_message_size``).

    After a close frame or an error nothing more is parsed. ``expect_masking``:
    the peer is a client, whose frames must be masked (a server's must not
    be); ``always_mask``: :meth:`ping` and :meth:`pong` mask their frames.
    """

    def __init__(
        self,
        always_mask: bool = False,
        expect_masking: bool = True,
        *,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        #: The latest data message, complete or being received (see the class's docstring).
        self.message: Message | None = None
        #: The messages the latest ``send()`` completed, oldest first.
        self.messages: list[Message] = []
        self.pings: list[PingControlMessage] = []
        self.pongs: list[PongControlMessage] = []
        self.closing: CloseControlMessage | None = None
        self.errors: list[CloseControlMessage] = []
        self.always_mask = always_mask
        self.expect_masking = expect_masking
        self.max_message_size = max_message_size
        self._parser: Generator[int, Chunk, None] | None = None
        # The frame arriving: its header so far and how much of its payload is still to come.
        self._header = bytearray()
        self._payload_left = 0
        # The fragmented message arriving (0.6 showed it as an incomplete message), or None.
        self._partial: Message | None = None

    @property
    def parser(self) -> Generator[int, Chunk, None]:
        """A started generator (:meth:`receiver`) that parses what it is sent.

        ``send(bytes)`` returns how many more bytes the frame arriving needs for
        its next field (0.6's reading size); any amount may be sent.
        """
        if self._parser is None:
            self._parser = self.receiver()
            next(self._parser)
        return self._parser

    @property
    def has_message(self) -> bool:
        """Whether :attr:`message` is a complete message."""
        return self.message is not None and self.message.completed

    def receiver(self) -> Generator[int, Chunk, None]:
        """The parser: bytes in (``send``), the stream's attributes updated (see :attr:`parser`)."""
        connection = Connection(
            Role.SERVER if self.expect_masking else Role.CLIENT, max_message_size=self.max_message_size
        )
        try:
            while True:
                data = yield self._needed()
                if not data:
                    continue
                if isinstance(data, str):
                    data = data.encode("latin-1")  # 0.6 read a str by the ordinals of its characters
                self.messages = []
                events = connection.receive_data(data)
                if not self.errors and self.closing is None:
                    self._track(data)
                self._dispatch(events)
                if self._partial is not None:
                    self.message = self._partial  # the latest: it started after any completed here
        except GeneratorExit:
            pass
        self._release()

    def _needed(self) -> int:
        """How many bytes the frame arriving needs for its next field (1 between frames)."""
        header = self._header
        stages = header_stages(header)
        if len(stages) == 4 and len(header) >= stages[3]:
            return self._payload_left
        return next(end for end in stages if end > len(header)) - len(header)

    def _track(self, data: bytes | bytearray | memoryview) -> None:
        """Follow the frames' boundaries through ``data``, to know what arrives (lengths only: the core parses)."""
        header = self._header
        with memoryview(data) as view:
            pos, end = 0, len(view)
            while pos < end:
                stages = header_stages(header)
                if len(stages) < 4 or len(header) < stages[3]:
                    take = min(end - pos, (stages[3] if len(stages) == 4 else 2) - len(header))
                    header += view[pos : pos + take]
                    pos += take
                    if len(header) >= 2 and len(header) == header_stages(header)[3]:
                        self._payload_left = _frames.frame_length(header) - len(header)
                    else:
                        continue
                else:
                    take = min(end - pos, self._payload_left)
                    self._payload_left -= take
                    pos += take
                if self._payload_left == 0:
                    self._frame_arrived(header[0])
                    header.clear()

    def _frame_arrived(self, first_byte: int) -> None:
        """A frame is in: note the fragmented message that starts or ends."""
        opcode, fin = first_byte & 0x0F, first_byte & 0x80
        if not fin and opcode in (OPCODE_TEXT, OPCODE_BINARY):
            self._partial = TextMessage() if opcode == OPCODE_TEXT else BinaryMessage()
        elif fin and opcode == OPCODE_CONTINUATION:
            self._partial = None

    def _dispatch(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, TextReceived):
                self._completed(TextMessage.received_text(event.decoded, event.raw))
            elif isinstance(event, BinaryReceived):
                self._completed(BinaryMessage.received_bytes(OPCODE_BINARY, event.data))
            elif isinstance(event, PingReceived):
                self.pings.append(PingControlMessage(event.payload))
            elif isinstance(event, PongReceived):
                self.pongs.append(PongControlMessage(event.payload))
            elif isinstance(event, CloseReceived):
                self.closing = CloseControlMessage(event.code, event.reason)
            elif isinstance(event, ConnectionFailed):
                self.errors.append(CloseControlMessage(event.code, event.reason))

    def _completed(self, message: Message) -> None:
        self.messages.append(message)
        self.message = message

    def _release(self) -> None:
        """What 0.6 did when the parser closed: forget the messages (the lists are emptied)."""
        self.message = None
        self.messages = []
        self.pings = []
        self.pongs = []
        self.closing = None
        self.errors = []
        self._header.clear()
        self._partial = None

    def _cleanup(self) -> None:
        """Close the parser and free what the stream holds."""
        parser, self._parser = self._parser, None
        if parser is not None and inspect.getgeneratorstate(parser) != inspect.GEN_RUNNING:
            parser.close()
        self._release()

    # -- builders ------------------------------------------------------------------

    def text_message(self, text: str | bytes | bytearray) -> TextMessage:
        """A :class:`~ws4py.messaging.TextMessage` of ``text``."""
        return TextMessage(text=text)

    def binary_message(self, bytes: bytes | bytearray) -> BinaryMessage:
        """A :class:`~ws4py.messaging.BinaryMessage` of ``bytes``."""
        return BinaryMessage(bytes)

    def close(self, code: int = 1000, reason: str | bytes = "") -> CloseControlMessage:
        """A :class:`~ws4py.messaging.CloseControlMessage` (a message: its ``single()`` frames it)."""
        return CloseControlMessage(code=code, reason=reason)

    def ping(self, data: str | bytes = "") -> bytes:
        """The frame of a ping carrying ``data`` (masked when ``always_mask``)."""
        return PingControlMessage(data).single(mask=self.always_mask)

    def pong(self, data: str | bytes = "") -> bytes:
        """The frame of a pong carrying ``data`` (masked when ``always_mask``)."""
        return PongControlMessage(data).single(mask=self.always_mask)
