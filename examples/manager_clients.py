"""The client example of ws4py's "Managing a pool of WebSockets" page.

It opens 2,000 client websockets to ws://localhost:9000/ws, hands them to one
WebSocketManager (one thread for all of them) and logs every message they
receive, until every connection is closed or Ctrl-C closes them all.
Run it against examples/wsgiref_echo_server.py.
"""

from ws4py import configure_logger, format_addresses
from ws4py.client import WebSocketBaseClient
from ws4py.manager import WebSocketManager

logger = configure_logger()

m = WebSocketManager()


class EchoClient(WebSocketBaseClient):
    def handshake_ok(self):
        logger.info("Opening %s" % format_addresses(self))
        m.add(self)

    def received_message(self, msg):
        logger.info(str(msg))


if __name__ == "__main__":
    import time

    try:
        m.start()
        for i in range(2000):
            client = EchoClient("ws://localhost:9000/ws")
            client.connect()

        logger.info("%d clients are connected" % i)

        while True:
            for ws in m.websockets.values():
                if not ws.terminated:
                    break
            else:
                break
            time.sleep(3)
    except KeyboardInterrupt:
        m.close_all()
        m.stop()
        m.join()
