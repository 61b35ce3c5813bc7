"""An ASGI WebSocket (the HTTP & WebSocket spec 2.5) on ws4py's core and asyncio transport.

:class:`ASGIWebSocket` is the asyncio protocol an ASGI server hands an upgrade
request to: it reads the request head, runs the application with the
``websocket`` scope, and turns the application's messages into the opening
handshake's answer (101, 403, the ``websocket.http.response`` denial, or 500)
and then into frames. Where the settings come from and how the server keeps
track of its connections is a subclass's business: :mod:`ws4py.server.uvicorn`.

It stands on :class:`ws4py.asyncio.Connection` (the receive queue with its
flow control, ``send`` waiting for the transport to drain, keepalive, the
closing handshake) and on the core (:mod:`ws4py.protocol`): every WebSocket
rule is theirs. This module only maps the ASGI messages onto them:

- ``receive()`` returns ``websocket.connect`` first, then one
  ``websocket.receive`` per message, then ``websocket.disconnect`` (with the
  peer's close code and reason, 1006 when the connection was lost without a
  close frame) for every later call. Reading pauses while the application has
  not taken ``max_queue`` messages.
- ``send()`` takes ``websocket.accept`` (``subprotocol``, ``headers``),
  ``websocket.close`` (403 before the accept, a close frame after),
  ``websocket.http.response.start`` / ``.body`` before the accept, and
  ``websocket.send``, which waits while the transport holds more than
  ``write_limit``. A message the spec does not allow in the state the
  connection is in raises ``RuntimeError``; a data message once the client
  has gone raises :class:`ClientDisconnected` (an ``OSError``, spec 2.4).
- The application failing or returning before it accepts answers 500; failing
  after, closes with 1011; returning after, closes with 1000.
"""

from __future__ import annotations

import asyncio
import enum
import http
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote

from ..asyncio.connection import Connection
from ..asyncio.handshake import ServerSide
from ..asyncio.options import Options
from ..exc import ConnectionClosed, HandshakeError
from ..protocol import Request, Response, ServerHandshake, State
from ..protocol.handshake import check_extra_response_headers
from ..protocol.headers import Headers, split_tokens

__all__ = ["SPEC_VERSION", "ASGIApp", "ASGIWebSocket", "ClientDisconnected", "Message"]

#: The version of the ASGI HTTP & WebSocket spec implemented (``scope["asgi"]["spec_version"]``).
SPEC_VERSION = "2.5"
#: Bytes a client may send before the 101 that are kept (reading pauses past them).
EARLY_LIMIT = 64 * 1024

#: An ASGI event: a mapping with a ``"type"``.
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
#: An ASGI application: ``await app(scope, receive, send)``.
ASGIApp = Callable[[dict[str, Any], Receive, Send], Awaitable[Any]]


class ClientDisconnected(OSError):
    """The application sent a message after the client had gone (ASGI spec 2.4: an ``OSError``)."""


class _Phase(enum.Enum):
    """Where the application is in the ASGI conversation (the connection's own state is the core's)."""

    CONNECTING = 0  # it has not answered the handshake yet
    RESPONDING = 1  # it sent websocket.http.response.start: the body follows
    ACCEPTED = 2  # it sent websocket.accept
    DONE = 3  # it sent websocket.close or the whole denial: nothing more to send


def _address(info: Any) -> tuple[str, int] | None:
    """``(host, port)`` of a socket address (IPv4 or IPv6), ``None`` otherwise."""
    if isinstance(info, (tuple, list)) and len(info) >= 2:
        return (str(info[0]), int(info[1]))
    return None


def _server_address(info: Any) -> tuple[str, int | None] | None:
    """The ``server`` of the scope: ``(host, port)``, or ``(path, None)`` for a Unix socket."""
    if isinstance(info, str) and info:
        return (info, None)
    return _address(info)


def _latin1(fields: Any) -> list[tuple[str, str]]:
    """ASGI header fields (byte strings) as the ``str`` pairs the core works with."""
    return [(bytes(name).decode("latin-1"), bytes(value).decode("latin-1")) for name, value in fields or ()]


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


