"""The parts of uvicorn that ws4py.server.uvicorn relies on and uvicorn does not document (UVICORN_SEAMS).

One check per entry, against the installed uvicorn: a release that changes one fails here by
name, before the behaviour tests fail in a less telling way. The set of checks must match the
set of entries, so a new reliance cannot be added without its check.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable

import pytest
import uvicorn
from uvicorn.protocols.http import h11_impl, httptools_impl
from uvicorn.server import Server, ServerState

from ws4py.server.uvicorn import UVICORN_SEAMS


def _calls_in_order(function: Callable[..., object]) -> list[str]:
    """The names called in ``function``'s source, in order (``a.b.c(...)`` gives ``"c"``)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
    calls.sort(key=lambda node: (node.lineno, node.col_offset))
    names = []
    for call in calls:
        func = call.func
        names.append(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return names


def check_upgrade() -> None:
    for module, cls in ((h11_impl, h11_impl.H11Protocol), (httptools_impl, httptools_impl.HttpToolsProtocol)):
        source = inspect.getsource(cls.handle_websocket_upgrade)
        assert "self.ws_protocol_class(" in source, module.__name__
        for keyword in ("config=self.config", "server_state=self.server_state", "app_state=self.app_state"):
            assert keyword in source, (module.__name__, keyword)
        order = [
            name
            for name in _calls_in_order(cls.handle_websocket_upgrade)
            if name in ("connection_made", "set_protocol", "data_received")
        ]
        # connection_made first; then the head and set_protocol, in either order (0.36 feeds the head
        # before set_protocol, 0.55 after): ws4py's protocol takes both.
        assert order[0] == "connection_made" and sorted(order[1:]) == ["data_received", "set_protocol"], (
            module.__name__,
            order,
        )


def check_config() -> None:
    config = uvicorn.Config(lambda scope, receive, send: None, root_path="/r")
    assert config.loaded is False
    config.load()
    assert config.loaded is True and callable(config.loaded_app)
    assert config.asgi_version in ("2.0", "3.0") and config.root_path == "/r"
    for name in ("ws_max_size", "ws_max_queue", "ws_ping_interval", "ws_ping_timeout", "ws_per_message_deflate"):
        assert hasattr(config, name), name


def check_connections() -> None:
    assert isinstance(ServerState().connections, set)
    source = inspect.getsource(Server.shutdown)
    assert "connection.shutdown()" in source and "server_state.connections" in source
    assert "self.server_state.connections" in inspect.getsource(Server._wait_tasks_to_complete)


def check_tasks() -> None:
    assert isinstance(ServerState().tasks, set)
    assert "self.server_state.tasks" in inspect.getsource(Server._wait_tasks_to_complete)


def check_default_headers() -> None:
    headers = ServerState().default_headers
    assert isinstance(headers, list)
    assert "server_state.default_headers" in inspect.getsource(Server)


CHECKS: dict[str, Callable[[], None]] = {
    "upgrade": check_upgrade,
    "config": check_config,
    "connections": check_connections,
    "tasks": check_tasks,
    "default_headers": check_default_headers,
}


def test_every_seam_has_its_check() -> None:
    assert set(CHECKS) == set(UVICORN_SEAMS)


@pytest.mark.parametrize("seam", sorted(CHECKS))
def test_the_installed_uvicorn_still_has_the_seam(seam: str) -> None:
    CHECKS[seam]()
