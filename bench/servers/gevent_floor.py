"""gevent floor (reference): the least a gevent server written in Python can do per echoed message.

Run in bench/.venvs/integrations: ``python gevent_floor.py PORT``.
Not a WebSocket library and not a competitor: ``monkey.patch_all()``, a
``gevent.server.StreamServer`` whose handler greenlet does ws4py's opening
handshake (``ServerHandshake``), then per read only ``recv_into`` (one
buffer), ws4py's C frame parser, ws4py's C framer and one ``sendall`` for
all the answers of that read, with no message objects, no callbacks, no
locks, no UTF-8 check and no limits. No gevent server written in Python
can spend less per small message, so it shows how much of a row is left to
any library on gevent: if this server does not meet a target against a
peer, no Python server on gevent can. It serves the 16 B and 1 KiB echo rows
only (its frame buffer is the simplest, not a fast one for large frames).
A close frame is answered and the socket closed; a ping is answered with
its pong.
"""

from gevent import monkey

monkey.patch_all()

from _common import parse_args, prepare  # noqa: E402 (after the monkey-patching, as gevent wants)
from gevent.server import StreamServer  # noqa: E402
from thread_floor import handle  # noqa: E402 (the per-connection work, on gevent's sockets here)


def main() -> None:
    args = parse_args(__doc__ or "")
    prepare()
    server = StreamServer(("127.0.0.1", args.port), handle, backlog=1024)
    server.serve_forever()


if __name__ == "__main__":
    main()
