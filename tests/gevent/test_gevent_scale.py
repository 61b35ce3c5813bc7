"""10,000 concurrent gevent clients against the gevent server, each in its own greenlet.

The server and the clients are two monkey-patched subprocesses. Every client
holds its connection until all 10,000 echoed (so all are open at once), then
closes; every echo is checked. Afterwards neither process holds a greenlet or
a socket more than before: the clients count theirs, the server reports its
own (``/status``). These 10,000 connections are also the server's 10,000
connect/disconnect cycles for the leak check.
"""

from __future__ import annotations

import resource

import pytest
from faultkit import wait_until
from gevent_support import GeventServer, run_peer

CLIENTS = 10_000


def test_10000_concurrent_gevent_clients_echo_and_release_everything(gevent_server: GeventServer) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < CLIENTS + 500:
        pytest.skip(f"needs {CLIENTS + 500} file descriptors, the hard limit is {hard}")
    before = gevent_server.status()
    report = run_peer("clients", str(gevent_server.port), str(CLIENTS), timeout=90)
    assert report["failed"] == 0, report["failures"]
    assert report["after"] == report["before"], report  # the clients' greenlets and sockets
    assert wait_until(lambda: gevent_server.status()["websockets"] == before["websockets"], 10)
    after = gevent_server.status()
    assert after["fds"] <= before["fds"], (before, after)
    assert after["greenlets"] <= before["greenlets"], (before, after)
