"""What ``serve`` accepts as an application, for each stack, turned into one shape.

asyncio (the default), ``ATTR`` is one of:

- an ``async def handler(connection)``, as :func:`ws4py.asyncio.serve` takes;
- an application object with an async ``handler(connection)`` method and,
  optionally, ``serve_options(host, port) -> dict`` (more keyword arguments
  for :func:`ws4py.asyncio.serve`: ``process_request``, ``origins``,
  ``max_size``, ``subprotocols``...; the command line's ``--host``, ``--port``,
  TLS and ``--close-timeout`` win over them), ``async def startup()`` (awaited
  in each worker once its broker is set, before it listens) and ``async def
  shutdown()`` (awaited after its connections are closed);
- a class or a function taking no argument that returns one of the above:
  called once in each worker (after ``--broker`` is set, so the application
  may keep ``ws4py.pubsub.get_broker()``).

``--threaded``: ``ATTR`` is a :class:`ws4py.websocket.WebSocket` subclass,
served by wsgiref's server with a :class:`~ws4py.manager.WebSocketManager`.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..websocket import WebSocket
from .errors import CliError

__all__ = ["AsyncioApp", "asyncio_app", "check_asyncio_target", "threaded_app"]

#: Keyword arguments of ``serve`` the command line sets itself.
_OWN = frozenset({"host", "port", "ssl", "reuse_port", "close_timeout", "unix"})


async def _nothing() -> None:
    return None


@dataclass
class AsyncioApp:
    """An application for :func:`ws4py.asyncio.serve`, whatever shape ``ATTR`` had."""

    handler: Callable[[Any], Awaitable[None]]
    options: dict[str, Any] = field(default_factory=dict)
    startup: Callable[[], Awaitable[None]] = _nothing
    shutdown: Callable[[], Awaitable[None]] = _nothing


def asyncio_app(target: Any, spec: str, host: str | None, port: int, *, factory: bool = True) -> AsyncioApp:
    """``target`` (what ``spec`` names) as an :class:`AsyncioApp`; :class:`CliError` if it is none of the shapes."""
    check_asyncio_target(target, spec, factory=factory)
    if inspect.iscoroutinefunction(target):
        return AsyncioApp(target)
    if _is_app_object(target):
        return _app_object(target, spec, host, port)
    return asyncio_app(target(), f"{spec}()", host, port, factory=False)


def check_asyncio_target(target: Any, spec: str, *, factory: bool = True) -> None:
    """Raise :class:`CliError` if ``target`` cannot be an asyncio application; a factory is not called.

    The supervisor of ``--workers`` checks this first: a wrong ``ATTR`` is one
    clear error, not workers dying one after the other.
    """
    if inspect.iscoroutinefunction(target):
        return
    if _is_app_object(target):
        if not inspect.iscoroutinefunction(target.handler):
            raise CliError(f"{spec}: its handler must be an async def handler(connection)")
        return
    if isinstance(target, type) and issubclass(target, WebSocket):
        raise CliError(f"{spec} is a threaded WebSocket class: serve it with --threaded")
    if factory and callable(target):
        try:
            inspect.signature(target).bind()
        except TypeError:
            raise CliError(f"{spec} is not an async def handler(connection), nor a factory without arguments") from None
        except ValueError:
            pass  # no signature to check (a builtin): calling it will tell
        return
    raise CliError(f"{spec} is not an async def handler(connection), an application object or a factory of one")


def _is_app_object(target: Any) -> bool:
    return not isinstance(target, type) and getattr(target, "handler", None) is not None


def _app_object(target: Any, spec: str, host: str | None, port: int) -> AsyncioApp:
    options: dict[str, Any] = {}
    serve_options = getattr(target, "serve_options", None)
    if serve_options is not None:
        options = {k: v for k, v in dict(serve_options(host, port)).items() if k not in _OWN}
    startup = getattr(target, "startup", None) or _nothing
    shutdown = getattr(target, "shutdown", None) or _nothing
    return AsyncioApp(target.handler, options, startup, shutdown)


def threaded_app(target: Any, spec: str) -> type[WebSocket]:
    """``target`` as the WebSocket class the threaded server makes for each connection."""
    if isinstance(target, type) and issubclass(target, WebSocket):
        return target
    raise CliError(f"{spec} is not a ws4py.websocket.WebSocket subclass, which --threaded serves")
