"""The settings of asyncio connections, and their one builder for ``serve``, ``connect`` and the callbacks API."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ..protocol.connection import DEFAULT_MAX_MESSAGE_SIZE
from ..protocol.deflate import DeflateOptions

__all__ = ["COMPRESSIONS", "Options", "build_options", "deflate_options"]

#: The values ``compression`` takes: ``"deflate"`` (permessage-deflate) or ``None`` (no compression).
COMPRESSIONS = ("deflate", None)

_DEFLATE = DeflateOptions()  # settings only: one object for every handshake


@dataclass(frozen=True)
class Options:
    """Settings shared by every connection of one server or one ``connect`` (one object, not one per connection).

    ``max_size`` bounds a message (bytes, after decompression; ``None``: no
    bound), ``max_queue`` the received messages waiting for ``recv`` (reading
    pauses at that many) and ``max_queue_bytes`` the memory they hold (reading
    pauses at that much too; ``None``: no bound), ``write_limit`` the bytes
    waiting in the transport before ``send`` waits.

    ``max_queue_bytes`` counts what a queued message really holds: a binary
    message its bytes, a text its ``str`` (as ``sys.getsizeof`` counts it)
    and its UTF-8 bytes while they are kept (a large text is kept as its bytes
    alone, decoded by ``recv``). Reading pauses once the queue holds that much
    in two messages or more, or in one message of 1 MiB or more (a lone small
    message never pauses it, so an echo in lockstep pays no pause per
    message). What one read brings (at most 256 KiB) is queued before the
    check, so the queue holds at most about
    ``max(max_queue_bytes, 1 MiB) + max_size``.
    ``ping_interval``/``ping_timeout`` drive the keepalive (``None`` turns it
    off); ``open_timeout`` bounds the opening handshake and ``close_timeout``
    the closing one.

    ``max_queue_bytes`` is small by default because the socket's kernel buffer
    reads ahead already: large messages queued beyond it would only leave the
    CPU cache before the handler sends them on (16 queued 64 KiB messages per
    connection made an echo server a third slower), and what a slow consumer
    holds stays near ``max_size`` instead of ``max_queue`` times it.
    """

    max_size: int | None = DEFAULT_MAX_MESSAGE_SIZE
    max_queue: int = 16
    max_queue_bytes: int | None = 64 * 1024
    write_limit: int = 32 * 1024
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    open_timeout: float | None = 10.0
    close_timeout: float | None = 10.0
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("ws4py.asyncio"))

    def __post_init__(self) -> None:
        if self.max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        if self.max_queue_bytes is not None and self.max_queue_bytes < 0:
            raise ValueError("max_queue_bytes must not be negative")
        if self.write_limit < 0:
            raise ValueError("write_limit must not be negative")


def deflate_options(compression: str | None) -> DeflateOptions | None:
    """The permessage-deflate settings a handshake offers or accepts for ``compression``.

    ``"deflate"``: the defaults of RFC 7692; ``None``: no compression. Any
    other value is a ``ValueError``, raised where it was given.
    """
    if compression == "deflate":
        return _DEFLATE
    if compression is None:
        return None
    raise ValueError(f"unsupported compression: {compression!r} (use 'deflate' or None)")


def build_options(
    *,
    compression: str | None,
    logger: logging.Logger | None,
    default_logger: str,
    max_size: int | None,
    max_queue: int,
    max_queue_bytes: int | None,
    write_limit: int,
    ping_interval: float | None,
    ping_timeout: float | None,
    open_timeout: float | None,
    close_timeout: float | None,
) -> tuple[Options, DeflateOptions | None]:
    """The :class:`Options` and the compression settings of the keyword arguments ``serve`` and ``connect`` share.

    ``logger`` defaults to the logger named ``default_logger``. Raises
    ``ValueError`` for an unknown ``compression`` or a limit out of range.
    """
    deflate = deflate_options(compression)
    options = Options(
        max_size=max_size,
        max_queue=max_queue,
        max_queue_bytes=max_queue_bytes,
        write_limit=write_limit,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        open_timeout=open_timeout,
        close_timeout=close_timeout,
        logger=logger or logging.getLogger(default_logger),
    )
    return options, deflate
