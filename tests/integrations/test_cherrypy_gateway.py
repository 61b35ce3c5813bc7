"""How the plugin fits servers of other kinds: install_gateway() and a hand-over while stopping."""

from __future__ import annotations

import logging
import socket

import cherrypy
import pytest
from cheroot import wsgi as cheroot_wsgi
from cherrypy._cpserver import Server as CherryPyServer
from cherrypy.process.servers import ServerAdapter

from ws4py.server.cherrypyserver import WebSocketGatewayMixin, WebSocketPlugin, install_gateway
from ws4py.websocket import WebSocket


class Recording(WebSocket):
    codes: list[int] = []  # noqa: RUF012

    def closed(self, code: int, reason: str | None = None) -> None:
        self.codes.append(code)


def test_install_gateway_keeps_a_servers_own_gateway_class_as_the_base() -> None:
    server = CherryPyServer()  # not subscribed, never started: its HTTP server is only built
    server.socket_host, server.socket_port = "127.0.0.1", 0
    install_gateway(server)
    httpserver = server.httpserver
    assert issubclass(httpserver.gateway, WebSocketGatewayMixin)
    httpserver.gateway = cheroot_wsgi.Gateway_u0  # another WSGI flavour
    install_gateway(server)
    gateway = httpserver.gateway
    assert issubclass(gateway, WebSocketGatewayMixin) and issubclass(gateway, cheroot_wsgi.Gateway_u0)
    install_gateway(server)  # once is enough
    assert httpserver.gateway is gateway


def test_install_gateway_warns_about_a_server_without_a_cheroot_gateway(caplog: pytest.LogCaptureFixture) -> None:
    other = ServerAdapter(cherrypy.engine, httpserver=object(), bind_addr=("127.0.0.1", 0))
    with caplog.at_level(logging.WARNING, logger="ws4py"):
        install_gateway(other)
    assert "cannot hand connections to websockets" in caplog.text


def test_a_plugin_that_is_not_running_closes_what_it_is_handed() -> None:
    plugin = WebSocketPlugin(cherrypy.engine)  # never started
    ours, theirs = socket.socketpair()
    with theirs:
        websocket = Recording(ours)
        plugin.handle(websocket, ("127.0.0.1", 1))
        assert websocket.terminated and Recording.codes == [1006]
        assert theirs.recv(1) == b""  # its socket is closed
    plugin.cleanup()  # nothing started: nothing to stop
