"""A client websocket with a greenlet of its own (gevent).

::

    from gevent import monkey; monkey.patch_all()
    from ws4py.client.geventclient import WebSocketClient

    ws = WebSocketClient("wss://example.com/ws")
    ws.connect()
    ws.send("hello")
    print(ws.receive())  # the next message, or None once the connection is over
    ws.close()

``connect()`` performs the opening handshake in the calling greenlet (TLS
verifies the server's certificate and name by default, as
:class:`~ws4py.client.WebSocketBaseClient` does), then the connection runs
in a greenlet of its own, driven by a :class:`~ws4py.geventloop.GreenletLoop`.
Received messages wait in :attr:`WebSocketClient.messages`, a gevent queue.
The process must be monkey-patched (``monkey.patch_all()`` first): ``connect()``
refuses to run otherwise (it would block every greenlet on a standard socket).
"""

from __future__ import annotations

from typing import Any

from gevent.queue import Queue

from gevent import Greenlet, monkey

from ..geventloop import GreenletLoop
from ..messaging import Message
from . import WebSocketBaseClient

__all__ = ["WebSocketClient"]


class WebSocketClient(WebSocketBaseClient):
    """A client whose connection runs in a greenlet; :meth:`receive` returns its messages.

    Same arguments as :class:`~ws4py.client.WebSocketBaseClient`.
    """

    def __init__(
        self,
        url: str,
        protocols: list[str] | None = None,
        extensions: list[str] | None = None,
        heartbeat_freq: float | None = None,
        ssl_options: dict[str, Any] | None = None,
        headers: list[tuple[str, str]] | None = None,
        exclude_headers: list[str] | None = None,
    ) -> None:
        super().__init__(url, protocols, extensions, heartbeat_freq, ssl_options, headers, exclude_headers)
        #: The messages received, then ``StopIteration`` once the connection is over.
        self.messages: Queue = Queue()
        self._th = Greenlet(self.run)
        self._driver = GreenletLoop()

    @property
    def greenlet(self) -> Greenlet:
        """The greenlet that runs the connection (started by :meth:`connect`)."""
        return self._th

    def connect(self) -> None:
        """Connect and perform the opening handshake in the calling greenlet, then start
        the client's greenlet.

        Raises ``RuntimeError`` when gevent has not patched :mod:`socket` (and :mod:`ssl`
        for ``wss://``): the handshake would then block every greenlet of the thread on a
        standard socket, the server's too when it runs in the same process.
        """
        for name in ("socket", "ssl") if self.secure else ("socket",):
            if not monkey.is_module_patched(name):
                raise RuntimeError(
                    f"ws4py's gevent client needs gevent's monkey-patching of {name}: without it, connect() "
                    "blocks every greenlet of this thread; call `from gevent import monkey; monkey.patch_all()` "
                    "before anything else"
                )
        super().connect()

    def handshake_ok(self) -> None:
        """Start the client's greenlet, which calls ``opened()`` and then reads.

        The connection is bound to its loop here already: what is sent before the
        greenlet first runs is written (or buffered) as any later send is.
        """
        if self.bind_loop(self._driver):
            self._th.start()

    def run(self) -> None:
        """Drive the connection in the calling greenlet until it is over."""
        if self.terminated or self._driver.finished:
            return
        self.bind_loop(self._driver)  # False when handshake_ok() bound it already
        self._driver.run(self)

    def run_forever(self) -> None:
        """Block the calling greenlet until the connection is over."""
        if self._th.started or self._th.dead:
            self._th.join()

    def received_message(self, message: Message) -> None:
        self.messages.put(message)

    def closed(self, code: int, reason: str | None = None) -> None:
        # Nothing more will come: a receive() waiting wakes up with None.
        self.messages.put(StopIteration)

    def receive(self, block: bool = True) -> Message | None:
        """The next message, waiting for it in the calling greenlet (with ``block``);
        ``None`` once the connection is over and every message was taken.

        Not blocking, it raises :class:`gevent.queue.Empty` when no message waits.
        """
        if self.terminated and self.messages.empty():
            return None
        message = self.messages.get(block=block)
        if message is StopIteration:
            return None
        return message  # type: ignore[no-any-return]
