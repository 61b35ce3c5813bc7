"""A client websocket with a thread of its own."""

from __future__ import annotations

import threading
from typing import Any

from . import WebSocketBaseClient

__all__ = ["WebSocketClient"]


class WebSocketClient(WebSocketBaseClient):
    """After ``connect()`` the connection runs on its own thread (a daemon by default).

    The usual code::

        ws = MyClient("ws://127.0.0.1:9000/ws")
        ws.connect()
        ws.run_forever()
    """

    def __init__(self, url: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(url, *args, **kwargs)
        self._th = threading.Thread(target=self.run, name="WebSocketClient", daemon=True)

    @property
    def daemon(self) -> bool:
        """Whether the client's thread is a daemon (it does not keep the process alive)."""
        return self._th.daemon

    @daemon.setter
    def daemon(self, flag: bool) -> None:
        self._th.daemon = flag

    def handshake_ok(self) -> None:
        """Start the client's thread, which calls ``opened()`` and then reads."""
        self._th.start()

    def run_forever(self) -> None:
        """Block until the connection is over."""
        if self._th.ident is not None:
            self._th.join()