class ASGIWebSocket(ServerSide, Connection):
    """One WebSocket of an ASGI application; see the module docstring.

    ``app`` is the ASGI 3 application; ``handshake`` the core's server
    handshake (its ``compression`` decides permessage-deflate). The optional
    ``connections`` set holds the protocol while its transport is there,
    ``tasks`` the application's task while it runs (as servers track them for
    a graceful shutdown); ``state`` is copied into each scope. Subclasses may
    override :meth:`default_headers` (fields every response carries).
    """

    # Slots, like the connections it stands on: a server holds one per idle connection.
    __slots__ = (
        "_app_task",
        "_asgi_handshake",
        "_asgi_version",
        "_connect_delivered",
        "_connections",
        "_decision",
        "_denial",
        "_disconnect",
        "_early",
        "_outcome",
        "_phase",
        "_root_path",
        "_shutting_down",
        "_state",
        "_tasks",
        "app",
        "scope",
    )

    def __init__(
        self,
        app: ASGIApp,
        options: Options,
        handshake: ServerHandshake,
        *,
        asgi_version: str = "3.0",
        root_path: str = "",
        state: dict[str, Any] | None = None,
        connections: set[Any] | None = None,
        tasks: set[asyncio.Task[None]] | None = None,
    ) -> None:
        super().__init__(options, handshake, self._start_app)
        self.app = app
        self._asgi_handshake = handshake
        self._asgi_version = asgi_version
        self._root_path = root_path
        self._state = state
        self._connections = connections
        self._tasks = tasks
        #: The scope given to the application (``None`` until the request head is read).
        self.scope: dict[str, Any] | None = None
        self._phase = _Phase.CONNECTING
        self._connect_delivered = False
        # The application's answer to the handshake: None to accept, or the response instead.
        self._decision: asyncio.Future[Response | None] = self._loop.create_future()
        # How the handshake ended: None once open, else why not (set once).
        self._outcome: asyncio.Future[BaseException | None] = self._loop.create_future()
        self._denial: tuple[int, list[tuple[str, str]], list[bytes]] | None = None
        self._disconnect: dict[str, Any] | None = None
        self._app_task: asyncio.Task[None] | None = None
        self._shutting_down = False
        # Bytes that came while the app decides (None when not deciding); see data_received.
        self._early: bytearray | None = None

    # -- what a server adds ----------------------------------------------------

    def default_headers(self) -> list[tuple[bytes, bytes]]:
        """Header fields every response carries unless the application sets its own (``date``, ``server``)."""
        return []

    def _with_defaults(self, fields: list[tuple[str, str]]) -> list[tuple[str, str]]:
        named = {name.lower() for name, _ in fields}
        defaults = [(n, v) for n, v in _latin1(self.default_headers()) if n.lower() not in named]
        return defaults + fields

    # -- the handshake: the application decides ----------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self._connections is not None:
            self._connections.add(self)

    def _start_app(self, _connection: Any, request: Request) -> asyncio.Future[Response | None]:
        """The ``process_request`` hook of the handshake: run the application, wait for its answer.

        Reading goes on meanwhile (the handshake paused it), so that a client that leaves is
        seen at once: the application's ``receive()`` gets its disconnect, and its task ends.
        """
        scope = self.scope = self._scope(request)
        self._early = bytearray()
        assert self._transport is not None
        self._transport.resume_reading()
        task = self._app_task = self._loop.create_task(self._run_app(scope))
        if self._tasks is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return self._decision

    def _scope(self, request: Request) -> dict[str, Any]:
        transport = self._transport
        assert transport is not None
        path, _, query = request.target.partition("?")
        root = self._root_path
        return {
            "type": "websocket",
            "asgi": {"version": self._asgi_version, "spec_version": SPEC_VERSION},
            "http_version": "1.1",
            "scheme": "wss" if transport.get_extra_info("sslcontext") is not None else "ws",
            "server": _server_address(transport.get_extra_info("sockname")),
            "client": _address(transport.get_extra_info("peername")),
            "root_path": root,
            "path": root + unquote(path),
            "raw_path": root.encode() + path.encode("ascii"),
            "query_string": query.encode("ascii"),
            "headers": [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in request.headers.items()],
            "subprotocols": split_tokens(request.headers.get_all("Sec-WebSocket-Protocol")),
            "state": {} if self._state is None else self._state.copy(),
            "extensions": {"websocket.http.response": {}},
        }

    def data_received(self, data: bytes | memoryview) -> None:
        early = self._early
        if early is not None and self._core is None:
            # A client must wait for the 101 before it sends (RFC 6455 4.1); what a hasty one sends
            # is kept for after the accept, up to EARLY_LIMIT, past which reading pauses.
            early += data
            if len(early) >= EARLY_LIMIT and self._transport is not None:
                self._transport.pause_reading()
            return
        super().data_received(data)

    def _decide(self, answer: Response | None) -> None:
        """Give the handshake the application's answer; the client has gone if it cannot take it."""
        if self._decision.done():
            raise ClientDisconnected("the client has gone")
        self._decision.set_result(answer)

    def _error_response(self) -> Response:
        fields = self._with_defaults([("Content-Type", "text/plain; charset=utf-8")])
        return Response(500, "Internal Server Error", Headers(fields), b"Internal Server Error\n")

    def _opened(self) -> None:
        super()._opened()
        if not self._outcome.done():
            self._outcome.set_result(None)
        early, self._early = self._early, None
        if early:
            self.data_received(bytes(early))
        task = self._app_task
        if self._shutting_down:
            self.start_close(1012)
        elif task is not None and task.done():
            self.start_close(1000)  # it accepted from another task and returned meanwhile

    def _handshake_failed(self, exc: BaseException) -> None:
        super()._handshake_failed(exc)
        self._early = None
        if not self._outcome.done():
            self._outcome.set_result(exc)

    def _lost(self, exc: Exception | None) -> None:
        super()._lost(exc)
        if not self._outcome.done():
            self._outcome.set_result(ClientDisconnected("the client has gone"))
        if self._connections is not None:
            self._connections.discard(self)

    # -- the application -----------------------------------------------------------

    async def _run_app(self, scope: dict[str, Any]) -> None:
        logger = self._options.logger
        failed = True
        try:
            result = await self.app(scope, self.asgi_receive, self.asgi_send)
            failed = False
            if result is not None:
                logger.error("ASGI callable should return None, but returned %r", result)
        except ClientDisconnected:
            failed = False  # raised by asgi_send: the client left, not an error (spec 2.4)
        except Exception:
            logger.exception("Exception in ASGI application")
        finally:
            self._app_ended(failed)

    def _app_ended(self, failed: bool) -> None:
        """The application returned (or failed, or was cancelled): answer or close what it left."""
        if not self._decision.done():
            if not failed:
                self._options.logger.error("ASGI callable returned without completing the handshake")
            self._decision.set_result(self._error_response())
        elif self._core is not None and self._core.state is State.OPEN:
            self.start_close(1011 if failed else 1000)

    async def asgi_receive(self) -> Message:
        """The ASGI ``receive`` callable."""
        if self._phase is _Phase.ACCEPTED and self._disconnect is None and self._core is not None:
            return await self._next_message()
        if not self._connect_delivered:
            self._connect_delivered = True
            return {"type": "websocket.connect"}
        if self._disconnect is None:
            # Before the handshake is over there is nothing to receive: wait for its end.
            outcome = await asyncio.shield(self._outcome)
            if outcome is None:
                return await self._next_message()
            self._disconnect = {"type": "websocket.disconnect", "code": 1006, "reason": ""}
        return dict(self._disconnect)

    async def _next_message(self) -> Message:
        try:
            data = await self.recv()
        except ConnectionClosed as exc:
            self._disconnect = {"type": "websocket.disconnect", "code": exc.code, "reason": exc.reason}
            return dict(self._disconnect)
        if type(data) is str:
            return {"type": "websocket.receive", "text": data}
        return {"type": "websocket.receive", "bytes": data}

    async def asgi_send(self, message: Message) -> None:
        """The ASGI ``send`` callable."""
        kind = message["type"]
        phase = self._phase
        if phase is _Phase.ACCEPTED:
            if kind == "websocket.send":
                await self._send_data(message)
            elif kind == "websocket.close":
                self._close_from_app(message)
            else:
                raise RuntimeError(f"expected 'websocket.send' or 'websocket.close', got {kind!r}")
        elif phase is _Phase.CONNECTING:
            if kind == "websocket.accept":
                await self._accept_app(message)
            elif kind == "websocket.close":
                self._phase = _Phase.DONE
                self._log_answer("403")
                self._decide(Response(403, "Forbidden", Headers(self._with_defaults([])), b""))
            elif kind == "websocket.http.response.start":
                self._start_denial(message)
            else:
                raise RuntimeError(
                    f"expected 'websocket.accept', 'websocket.close' or 'websocket.http.response.start', got {kind!r}"
                )
        elif phase is _Phase.RESPONDING:
            if kind != "websocket.http.response.body":
                raise RuntimeError(f"expected 'websocket.http.response.body', got {kind!r}")
            self._continue_denial(message)
        else:
            raise RuntimeError(f"{kind!r} after the connection was closed or refused by the application")

    async def _accept_app(self, message: Message) -> None:
        scope = self.scope
        assert scope is not None
        subprotocol = message.get("subprotocol")
        if subprotocol is not None and subprotocol not in scope["subprotocols"]:
            raise RuntimeError(f"subprotocol {subprotocol!r} was not offered by the client: {scope['subprotocols']}")
        # A header the handshake sets itself, or an invalid one, is the application's error (ValueError).
        fields = check_extra_response_headers(_latin1(message.get("headers")))
        handshake = self._asgi_handshake
        handshake.select_subprotocol = lambda _offered: subprotocol
        handshake.response_headers = self._with_defaults(fields)
        self._phase = _Phase.ACCEPTED
        self._decide(None)
        outcome = await asyncio.shield(self._outcome)
        if isinstance(outcome, HandshakeError) and outcome.status == 500:
            raise RuntimeError(f"the accept could not be sent: {outcome}")
        if outcome is not None:
            raise ClientDisconnected("the client has gone") from outcome
        self._log_answer("[accepted]")

    def _start_denial(self, message: Message) -> None:
        status = message["status"]
        fields = _latin1(message.get("headers"))
        # The core checks the status and the fields now, not once the body is complete.
        ServerHandshake.respond(Response(status, _reason(status), Headers(fields), b""))
        self._denial = (status, fields, [])
        self._phase = _Phase.RESPONDING

    def _continue_denial(self, message: Message) -> None:
        assert self._denial is not None
        status, fields, body = self._denial
        body.append(bytes(message.get("body", b"")))
        if not message.get("more_body", False):
            self._phase = _Phase.DONE
            self._log_answer(str(status))
            self._decide(Response(status, _reason(status), Headers(self._with_defaults(fields)), b"".join(body)))

    async def _send_data(self, message: Message) -> None:
        text = message.get("text")
        data = message.get("bytes")
        if (text is None) == (data is None):
            raise RuntimeError("websocket.send needs exactly one of 'text' and 'bytes'")
        if text is not None and not isinstance(text, str):
            raise TypeError(f"websocket.send 'text' must be str, not {type(text).__name__}")
        if data is not None and not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"websocket.send 'bytes' must be bytes, not {type(data).__name__}")
        if self._core is None:  # the accept did not go out: the client left first
            raise ClientDisconnected("the client has gone")
        try:
            await self.send(text if text is not None else data)  # type: ignore[arg-type]
        except ConnectionClosed as exc:
            raise ClientDisconnected(f"the client has gone ({exc.code})") from None

    def _close_from_app(self, message: Message) -> None:
        code = message.get("code", 1000)
        reason = message.get("reason") or ""
        core = self._core
        if core is not None and core.state is State.OPEN:
            self.start_close(code, reason)  # the core refuses a code or reason it may not send (ValueError)
        # Closing once the client has gone (or closed) is not an error: there is nothing left to close.
        self._phase = _Phase.DONE

    def _log_answer(self, answer: str) -> None:
        logger = self._options.logger
        scope = self.scope
        if scope is not None and logger.isEnabledFor(logging.INFO):
            client = scope["client"]
            where = scope["raw_path"].decode("latin-1")
            if scope["query_string"]:
                where += "?" + scope["query_string"].decode("latin-1")
            logger.info('%s - "WebSocket %s" %s', f"{client[0]}:{client[1]}" if client else "-", where, answer)

    # -- graceful shutdown -----------------------------------------------------------

    def shutdown(self) -> None:
        """The server is shutting down: 1012 (service restart) if open, 500 if the handshake is not over."""
        self._shutting_down = True
        core = self._core
        if not self._decision.done():
            self._decision.set_result(self._error_response())
        elif core is not None and core.state is State.OPEN:
            self.start_close(1012)
