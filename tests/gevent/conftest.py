"""Fixtures of the gevent tests: monkey-patched peers in subprocesses (see ``gevent_support``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trustme
from gevent_support import ROOT, GeventServer


@pytest.fixture(scope="session")
def gevent_server() -> Iterator[GeventServer]:
    """One monkey-patched gevent server for the tests that leave it as they found it."""
    server = GeventServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def start_server() -> Iterator[Callable[..., GeventServer]]:
    """Servers of a test's own (stopped, or killed, at its end)."""
    servers: list[GeventServer] = []

    def start(*args: str) -> GeventServer:
        server = GeventServer(*args)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A trustme CA's file (``ca``) and a server certificate for localhost and 127.0.0.1 it issued
    (``cert``, ``key``)."""
    ca = trustme.CA()
    folder = tmp_path_factory.mktemp("gevent-tls")
    issued = ca.issue_cert("localhost", "127.0.0.1")
    files = {"cert": str(folder / "cert.pem"), "key": str(folder / "key.pem"), "ca": str(folder / "ca.pem")}
    with open(files["cert"], "wb") as out:
        for pem in issued.cert_chain_pems:
            out.write(pem.bytes())
    issued.private_key_pem.write_to_path(files["key"])
    ca.cert_pem.write_to_path(files["ca"])
    return files


@pytest.fixture(scope="session")
def gevent_tls(tls_files: dict[str, str]) -> Iterator[tuple[GeventServer, str]]:
    """A gevent server on TLS with ``tls_files``' certificate, and the CA's file."""
    server = GeventServer("--certfile", tls_files["cert"], "--keyfile", tls_files["key"])
    yield server, tls_files["ca"]
    server.stop()


def _interop_conftest() -> Any:
    """tests/interop/conftest.py, loaded under a name of its own (both files are "conftest")."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("interop_conftest", ROOT / "tests" / "interop" / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: The ``node`` fixture of the interop suite (Node.js with ``ws`` 8 installed), reused as it is.
node = _interop_conftest().node
