"""The two sides of the opening handshake on an asyncio transport.

:class:`ServerSide` reads the request (with an optional ``process_request``
hook that may answer plain HTTP or refuse) and answers it; :class:`ClientSide`
sends the request and reads the response. Each is mixed into an
:class:`~ws4py.asyncio.endpoint.Endpoint` subclass of its role; both hand the
core over with ``_established`` once the handshake is done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, cast

from ..exc import HandshakeError
from ..protocol import ClientHandshake, Request, Response, ServerHandshake
from ..protocol.headers import Headers
from ..protocol.http11 import serialize_request, serialize_response
from .endpoint import Endpoint

__all__ = ["ClientSide", "ServerSide"]


class ServerSide(Endpoint):
    """The server's opening handshake: read the request, run ``process_request``, accept or refuse."""

    __slots__ = ()

    def _handshake_started(self, transport: asyncio.Transport) -> None:
        pass  # the client speaks first

    def _handshake_data(self, data: bytes | memoryview) -> None:
        handshake = cast("ServerHandshake | None", self._handshake)
        if handshake is None:
            return  # refused, or a process_request hook is running: ignore what comes
        try:
            request = handshake.receive_data(data)
        except HandshakeError as exc:
            self._refuse(ServerHandshake.reject(exc), exc)
            return
        if request is None:
            return
        self.request = request
        hook = self._process_request
        if hook is None:
            self._accept(handshake, request)
            return
        assert self._transport is not None
        self._transport.pause_reading()
        self._handshake = None  # what arrives meanwhile waits in the kernel
        try:
            answer = hook(self, request)
        except Exception as exc:
            self._hook_failed(exc)
            return
        if isinstance(answer, Awaitable):
            task = self._hook_task = asyncio.ensure_future(answer)
            task.add_done_callback(lambda done: self._hook_done(handshake, request, done))
        else:
            self._answer(handshake, request, answer)

    def _hook_done(self, handshake: ServerHandshake, request: Request, done: asyncio.Future[Any]) -> None:
        self._hook_task = None
        if done.cancelled():
            self.abort()
            return
        exc = done.exception()
        if exc is not None:
            self._hook_failed(exc)
            return
        self._answer(handshake, request, done.result())

    def _hook_failed(self, exc: BaseException) -> None:
        self._options.logger.error("process_request failed", exc_info=exc)
        self._refuse(ServerHandshake.reject(500, "Internal Server Error"), exc)

    def _answer(self, handshake: ServerHandshake, request: Request, answer: Response | None) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if answer is None:
            self._handshake = handshake
            transport.resume_reading()
            self._accept(handshake, request)
            return
        if not isinstance(answer, Response):
            self._hook_failed(TypeError(f"process_request must return a Response or None, not {answer!r}"))
            return
        self._response = answer
        exc = HandshakeError(f"refused by process_request: {answer.status}", answer.status)
        self._refuse(ServerHandshake.respond(answer), exc)

    def _accept(self, handshake: ServerHandshake, request: Request) -> None:
        try:
            headers = handshake.negotiate(request)
        except HandshakeError as exc:
            self._refuse(ServerHandshake.reject(exc), exc)
            return
        assert self._transport is not None
        self._response = headers
        self._transport.write(serialize_response(101, headers))
        self._established(handshake.connection(max_message_size=self._options.max_size), handshake.leftover)

    def _refuse(self, answer: bytes, exc: BaseException) -> None:
        self._handshake = None
        transport = self._transport
        assert transport is not None
        transport.write(answer)
        transport.close()
        self._handshake_failed(exc)


class ClientSide(Endpoint):
    """The client's opening handshake: send the request, read the response."""

    __slots__ = ()

    def _handshake_started(self, transport: asyncio.Transport) -> None:
        handshake = cast(ClientHandshake, self._handshake)
        headers = handshake.request_headers()
        self.request = Request("GET", handshake.resource, Headers(headers))
        transport.write(serialize_request("GET", handshake.resource, headers))

    def _handshake_data(self, data: bytes | memoryview) -> None:
        handshake = cast("ClientHandshake | None", self._handshake)
        if handshake is None:
            return
        try:
            response = handshake.receive_data(data)
        except HandshakeError as exc:
            self._response = handshake.response
            self._handshake = None
            assert self._transport is not None
            self._transport.close()
            self._handshake_failed(exc)
            return
        if response is None:
            return
        self._response = response
        self._established(handshake.connection(max_message_size=self._options.max_size), handshake.leftover)
