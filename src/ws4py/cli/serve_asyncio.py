"""One serving process on :func:`ws4py.asyncio.serve` (``serve``'s default stack)."""

from __future__ import annotations

import asyncio
import signal

from ..asyncio import serve
from .apps import asyncio_app
from .brokers import close_broker, open_broker
from .target import load
from .worker import WorkerConfig, announce, listen_error

__all__ = ["run_asyncio"]


def run_asyncio(config: WorkerConfig) -> None:
    """Serve ``config.spec`` until SIGTERM, SIGINT or the supervisor's end; every connection then closes with 1001."""
    target = load(config.spec)
    asyncio.run(_serve(config, target))


async def _serve(config: WorkerConfig, target: object) -> None:
    loop = asyncio.get_running_loop()
    stop = loop.create_future()

    def request_stop() -> None:
        if not stop.done():
            stop.set_result(None)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, request_stop)
    parent_fd = config.parent_fd
    if parent_fd is not None:

        def parent_gone() -> None:  # readable: end of file, the supervisor is gone
            loop.remove_reader(parent_fd)  # it stays readable: once is enough
            request_stop()

        loop.add_reader(parent_fd, parent_gone)
    broker = open_broker(config.broker_url)
    try:
        app = asyncio_app(target, config.spec, config.host, config.port)
        await app.startup()
        try:
            server = serve(
                app.handler,
                config.host or None,
                config.port,
                ssl=config.ssl,
                reuse_port=config.reuse_port or None,
                close_timeout=config.close_timeout,
                **app.options,
            )
            try:
                await server.start()
            except OSError as exc:
                raise listen_error(config, exc) from None
            # Leaving the block closes every connection with 1001 and waits (bounded) for their handlers.
            async with server:
                announce(config, server.sockets[0].getsockname()[1], "asyncio")
                await stop
        finally:
            await app.shutdown()
    finally:
        close_broker(broker)
