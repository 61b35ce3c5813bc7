"""The WebSocket connection after the opening handshake, sans I/O.

Rules of this module:

1. Every state transition of a connection happens here, in :class:`Connection`.
   Adapters feed bytes in (:meth:`~Connection.receive_data`,
   :meth:`~Connection.receive_eof`), act on the events that come out, and
   write the bytes that :meth:`~Connection.send_text` and friends return,
   then :meth:`~Connection.data_to_send` (the core's own replies: pongs and
   the close echo).
2. Nothing here touches a socket, a thread, a clock or a logger. The class is
   not thread-safe: an adapter that sends from several threads holds a lock
   around the send calls and the write of the bytes they return.

States (RFC 6455 section 4 and 7)::

    OPEN --send_close()--> CLOSING --close received--> CLOSED
    OPEN --close received, then data_to_send() returns the echo--> CLOSED
    OPEN --peer broke the protocol, then data_to_send() returns our close--> CLOSED
    CLOSING --peer broke the protocol--> CLOSED
    any --receive_eof()--> CLOSED

Once the peer's close (or its violation) is read, the core ignores whatever
else arrives. The close frame the core owes in reply goes out only with the
next :meth:`~Connection.data_to_send`, so an adapter that handles the events
in order still answers the messages that arrived with the close. When both
close frames have crossed, the server closes TCP first (section 7.1.1); the
client waits for that, then closes its end.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Sequence

from ..exc import FrameTooLargeException, InvalidState, ProtocolException, TextFrameEncodingException
from . import frames as _frames
from .buffers import spare_buffers
from .close_codes import is_valid_on_wire
from .deflate import PerMessageDeflate
from .events import (
    BinaryReceived,
    CloseReceived,
    ConnectionFailed,
    Event,
    PingReceived,
    PongReceived,
    TextReceived,
)
from .utf8 import INVALID_TEXT, PartialTextCheck

__all__ = ["Role", "State", "TransportAction", "Connection", "DEFAULT_MAX_MESSAGE_SIZE"]

#: ``max_message_size``'s default: 16 MiB.
DEFAULT_MAX_MESSAGE_SIZE = 16 * 2**20

_TEXT = 0x1
_BINARY = 0x2
_CLOSE = 0x8
_PING = 0x9
_PONG = 0xA
_MAX_PONGS_DUE = 16
_WHOLE_TEXT = _frames.WHOLE_TEXT
_WHOLE_BINARY = _frames.WHOLE_BINARY
_LARGE = _frames.LARGE_PAYLOAD


class Role(enum.Enum):
    """Which end of the connection this is: a client masks its frames, a server expects masked ones."""

    CLIENT = "client"
    SERVER = "server"


class State(enum.IntEnum):
    """Where the connection is in its life (the states RFC 6455 names): it sends messages only while ``OPEN``."""

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


_OPEN = State.OPEN  # a module name for the per-message checks: an enum's attribute costs 90 ns


class TransportAction(enum.Enum):
    """What an adapter does with the TCP connection now: :attr:`Connection.transport_action`.

    The core decides (RFC 6455 7.1.1 and 7.1.7); the adapter obeys, bounding
    every wait with its close timeout, since waiting is I/O.
    """

    #: The WebSocket is not closed yet: keep reading and writing.
    KEEP = "keep"
    #: Write what is queued, then close TCP (a server after a clean close, or
    #: anyone after the peer closed TCP).
    CLOSE = "close"
    #: The connection failed: write what is queued (our close frame), shut
    #: down the write side, and read and discard what the peer still sends
    #: until it closes TCP, so our close frame is not lost to a reset.
    HALF_CLOSE = "half-close"
    #: A client after a clean close: wait for the server to close TCP first.
    AWAIT_CLOSE = "await-close"


class _MaskKeys:
    """Fresh unpredictable 4-byte masking keys (RFC 6455 10.3), read from the OS in bulk."""

    __slots__ = ("_pool", "_pos")

    def __init__(self) -> None:
        self._pool = b""
        self._pos = 0

    def next(self) -> bytes:
        pos = self._pos
        if pos >= len(self._pool):
            self._pool = os.urandom(4096)
            pos = 0
        self._pos = pos + 4
        return self._pool[pos : pos + 4]


_mask_keys = _MaskKeys()


class Connection:
    """One side of an open WebSocket connection.

    ``role`` decides masking: a client masks every frame it sends and fails
    masked frames from the server; a server does the reverse.

    Limits: ``max_frame_size`` bounds one frame's payload (checked from its
    header, before any payload is buffered); ``max_message_size`` bounds a
    message's payload after reassembly and decompression, however many
    fragments it comes in. ``max_queued_bytes`` bounds the received bytes the
    core holds before they form a complete frame. Going over any of them
    fails the connection with 1009 (a frame whose header claims more than
    ``max_queued_bytes`` at once).

    Memory follows the bytes that arrived, never a length a header claims:
    an incomplete frame gets a buffer of its length only once a quarter of it
    arrived (so at most four times what arrived), and a fragmented message is assembled as its fragments arrive, so
    it holds its payload and nothing per fragment.
    """

    # Slots: a server holds one of these per idle connection, so its size counts.
    __slots__ = (
        "_allowed_rsv",
        "_big",
        "_big_end",
        "_big_filled",
        "_buffer",
        "_close_due",
        "_expect_mask",
        "_frag_buffer",
        "_frag_compressed",
        "_frag_opcode",
        "_frag_utf8",
        "_partial",
        "_pings",
        "_pongs_due",
        "_reading",
        "_replies",
        "_send_compressed",
        "_send_frag_opcode",
        "close_code",
        "close_reason",
        "close_received",
        "close_sent",
        "decode_text",
        "deflate",
        "eof_received",
        "extensions",
        "failure",
        "is_client",
        "max_frame_size",
        "max_message_size",
        "max_queued_bytes",
        "role",
        "state",
        "subprotocol",
    )

    def __init__(
        self,
        role: Role,
        *,
        extensions: Sequence[object] = (),
        subprotocol: str | None = None,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        max_frame_size: int | None = None,
        max_queued_bytes: int | None = None,
    ) -> None:
        self.role = role
        self.subprotocol = subprotocol
        self.extensions = list(extensions)
        self.deflate: PerMessageDeflate | None = None
        for ext in self.extensions:
            if isinstance(ext, PerMessageDeflate):
                self.deflate = ext
            else:
                raise ValueError(f"unsupported extension: {ext!r}")
        unlimited = 2**63 - 1
        self.max_message_size = unlimited if max_message_size is None else max_message_size
        self.max_frame_size = self.max_message_size if max_frame_size is None else max_frame_size
        if max_queued_bytes is None:
            max_queued_bytes = min(self.max_frame_size, unlimited - 14) + 14
        self.max_queued_bytes = max_queued_bytes

        #: Whether an ASCII text in one frame is made a ``str`` as it is unmasked
        #: (its ``TextReceived.raw`` is then ``None``), for an adapter that always
        #: wants the ``str``. Either way a large text in bytes is validated alone
        #: and decoded only if its ``data`` is read (never held twice).
        self.decode_text = False
        self.state = State.OPEN
        self._reading = True
        self._close_due: bytes | None = None
        self.is_client = role is Role.CLIENT
        self._expect_mask = not self.is_client
        self._allowed_rsv = _frames.RSV1 if self.deflate is not None else 0
        self._buffer = bytearray()
        # An incomplete large frame, a quarter of it arrived at least: its buffer
        # of the frame's size (see _receive), how much of it arrived and its length.
        self._big: bytearray | None = None
        self._big_filled = 0
        self._big_end = 0
        self._replies: list[bytes] = []
        self._pongs_due: list[bytes] = []
        self._pings: dict[bytes, None] = {}

        # Incoming fragmented message: opcode 0 when none is in progress. Its
        # payload so far is assembled in one buffer (a fragment costs its bytes,
        # nothing more), and a text's UTF-8 is checked as it comes: _frag_utf8 is
        # the utf8_check state its bytes so far left.
        self._frag_opcode = 0
        self._frag_buffer = bytearray()
        self._frag_compressed = False
        self._frag_utf8 = 0

        # How far the incomplete text frame at the buffer's start is validated, while one is.
        self._partial: PartialTextCheck | None = None

        # Outgoing fragmented message: opcode 0 when none is in progress.
        self._send_frag_opcode = 0
        self._send_compressed = False

        self.close_sent: tuple[int, str] | None = None
        self.close_received: tuple[int, str] | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self.failure: ProtocolException | None = None
        #: Whether the transport reported its end (:meth:`receive_eof`).
        self.eof_received = False

    # -- receiving -------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Feed bytes from the transport; return the events they complete.

        Never raises for anything the peer sends: a protocol violation ends
        in a :class:`ConnectionFailed` event and a queued close frame.
        """
        if not self._reading:
            return []
        big = self._big
        if big is None:
            return self._receive(data, None)
        # A large frame is arriving into its own buffer (see _receive).
        filled = self._big_filled
        taken = min(len(data), self._big_end - filled)
        # Through memoryviews: a bytearray's slice assignment would copy the data first.
        with memoryview(big) as view:
            view[filled : filled + taken] = memoryview(data)[:taken]
        events = self._big_arrived(taken)
        if taken < len(data) and self._reading:
            events += self._receive(memoryview(data)[taken:], None)
        return events

    def receive_messages(
        self, data: bytes | bytearray | memoryview
    ) -> tuple[list[tuple[int, bytes | str]], list[Event]]:
        """:meth:`receive_data` for an adapter that makes its own message objects: no event for most messages.

        The whole messages that ``data`` completes first, each in one
        uncompressed frame, come as ``(first_byte, payload)`` pairs: ``0x82``
        and the bytes for binary, ``0x81`` for text, with the UTF-8 validated
        and the payload its bytes (or, with ``decode_text``, a ``str`` when it
        is ASCII). Everything from the first frame that is not such a message
        on comes as events, which follow those messages. Together they are
        exactly what :meth:`receive_data` would report; a pair never leaves
        the core anything to send.
        """
        # A text partly validated as it arrived is _process's: it resumes the check where it stopped.
        if self._big is not None or not self._reading or self._frag_opcode or self._partial is not None:
            return [], self.receive_data(data)
        messages: list[tuple[int, bytes | str]] = []
        return messages, self._receive(data, messages)

    def receive_buffer(self) -> memoryview | None:
        """Where to read the rest of a large frame that is arriving, or ``None``.

        An adapter that can read into a buffer (``recv_into``) reads straight
        into this one and calls :meth:`received_into`: the frame's bytes are
        then copied once less. Never longer than what the frame still lacks.
        The view is for one read: take a new one after any other call.
        """
        big = self._big
        if big is None or not self._reading:
            return None
        return memoryview(big)[self._big_filled : self._big_end]

    def received_into(self, nbytes: int) -> list[Event]:
        """:meth:`receive_data` for ``nbytes`` read into :meth:`receive_buffer`'s buffer."""
        if self._big is None or not self._reading:
            return []
        return self._big_arrived(nbytes)

    def _big_arrived(self, taken: int) -> list[Event]:
        big = self._big
        assert big is not None
        filled, end = self._big_filled + taken, self._big_end
        if filled < end:
            self._big_filled = filled
            events: list[Event] = []
            if not big[0] & 0x48:
                try:
                    self._check_partial_text(memoryview(big)[:filled])
                except ProtocolException as exc:
                    self._fail(exc, events)
            return events
        self._big = None
        with memoryview(big) as view:
            events = self._receive(view[:end], None)
        spare_buffers.give(big)
        return events

    # Copies of a received payload byte in the core (issue 23), from the adapter's
    # read buffer to the message object; "pass": read without being written.
    # Every stack's receive path goes through here (asyncio's two APIs, threaded).
    #
    #                                           before (973b7f8)          now
    #   frame whole in one read                 unmask 1                  unmask 1
    #   whole text, ASCII                       + 1 UTF-8 pass (no str    + 0 (the ASCII test rides
    #                                           wanted) / 0 (str wanted)  in the unmasking pass)
    #   whole text, not ASCII                   + 1 pass (validate or     + 1 pass (parse_frames) and,
    #                                           decode on its own)        str wanted and < 64 KiB, decode 1
    #   frame over reads, < 64 KiB              + 1 into the buffer for   + 1 for its own bytes only
    #                                           it AND for every frame
    #                                           after it in the read
    #   frame over reads, >= 64 KiB (own        start + 2 (buffer, then   start + 1 (straight into its
    #   buffer, reused)                         its own), rest + 1 (0 if  own), rest as before
    #                                           asyncio reads into it)
    #   text over reads                         + 1 pass as it arrives    + 1 pass as it arrives (fail
    #                                           (fail fast, RFC 6455 8.1) fast); not ASCII: + 1 at the end
    def _receive(
        self, data: bytes | bytearray | memoryview, messages: list[tuple[int, bytes | str]] | None
    ) -> list[Event]:
        """Parse and process ``data``; with ``messages``, the leading plain messages go there instead of events."""
        buf = self._buffer
        parse = _frames.parse_frames
        mask, rsv, limit, as_str = self._expect_mask, self._allowed_rsv, self.max_frame_size, self.decode_text
        source: bytes | bytearray | memoryview = data
        if not buf:
            frames, pos, error = parse(data, 0, mask, rsv, limit, as_str)
        elif 0 < (lacking := _frames.frame_length(buf) - len(buf)) < len(data):
            # The frame waiting in the buffer takes only the bytes it lacks: the
            # frames after it are parsed where they arrived, not copied here first.
            with memoryview(data) as view:
                buf += view[:lacking]
            frames, pos, error = parse(buf, 0, mask, rsv, limit, as_str)
            if error is None:
                buf.clear()
                more, pos, error = parse(data, lacking, mask, rsv, limit, as_str)
                frames += more
            else:
                source = buf
        else:
            buf += data
            source = buf
            frames, pos, error = parse(buf, 0, mask, rsv, limit, as_str)
        # What follows the complete frames: the start of the next one, left where it
        # arrived until the end (then copied into the buffer, or a large frame's own).
        tail: bytearray | memoryview = buf
        if source is buf:
            del buf[:pos]
        elif pos < len(data):
            tail = memoryview(data)[pos:]
        events: list[Event] = []
        if frames:
            if messages is not None:
                plain = self._plain_messages(frames)
                messages += frames[:plain] if plain < len(frames) else frames
                del frames[:plain]
            if frames:
                try:
                    self._process(frames, events)  # type: ignore[arg-type]  # str: only a whole ASCII text
                except ProtocolException as exc:
                    self._fail(exc, events)
                    return events
            self._partial = None
        if not self._reading:
            buf.clear()
        elif error is not None:
            code, reason = error
            if code == 1007:  # a whole text frame that is not UTF-8 (checked as it was unmasked)
                self._fail(TextFrameEncodingException(reason), events)
            else:
                cls = FrameTooLargeException if code == 1009 else ProtocolException
                self._fail(cls(reason, code), events)
        elif len(tail) > self.max_queued_bytes:
            self._fail(FrameTooLargeException(f"over {self.max_queued_bytes} bytes buffered"), events)
        elif tail and (total := _frames.frame_length(tail)) > self.max_queued_bytes:  # (none: the usual case)
            # It could never be buffered whole (with no limits: longer than any buffer).
            self._fail(FrameTooLargeException(f"a frame of {total} bytes is over {self.max_queued_bytes}"), events)
        elif tail:
            if not tail[0] & 0x48:
                # An uncompressed data frame is incomplete: fail fast on its bad UTF-8
                # now instead of when its last byte arrives (RFC 6455 8.1, Autobahn 6.4.3).
                try:
                    self._check_partial_text(tail)
                except ProtocolException as exc:
                    self._fail(exc, events)
                    return events
            # A large frame gets a buffer of its own, read into directly
            # (receive_buffer): a kept one at once, as the process holds it already;
            # else, a header being no promise, a new one only once a quarter of the
            # frame arrived (until then its bytes wait in the shared buffer like any
            # others), so it never commits more than four times what the peer sent.
            # One buffer of the frame's size, not one grown step by step: each step
            # would be a fresh allocation and a copy. What arrived of the frame goes
            # there straight from where it arrived.
            big = spare_buffers.take(total) if total >= _LARGE else None
            if big is None and total >= _LARGE and 4 * len(tail) >= total:
                big = bytearray(total)
            if big is not None:
                filled = len(tail)
                with memoryview(big) as into:
                    into[:filled] = tail
                buf.clear()
                self._big, self._big_filled, self._big_end = big, filled, total
            elif tail is not buf:
                buf += tail
        return events

    def _check_partial_text(self, buf: bytearray | memoryview) -> None:
        """Validate the UTF-8 of the incomplete frame at ``buf``'s start, as far as it arrived."""
        opcode = buf[0] & 0x0F
        if opcode == _TEXT and not self._frag_opcode:
            initial = 0
        elif opcode == 0 and self._frag_opcode == _TEXT and not self._frag_compressed:
            initial = self._frag_utf8
        else:
            return
        partial = self._partial
        if partial is None:
            partial = self._partial = PartialTextCheck()
        partial.advance(buf, initial)

    def _plain_messages(self, frames: list[tuple[int, bytes | str]]) -> int:
        """How many of ``frames``, from the first, are whole uncompressed messages within the limits.

        Only while no fragmented message is in progress (the caller's check):
        such a frame then is a message of its own, with nothing for
        :meth:`_process` to do but make its event (a text's UTF-8 was checked
        by ``parse_frames`` as it unmasked it).
        """
        limit = self.max_message_size
        count = 0
        for first_byte, payload in frames:
            if len(payload) > limit or (first_byte != _WHOLE_TEXT and first_byte != _WHOLE_BINARY):
                break
            count += 1
        return count

    def _process(self, frames: list[tuple[int, bytes]], events: list[Event]) -> None:
        append = events.append
        for b0, payload in frames:
            opcode = b0 & 0x0F
            if opcode in (_TEXT, _BINARY):
                if self._frag_opcode:
                    raise ProtocolException("new data message inside a fragmented message")
                compressed = b0 & 0x40
                if b0 & 0x80:
                    if compressed:
                        payload = self.deflate.decompress(payload, True, self.max_message_size)  # type: ignore[union-attr]
                    elif len(payload) > self.max_message_size:
                        raise FrameTooLargeException(f"message exceeds the limit of {self.max_message_size} bytes")
                    if opcode == _TEXT:
                        self._partial = None
                        if isinstance(payload, str):  # ASCII, so valid: decoded by the parser
                            append(TextReceived(payload))
                        elif compressed:
                            # Inflated here, so checked here: a large text without decoding
                            # (decoded only if someone asks for the str, so it is never
                            # held as both bytes and str), a small one by decoding it.
                            if len(payload) >= _LARGE:
                                if _frames.utf8_check(payload, 0) != 0:
                                    raise TextFrameEncodingException(INVALID_TEXT)
                                append(TextReceived(None, payload))
                            else:
                                try:
                                    append(TextReceived(payload.decode(), payload))
                                except UnicodeDecodeError:
                                    raise TextFrameEncodingException(INVALID_TEXT) from None
                        elif len(payload) >= _LARGE:
                            # Checked by parse_frames as it unmasked it; decoded only if asked.
                            append(TextReceived(None, payload))
                        else:
                            append(TextReceived(payload.decode(), payload))  # valid: parse_frames checked it
                    else:
                        append(BinaryReceived(payload))
                else:
                    self._frag_opcode = opcode
                    self._frag_compressed = bool(compressed)
                    self._frag_utf8 = 0
                    self._add_fragment(payload, False, append)
            elif opcode == 0:
                if not self._frag_opcode:
                    raise ProtocolException("continuation frame without a message to continue")
                if b0 & 0x40:
                    raise ProtocolException("RSV1 set on a continuation frame")
                self._add_fragment(payload, bool(b0 & 0x80), append)
            elif b0 & 0x40:
                raise ProtocolException("RSV1 set on a control frame")
            elif opcode == _PING:
                append(PingReceived(payload))
                if self.state is State.OPEN:
                    pongs = self._pongs_due
                    pongs.append(payload)
                    if len(pongs) > _MAX_PONGS_DUE:
                        # RFC 6455 5.5.3 lets us answer only the latest pings,
                        # so a ping flood cannot grow our replies.
                        del pongs[0]
            elif opcode == _PONG:
                append(PongReceived(payload, self._acknowledge(payload)))
            else:  # close
                self._receive_close(payload, append)
                return

    def _add_fragment(self, payload: bytes, fin: bool, append: Callable[[Event], None]) -> None:
        buffer = self._frag_buffer
        if self._frag_compressed:
            remaining = self.max_message_size - len(buffer)
            payload = self.deflate.decompress(payload, fin, remaining)  # type: ignore[union-attr]
        if len(buffer) + len(payload) > self.max_message_size:
            raise FrameTooLargeException(f"message exceeds the limit of {self.max_message_size} bytes")
        text = self._frag_opcode == _TEXT
        if text:
            self._partial = None  # its start was validated as it arrived: check it whole now
            state = _frames.utf8_check(payload, self._frag_utf8)
            if state < 0 or (fin and state):
                raise TextFrameEncodingException(INVALID_TEXT)
            self._frag_utf8 = state
        buffer += payload
        if fin:
            # Text is decoded straight from the buffer (valid: checked as it came).
            append(TextReceived(buffer.decode()) if text else BinaryReceived(bytes(buffer)))
            self._end_fragments()

    def _end_fragments(self) -> None:
        """No fragmented message in progress any more: let its bytes go."""
        self._frag_opcode = 0
        self._frag_buffer = bytearray()

    def _acknowledge(self, payload: bytes) -> tuple[bytes, ...]:
        pings = self._pings
        if payload not in pings:
            return ()
        acked = []
        for sent in list(pings):
            del pings[sent]
            acked.append(sent)
            if sent == payload:
                break
        return tuple(acked)

    def _receive_close(self, payload: bytes, append) -> None:  # type: ignore[no-untyped-def]
        if not payload:
            code, reason = 1005, ""
        elif len(payload) == 1:
            raise ProtocolException("close frame with a 1-byte payload")
        else:
            code = int.from_bytes(payload[:2], "big")
            if not is_valid_on_wire(code):
                raise ProtocolException(f"invalid close code {code}")
            try:
                reason = payload[2:].decode()
            except UnicodeDecodeError:
                raise TextFrameEncodingException("invalid UTF-8 in a close reason") from None
        # A close inside a fragmented message is a normal close: the partial
        # message is dropped.
        self._end_fragments()
        self.close_received = (code, reason)
        append(CloseReceived(code, reason))
        self.close_code, self.close_reason = code, reason
        self._stop_reading(payload[:2])

    def _queue_pongs(self) -> None:
        for payload in self._pongs_due:
            self._replies.append(self._frame(_frames.FIN | _PONG, payload))
        self._pongs_due.clear()

    def _fail(self, exc: ProtocolException, events: list[Event]) -> None:
        """Fail the WebSocket connection (RFC 6455 7.1.7)."""
        self.failure = exc
        self.close_code, self.close_reason = exc.code, exc.reason
        self._end_fragments()
        self._stop_reading(exc.code.to_bytes(2, "big") + exc.reason.encode()[:123])
        events.append(ConnectionFailed(exc.code, exc.reason))

    def _stop_reading(self, close_payload: bytes) -> None:
        """No more input; owe the peer ``close_payload`` unless our close went out already."""
        self._reading = False
        self._buffer.clear()
        self._big = None
        if self.close_sent is None:
            self._close_due = close_payload
        else:
            self.state = State.CLOSED

    def receive_eof(self) -> None:
        """The transport closed. Without a close frame first, the close code is 1006."""
        if self._reading:
            self.close_code, self.close_reason = 1006, ""
        self.eof_received = True
        self._reading = False
        self._close_due = None
        self.state = State.CLOSED
        self._buffer.clear()
        self._big = None
        self._pongs_due.clear()

    # -- sending ---------------------------------------------------------

    def _frame(self, first_byte: int, payload: str | bytes | bytearray | memoryview) -> bytes:
        if self.is_client:
            return _frames.build_frame(first_byte, payload, _mask_keys.next())
        return _frames.build_frame(first_byte, payload, None)

    def _check_open(self) -> None:
        if self.state is not State.OPEN:
            raise InvalidState(f"cannot send: the connection is {self.state.name}")

    def _send_data(self, opcode: int, payload: str | bytes | bytearray | memoryview, fin: bool) -> bytes:
        if self.state is not _OPEN:
            self._check_open()
        if self._send_frag_opcode:
            raise InvalidState("a fragmented message is in progress; send a continuation")
        b0 = opcode
        deflate = self.deflate
        if deflate is not None and deflate.compresses:
            payload = deflate.compress(payload.encode() if isinstance(payload, str) else payload, fin)
            b0 |= _frames.RSV1
            self._send_compressed = True
        else:
            self._send_compressed = False
        if fin:
            b0 |= _frames.FIN
        else:
            self._send_frag_opcode = opcode
        return self._frame(b0, payload)

    def send_text(self, data: str | bytes | bytearray | memoryview, fin: bool = True) -> bytes:
        """Frame a text message (or its first fragment when ``fin`` is false).

        ``bytes`` are taken as already UTF-8 encoded and sent as they are. An
        ASCII ``str`` is framed from its own data, with no encoded copy in
        between (by the C codec).
        """
        return self._send_data(_TEXT, data, fin)

    def frame_parts(self, data: str | bytes | bytearray | memoryview, binary: bool) -> tuple[bytes, bytes | memoryview]:
        """Frame a whole message as ``(header, payload)``, to be written in that order.

        For a large payload that needs neither masking nor compression the
        payload is the object given, not a copy (a server echoing 1 MiB writes
        the header and the received bytes, with no 1 MiB frame in between); a
        large ASCII ``str`` goes as its own data (a read-only view of it, with
        the C codec: ``utf8_view``), other text encoded once. Otherwise the
        whole frame is in ``header`` and ``payload`` is empty.
        """
        opcode = _BINARY if binary else _TEXT
        if isinstance(data, str) and not data.isascii():  # (a flag of the str: no scan)
            data = data.encode()
        if self.is_client or len(data) < _LARGE or (self.deflate is not None and self.deflate.compresses):
            return self._send_data(opcode, data, True), b""
        if isinstance(data, str):
            payload: bytes | memoryview = _frames.utf8_view(data)
        else:
            # It may be kept until written: not a buffer the caller can change.
            payload = data if isinstance(data, bytes) else bytes(data)
        empty = self._send_data(opcode, b"", True)  # every check, and the first header byte
        return _frames.frame_header(empty[0], len(payload)), payload

    def send_binary(self, data: bytes | bytearray | memoryview, fin: bool = True) -> bytes:
        """Frame a binary message (or its first fragment when ``fin`` is false)."""
        return self._send_data(_BINARY, data, fin)

    def send_continuation(self, data: str | bytes | bytearray | memoryview, fin: bool) -> bytes:
        """Frame the next fragment of the message started with ``fin=False``."""
        self._check_open()
        if not self._send_frag_opcode:
            raise InvalidState("no fragmented message to continue")
        if isinstance(data, str):
            data = data.encode()
        if self._send_compressed:
            data = self.deflate.compress(data, fin)  # type: ignore[union-attr]
        if fin:
            self._send_frag_opcode = 0
        return self._frame(_frames.FIN if fin else 0, data)

    def send_ping(self, payload: bytes = b"", *, unique: bool = True) -> bytes:
        """Frame a ping; its pong will be reported in ``PongReceived.acknowledged``.

        A payload still waiting for its pong raises ``ValueError``, since its
        pong could not tell the two apart; ``unique=False`` sends it anyway
        (the pong then acknowledges the first).
        """
        self._check_open()
        if len(payload) > 125:
            raise ValueError("a ping payload is at most 125 bytes")
        if payload in self._pings:
            if unique:
                raise ValueError("a ping with this payload is already waiting for its pong")
        else:
            self._pings[bytes(payload)] = None
        return self._frame(_frames.FIN | _PING, payload)

    def send_pong(self, payload: bytes = b"") -> bytes:
        """Frame an unsolicited pong (a one-way heartbeat)."""
        self._check_open()
        if len(payload) > 125:
            raise ValueError("a pong payload is at most 125 bytes")
        return self._frame(_frames.FIN | _PONG, payload)

    def send_close(self, code: int | None = 1000, reason: str = "") -> bytes:
        """Start the closing handshake; ``b""`` if a close was already sent.

        ``code=None`` sends a close frame without a code (the peer sees 1005).
        """
        if self.close_sent is not None or self._close_due is not None or self.state is State.CLOSED:
            return b""
        if code is None:
            if reason:
                raise ValueError("a close reason needs a close code")
            payload = b""
        else:
            if not is_valid_on_wire(code):
                raise ValueError(f"close code {code} may not be sent")
            encoded = reason.encode()
            if len(encoded) > 123:
                raise ValueError("a close reason is at most 123 bytes of UTF-8")
            payload = code.to_bytes(2, "big") + encoded
        self.close_sent = (1005 if code is None else code, reason)
        self.state = State.CLOSING
        return self._frame(_frames.FIN | _CLOSE, payload)

    def pongs_to_send(self) -> bytes:
        """Only the pongs owed so far: an adapter that writes each event's answer as it
        handles it calls this on :class:`PingReceived`, so a pong precedes the answers to
        later messages (Autobahn 5.6), while a close those cause waits for
        :meth:`data_to_send`."""
        if not self._pongs_due or self.close_sent is not None:
            return b""
        self._queue_pongs()
        out = b"".join(self._replies)
        self._replies = []
        return out

    def data_to_send(self) -> bytes:
        """The bytes the core wants written on its own: pongs and the close it owes.

        Call it after handling the events of each :meth:`receive_data`.
        """
        if self._pongs_due:
            if self.close_sent is None:
                self._queue_pongs()
            else:
                self._pongs_due.clear()
        close = self._close_due
        if close is not None:
            self._close_due = None
            self._replies.append(self._frame(_frames.FIN | _CLOSE, close))
            self.close_sent = (int.from_bytes(close[:2], "big") if close else 1005, "")
            self.state = State.CLOSED
        if not self._replies:
            return b""
        out = b"".join(self._replies)
        self._replies = []
        return out

    @property
    def frames_shareable(self) -> bool:
        """Whether the next data frame is exactly what ``build_frame`` makes of the payload.

        True for an open server connection without compression between messages:
        its frames are unmasked and carry no per-connection state, so one frame
        can be written to many such connections (a broadcast frames once).
        """
        return (
            self.state is State.OPEN
            and not self.is_client
            and not self._send_frag_opcode
            and (self.deflate is None or not self.deflate.compresses)
        )

    @property
    def sending_fragments(self) -> bool:
        """Whether a fragmented message is being sent: data frames of another would break it."""
        return bool(self._send_frag_opcode)

    @property
    def transport_action(self) -> TransportAction:
        """What the adapter does with TCP now; see :class:`TransportAction`.

        Ask after writing what :meth:`data_to_send` returned (and after
        :meth:`receive_eof`): once the state is ``CLOSED`` the answer is final.
        """
        if self.state is not State.CLOSED:
            return TransportAction.KEEP
        if self.eof_received:
            return TransportAction.CLOSE
        if self.failure is not None:
            return TransportAction.HALF_CLOSE
        return TransportAction.AWAIT_CLOSE if self.is_client else TransportAction.CLOSE

    @property
    def closed_cleanly(self) -> bool:
        """Whether both close frames crossed without a failure."""
        return self.failure is None and self.close_sent is not None and self.close_received is not None
