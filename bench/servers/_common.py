"""What every benchmark server shares: its command line and the file-descriptor limit.

Each server script runs in its peer's own virtualenv; this module sits next to
them (the script's directory is on ``sys.path``) and uses only the standard
library.
"""

from __future__ import annotations

import argparse
import faulthandler
import resource
import signal

# The broadcast row: on the text message "go", the server sends BROADCAST_COUNT
# text messages of BROADCAST_PAYLOAD to every connected client.
BROADCAST_TRIGGER = "go"
BROADCAST_COUNT = 100
BROADCAST_PAYLOAD = "0123456789abcdef" * 4  # 64 B of ASCII


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("port", type=int, help="TCP port on 127.0.0.1")
    parser.add_argument(
        "--broadcast",
        action="store_true",
        help=f'broadcast server: "{BROADCAST_TRIGGER}" makes it send {BROADCAST_COUNT} messages of '
        f"{len(BROADCAST_PAYLOAD)} B to every client, instead of echoing",
    )
    return parser.parse_args()


def prepare() -> None:
    """What every server does first: lift the descriptor limit, and dump its threads' stacks on SIGUSR1."""
    raise_nofile_limit()
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 <pid>` shows where a hung server is


def raise_nofile_limit() -> None:
    """Lifts the soft RLIMIT_NOFILE to the hard limit: one descriptor per connection."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
