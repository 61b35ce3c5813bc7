"""ws4py's client over TLS (``wss://``) against ``websockets``' servers, with a trustme CA."""

from __future__ import annotations

import itertools
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from interop_peers import TIMEOUT, Journal, RecordingClient, sync_handler
from websockets.sync.server import serve as sync_serve

_paths = itertools.count(1)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture(scope="module", params=[True, False], ids=["deflate", "no-deflate"])
def tls_server(request: pytest.FixtureRequest, ca: trustme.CA) -> Iterator[tuple[int, bool]]:
    """``websockets``' sync server on TLS, certified for 127.0.0.1 by ``ca``; yields (port, compression)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server = sync_serve(
        sync_handler(Journal()),
        "127.0.0.1",
        0,
        ssl=context,
        compression="deflate" if request.param else None,
        close_timeout=TIMEOUT,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.socket.getsockname()[1], request.param
    finally:
        server.shutdown()
        thread.join(TIMEOUT)


def _client(port: int, compression: bool, ca_file: Path | None) -> RecordingClient:
    return RecordingClient(
        f"wss://127.0.0.1:{port}/tls/{next(_paths)}",
        extensions=["permessage-deflate"] if compression else None,
        ssl_options={"ca_certs": str(ca_file)} if ca_file else None,
    )


def test_echo_over_tls(tls_server: tuple[int, bool], ca_file: Path) -> None:
    port, compression = tls_server
    client = _client(port, compression, ca_file)
    client.connect()
    try:
        assert client.extensions == (["permessage-deflate"] if compression else [])
        # Many records at once: what the TLS layer holds beyond one read must be read too.
        messages = [("record ✓ " * (i * 97 % 4000)) for i in range(40)] + ["x" * 200_000]
        for message in messages:
            client.send(message)
        assert [str(client.next_message()) for _ in messages] == messages
        client.ping(b"tls ping")
        assert client.next_pong() == b"tls ping"
        client.close(4003, "tls bye")
        assert client.wait_closed()[0] == 4003
    finally:
        if not client.terminated:
            client.close()
        client.ended.wait(TIMEOUT)


def test_unknown_certificate_authority_is_refused(tls_server: tuple[int, bool]) -> None:
    port, compression = tls_server
    client = _client(port, compression, None)
    with pytest.raises(ssl.SSLCertVerificationError):
        client.connect()
