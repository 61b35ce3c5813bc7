"""picows (latest): ``ws_create_server`` with a ``WSListener`` that echoes frames, or broadcasts.

Run in bench/.venvs/picows: ``python picows_server.py PORT [--broadcast] [--uvloop]``.
picows hands over frames, not messages: the listener echoes each data frame as
it arrives, with its opcode and FIN bit (so a fragmented message goes back
fragmented the same way), its payload a memoryview into picows' read buffer,
text not decoded; while the transport's write buffer is above its high-water
mark the listener stops reading (flow control). A close frame is answered with a close frame and the
transport is closed, as in picows' examples; pings are answered by picows
itself (``enable_auto_pong``, its default; the listener would answer one it
saw). ``max_frame_size=2**24`` (picows' default is 10 MiB); no compression
(picows has none); no keepalive (``enable_auto_ping`` is off by default).
picows uses its ``aiofastnet`` transports (installed with it) on both loops: its
default.
"""

from __future__ import annotations

from _common import BROADCAST_COUNT, BROADCAST_PAYLOAD, BROADCAST_TRIGGER, run_asyncio
from picows import WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest, ws_create_server

MAX_SIZE = 2**24  # ws4py's default message limit
TRIGGER = BROADCAST_TRIGGER.encode()
PAYLOAD = BROADCAST_PAYLOAD.encode()

transports: set[WSTransport] = set()


class Echo(WSListener):
    transport: WSTransport

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    # Flow control, as the other servers have it (their sends wait for the transport to drain): while the
    # transport's write buffer is above its high-water mark, read no more (picows' default only logs a warning).
    def pause_writing(self) -> None:
        self.transport.underlying_transport.pause_reading()

    def resume_writing(self) -> None:
        self.transport.underlying_transport.resume_reading()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        msg_type = frame.msg_type
        if msg_type is WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
        elif msg_type is WSMsgType.PING:
            transport.send_pong(frame.get_payload_as_bytes())
        elif msg_type is not WSMsgType.PONG:  # TEXT, BINARY, CONTINUATION
            transport.send(msg_type, frame.get_payload_as_memoryview(), frame.fin)


class Broadcaster(WSListener):
    def on_ws_connected(self, transport: WSTransport) -> None:
        transports.add(transport)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        transports.discard(transport)

    def pause_writing(self) -> None:
        pass  # a broadcast writes on regardless (picows' default only logs a warning)

    def resume_writing(self) -> None:
        pass

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        msg_type = frame.msg_type
        if msg_type is WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
        elif msg_type is WSMsgType.PING:
            transport.send_pong(frame.get_payload_as_bytes())
        elif msg_type is WSMsgType.TEXT and frame.fin and frame.get_payload_as_bytes() == TRIGGER:
            clients = list(transports)  # a send that fails disconnects its transport, which leaves the set
            for _ in range(BROADCAST_COUNT):
                for client in clients:
                    client.send(WSMsgType.TEXT, PAYLOAD)


async def main(broadcasting: bool, port: int) -> None:
    listener = Broadcaster if broadcasting else Echo

    def listener_factory(_request: WSUpgradeRequest) -> WSListener:
        return listener()

    # backlog: asyncio's default, 100
    server = await ws_create_server(listener_factory, "127.0.0.1", port, max_frame_size=MAX_SIZE)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    run_asyncio(lambda a: main(a.broadcast, a.port), __doc__ or "")
