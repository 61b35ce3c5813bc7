"""Other clients through ws4py's CherryPy integration: ``websockets``, ``websocket-client``, Node's ``ws``.

The exchanges of ``tests/interop/test_interop_ws4py_server.py``, each with
each client, against CherryPy's server (the tool on ``/<client>/...`` with the
journaling echo websocket of ``interop_peers``, accepting permessage-deflate)
instead of the wsgiref one: the tests are imported from there as they are.
"""

from __future__ import annotations

import pytest
from cherrypy_support import Servers
from interop_peers import Server
from test_interop_ws4py_server import (  # noqa: F401 - collected here, against CherryPy
    client_name,
    connect,
    test_binary,
    test_client_ping,
    test_close_from_the_client,
    test_close_from_the_server,
    test_empty_messages,
    test_fragmented_from_the_client,
    test_fragmented_from_the_server,
    test_many_messages_in_a_row,
    test_permessage_deflate_on_the_wire,
    test_server_ping,
    test_text,
)


@pytest.fixture
def ws4py_server(servers: Servers) -> Server:
    """The CherryPy engine's main server, as the imported tests know a server."""
    return Server("cherrypy", servers.port, servers.journal, lambda: None, True)
