"""cheroot connections that wait for their first bytes, and their TLS handshake, off the threads.

cheroot hands every accepted connection to a worker thread, which reads its
request head at once, and its builtin TLS adapter (``ssl_module = 'builtin'``)
does the TLS handshake in ``wrap()``, on the thread that accepts every
connection. A peer that connects and sends nothing (or half a ClientHello)
then holds the accept thread, or a worker, for the whole ``socket_timeout``:
one such peer on a TLS port delays every other client's handshake.

:func:`defer_handshakes` gives a cheroot server, through its public
attributes ``ConnectionClass`` and ``ssl_adapter``:

- :class:`DeferredHandshakeSSLAdapter`, the builtin adapter whose ``wrap()``
  only wraps the socket (no handshake on the accept thread);
- connections (:class:`WaitingConnectionMixin`) whose first turn on a worker
  advances the TLS handshake without blocking, as far as the bytes received
  allow, and goes back to cheroot's keep-alive selector (a connection that
  asks to be kept open) until the peer sends more. cheroot's keep-alive expiry
  closes a connection left silent there for ``socket_timeout``; one that trickles
  its handshake is dropped once ``socket_timeout`` has passed since it was
  accepted. The request is read once its first bytes are in, as before.

What the builtin adapter does otherwise stays: the TLS environ entries
(``HTTPS``, ``SSL_*``: its ``get_environ()``, called once the handshake is
done), the 400 answer to plain HTTP sent to the TLS port, client certificates
(the adapter's context verifies them during the handshake).
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import time
from typing import Any

from cheroot import errors
from cheroot.server import HTTPConnection
from cheroot.ssl.builtin import BuiltinSSLAdapter

__all__ = ["DeferredHandshakeSSLAdapter", "WaitingConnectionMixin", "WaitingConnection", "defer_handshakes"]

#: What cheroot answers to plain HTTP on its TLS port (cheroot/connections.py), kept as it is.
_PLAIN_HTTP_MESSAGE = "The client sent a plain HTTP request, but this server only speaks HTTPS on this port."


class DeferredHandshakeSSLAdapter(BuiltinSSLAdapter):  # type: ignore[misc]
    """cheroot's builtin TLS adapter, whose ``wrap()`` leaves the handshake to the connection.

    ``wrap()`` returns the wrapped socket and no environ entries: a
    :class:`WaitingConnectionMixin` connection completes the handshake and asks
    :meth:`get_environ` for them then.
    """

    def wrap(self, sock: socket.socket) -> tuple[ssl.SSLSocket, dict[str, Any]]:
        """Wrap ``sock`` for the server side of TLS, without handshaking yet."""
        try:
            return self.context.wrap_socket(sock, do_handshake_on_connect=False, server_side=True), {}
        except OSError as exc:  # the peer is gone already: what cheroot expects of wrap()
            raise errors.FatalSSLAlert(*exc.args) from exc


def _adopt(adapter: BuiltinSSLAdapter) -> DeferredHandshakeSSLAdapter:
    """A :class:`DeferredHandshakeSSLAdapter` with ``adapter``'s settings and its context
    (which may be the application's own ``ssl_context``)."""
    options = {}
    if getattr(adapter, "private_key_password", None) is not None:  # cheroot 11 and later
        options["private_key_password"] = adapter.private_key_password
    deferred = DeferredHandshakeSSLAdapter(
        adapter.certificate, adapter.private_key, adapter.certificate_chain, adapter.ciphers, **options
    )
    deferred.context = adapter.context
    return deferred


def _readable(sock: Any) -> bool:
    """Whether a read on ``sock`` would not block (bytes, or the peer's end of stream)."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True  # decrypted already: no readiness event would announce it
    if hasattr(select, "poll"):  # no limit on the descriptor's number, unlike select()
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([sock], [], [], 0)[0])


class WaitingConnectionMixin:
    """Makes a cheroot ``HTTPConnection`` wait for its peer in the selector, not on a worker.

    Until its first request can be read, each turn of the connection on a worker
    thread does what the bytes received allow without blocking (the TLS
    handshake, with a :class:`DeferredHandshakeSSLAdapter`) and then asks cheroot to
    keep it open: cheroot puts it in its keep-alive selector, which gives it back to
    a worker when the peer sends more, or closes it after ``socket_timeout`` of
    silence. A connection is dropped once ``socket_timeout`` has passed since it was
    accepted without a request head to read.
    """

    server: Any
    socket: Any
    ssl_env: Any
    _waiting = True
    _handshaken = False
    _failed = False
    _deadline: float | None = None

    def communicate(self) -> bool:
        """Read and answer a request, or wait in the selector for the peer's bytes."""
        if self._waiting:
            if self._deadline is None:
                self._deadline = time.monotonic() + self.server.timeout
            elif time.monotonic() > self._deadline:
                return False  # too slow: cheroot closes it
            if not self._ready():
                return not self._failed  # kept open: cheroot's selector waits for the peer
            self._waiting = False
        return bool(super().communicate())  # type: ignore[misc]

    def _ready(self) -> bool:
        """Whether a request head can be read without waiting for the peer."""
        adapter = self.server.ssl_adapter
        if adapter is not None and not isinstance(adapter, DeferredHandshakeSSLAdapter):
            return True  # another adapter: its handshake is its own business
        if adapter is not None and not self._handshaken and not self._advance_handshake(adapter):
            return False
        return _readable(self.socket)

    def _advance_handshake(self, adapter: DeferredHandshakeSSLAdapter) -> bool:
        """Advance the TLS handshake as far as the bytes received allow: whether it is done."""
        sock = self.socket
        try:
            try:
                sock.setblocking(False)
                sock.do_handshake()
            except ssl.SSLWantReadError:
                return False  # more from the peer first
            except ssl.SSLWantWriteError:  # our flight does not fit the send buffer: finish in time
                sock.settimeout(max(0.0, (self._deadline or 0.0) - time.monotonic()))
                sock.do_handshake()
        except ssl.SSLError as exc:
            self._failed = True
            if exc.errno == ssl.SSL_ERROR_SSL and "http request" in str(exc).lower():
                self._answer_plain_http(exc)
            else:
                self._log(f"peer dropped the TLS connection during handshake: {exc!s}")
            return False
        except OSError as exc:  # reset, or the handshake's time is over
            self._failed = True
            self._log(f"peer lost during the TLS handshake: {exc!s}")
            return False
        finally:
            sock.settimeout(self.server.timeout)
        self._handshaken = True
        self.ssl_env = adapter.get_environ(sock)  # type: ignore[no-untyped-call]
        return True

    def _answer_plain_http(self, exc: ssl.SSLError) -> None:
        """What cheroot's accept thread does for plain HTTP on a TLS port: a 400 in plain text."""
        self._log(f"attempted to speak plain HTTP into a TCP connection configured for TLS-only traffic: {exc!s}")
        response = (
            f"{self.server.protocol} 400 Bad Request\r\nContent-Length: {len(_PLAIN_HTTP_MESSAGE)}\r\n"
            f"Content-Type: text/plain\r\n\r\n{_PLAIN_HTTP_MESSAGE}"
        ).encode("ISO-8859-1")
        with contextlib.suppress(OSError):  # the peer is gone: nothing to answer
            # On the TCP socket under TLS: socket.socket's own sendall, not SSLSocket's.
            socket.socket.sendall(self.socket, response)

    def _log(self, message: str) -> None:
        peer = getattr(self, "remote_addr", None), getattr(self, "remote_port", None)
        self.server.error_log(f"Client {peer!s}: {message}")


class WaitingConnection(WaitingConnectionMixin, HTTPConnection):  # type: ignore[misc]
    """cheroot's ``HTTPConnection`` (CherryPy's), waiting for its peer in the selector."""


_connections: dict[type, type] = {}


def defer_handshakes(httpserver: Any) -> None:
    """Make ``httpserver`` (a cheroot ``HTTPServer``) wait for silent or slow peers, and do
    TLS handshakes, off its accept and worker threads (see the module docstring).

    cheroot's builtin TLS adapter is replaced with a :class:`DeferredHandshakeSSLAdapter`
    with the same settings; another adapter is left as it is (pyOpenSSL's handshakes
    on the worker already). Call it before the server listens."""
    connection = getattr(httpserver, "ConnectionClass", None)
    if not isinstance(connection, type) or not issubclass(connection, HTTPConnection):
        return
    if not issubclass(connection, WaitingConnectionMixin):
        if connection is HTTPConnection:
            httpserver.ConnectionClass = WaitingConnection
        else:  # the application's own connection class
            if connection not in _connections:
                _connections[connection] = type(
                    f"Waiting{connection.__name__}", (WaitingConnectionMixin, connection), {}
                )
            httpserver.ConnectionClass = _connections[connection]
    if type(httpserver.ssl_adapter) is BuiltinSSLAdapter:  # exactly: a subclass may wrap its own way
        httpserver.ssl_adapter = _adopt(httpserver.ssl_adapter)
