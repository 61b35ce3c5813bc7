"""What every benchmark server shares: its command line and the file-descriptor limit.

Each server script runs in its peer's own virtualenv; this module sits next to
them (the script's directory is on ``sys.path``) and uses only the standard
library.
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import resource
import signal
from collections.abc import Callable, Coroutine
from typing import Any

# The broadcast row: on the text message "go", the server sends BROADCAST_COUNT
# text messages of BROADCAST_PAYLOAD to every connected client.
BROADCAST_TRIGGER = "go"
BROADCAST_COUNT = 100
BROADCAST_PAYLOAD = "0123456789abcdef" * 4  # 64 B of ASCII


def parse_args(
    description: str,
    *,
    loop_choice: bool = False,
    busy_poll_choice: bool = False,
    more: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """``PORT [--broadcast]``; ``[--uvloop]`` with ``loop_choice``; ``[--busy-poll SECONDS]`` with
    ``busy_poll_choice``; ``more(parser)`` adds a server's own options."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("port", type=int, help="TCP port on 127.0.0.1")
    parser.add_argument(
        "--broadcast",
        action="store_true",
        help=f'broadcast server: "{BROADCAST_TRIGGER}" makes it send {BROADCAST_COUNT} messages of '
        f"{len(BROADCAST_PAYLOAD)} B to every client, instead of echoing",
    )
    if loop_choice:
        parser.add_argument("--uvloop", action="store_true", help="run on uvloop instead of the default loop")
    if busy_poll_choice:
        parser.add_argument(
            "--busy-poll",
            type=float,
            default=None,
            metavar="SECONDS",
            help="ws4py's busy_poll (how long its loops poll without sleeping after a read); its default if not given",
        )
    if more is not None:
        more(parser)
    return parser.parse_args()


def run_asyncio(main: Callable[[argparse.Namespace], Coroutine[Any, Any, None]], description: str) -> None:
    """The ``__main__`` of an asyncio server: its command line, :func:`prepare`, then ``main(args)`` on its loop."""
    args = parse_args(description, loop_choice=True)
    prepare()
    if args.uvloop:
        import uvloop  # only in the virtualenvs of the servers run on it

        uvloop.run(main(args))
    else:
        asyncio.run(main(args))


def configure_cherrypy(port: int) -> None:
    """CherryPy's defaults (``server.thread_pool`` 10, ``server.socket_queue_size`` 5) bound to
    127.0.0.1:``port``, quiet: no access log, no engine chatter, warnings and errors to stderr,
    no autoreloader polling the files every second. For the CherryPy servers' virtualenvs only."""
    import logging
    import sys

    import cherrypy

    cherrypy.config.update(
        {
            "server.socket_host": "127.0.0.1",
            "server.socket_port": port,
            "log.screen": False,
            "log.access_file": "",
            "log.error_file": "",
            "engine.autoreload.on": False,
        }
    )
    errors = logging.StreamHandler(sys.stderr)
    errors.setLevel(logging.WARNING)
    cherrypy.log.error_log.addHandler(errors)


def prepare() -> None:
    """What every server does first: lift the descriptor limit, and dump its threads' stacks on SIGUSR1."""
    raise_nofile_limit()
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 <pid>` shows where a hung server is


def raise_nofile_limit() -> None:
    """Lifts the soft RLIMIT_NOFILE to the hard limit: one descriptor per connection."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
