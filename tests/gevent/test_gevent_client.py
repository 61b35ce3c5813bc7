"""ws4py's gevent client (``ws4py.client.geventclient``), monkey-patched in a subprocess.

One subprocess plays every check against the gevent server (ws:// and, with a
trustme CA, wss://) and reports each; every test here asserts one of them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from gevent_support import GeventServer, run_peer


@pytest.fixture(scope="module")
def checks(gevent_server: GeventServer, gevent_tls: tuple[GeventServer, str]) -> dict[str, Any]:
    tls_server, cafile = gevent_tls
    return run_peer("client-checks", str(gevent_server.port), str(tls_server.port), cafile)


@pytest.mark.parametrize(
    "check",
    [
        "echo_text_and_binary",
        "heartbeat_pings_answered",
        "receive_none_after_close",
        "server_failure_ends_receive",
        "wss_with_the_ca",
        "wss_untrusted_refused",
        "hub_polls_busily_after_a_read_then_sleeps",
        "loop_reads_ahead_then_lets_the_hub_run",
    ],
)
def test_gevent_client(check: str, checks: dict[str, Any]) -> None:
    """connect/send/receive/close; receive() None after the close (and after the server's 1011);
    the heartbeat's pings (the greenlet loop's timers) answered;
    wss:// verified against the CA given; an untrusted certificate refused with a clear error;
    after a read the hub polls without sleeping for ``GreenletLoop.busy_poll``, then sleeps again;
    the loop reads a peer that answers at once without a turn of the hub per message, within
    ``GreenletLoop.read_ahead`` reads in a row."""
    assert check in checks, checks
    assert checks[check] is None, checks[check]


def test_gevent_client_refuses_to_connect_without_monkey_patching() -> None:
    """Unpatched, connect() would block every greenlet on a standard socket: a clear error instead."""
    code = (
        "from ws4py.client.geventclient import WebSocketClient\n"
        "try:\n"
        "    WebSocketClient('ws://127.0.0.1:9/').connect()\n"
        "except RuntimeError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert "monkey.patch_all()" in result.stdout, (result.stdout, result.stderr)


@pytest.mark.skipif(len(getattr(os, "sched_getaffinity", lambda _: ())(0)) < 2, reason="needs two CPUs")
def test_a_gevent_process_bound_to_one_cpu_never_polls_busily(gevent_server: GeventServer) -> None:
    """On one CPU the hub's busy polling would only delay the peer it waits for."""
    code = (
        "import os\n"
        "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
        "from gevent import monkey; monkey.patch_all()\n"
        "from ws4py.client.geventclient import WebSocketClient\n"
        "from ws4py.geventloop import GreenletLoop, busy_polling\n"
        "GreenletLoop.busy_poll = 5.0\n"
        f"client = WebSocketClient('ws://127.0.0.1:{gevent_server.port}/echo')\n"
        "client.connect()\n"
        "client.send('hello')\n"
        "print(client.receive(), busy_polling())\n"
        "client.close()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert result.stdout.split() == ["hello", "False"], (result.stdout, result.stderr)
