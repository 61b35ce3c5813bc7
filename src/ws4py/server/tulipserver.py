"""Where the original ws4py kept its asyncio server protocol ("tulip" was asyncio's code name).

``WebSocketProtocol`` is :class:`ws4py.async_websocket.WebSocketProtocol`.
"""

from ..async_websocket import WebSocketProtocol

__all__ = ["WebSocketProtocol"]
