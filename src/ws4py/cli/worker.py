"""What one serving process needs to know, and how it says it is listening.

The same settings drive a lone ``serve`` and each worker of ``--workers N``;
a worker also gets two pipes from its supervisor: one to say it is listening,
and one whose end of file means the supervisor is gone (so it stops too).
"""

from __future__ import annotations

import errno
import os
import ssl
from dataclasses import dataclass

from .errors import CliError

__all__ = ["WorkerConfig", "announce", "listen_error", "url_of"]


@dataclass(frozen=True)
class WorkerConfig:
    """The settings of one serving process."""

    spec: str
    host: str | None
    port: int
    ssl: ssl.SSLContext | None
    close_timeout: float
    broker_url: str | None
    #: Several workers listen on one port (SO_REUSEPORT).
    reuse_port: bool = False
    #: A worker writes ``"<pid> <port>\n"`` there once it listens (supervised), else prints where it listens.
    ready_fd: int | None = None
    #: The supervisor's pipe: end of file there means the supervisor died.
    parent_fd: int | None = None


def url_of(config: WorkerConfig, port: int) -> str:
    """The URL a client uses for a server on ``config``'s host and ``port``."""
    host = config.host or "0.0.0.0"
    if ":" in host:
        host = f"[{host}]"
    return f"{'wss' if config.ssl else 'ws'}://{host}:{port}/"


def announce(config: WorkerConfig, port: int, stack: str) -> None:
    """Say that this process listens on ``port``: to the supervisor, or on stdout for the user."""
    if config.ready_fd is not None:
        try:
            os.write(config.ready_fd, f"{os.getpid()} {port}\n".encode())
        except BrokenPipeError:
            pass  # the supervisor is gone: its other pipe's end of file stops this worker
        finally:
            os.close(config.ready_fd)
    else:
        print(f"ws4py serve: {config.spec} on {url_of(config, port)} ({stack}, pid {os.getpid()})", flush=True)


def listen_error(config: WorkerConfig, exc: OSError) -> CliError:
    """The error for a port that cannot be listened on, in the user's words."""
    where = f"{config.host or '*'}:{config.port}"
    if exc.errno == errno.EADDRINUSE:
        return CliError(f"cannot listen on {where}: the address is in use (another server on that port?)", 1)
    if exc.errno == errno.EACCES:
        return CliError(f"cannot listen on {where}: permission denied (ports under 1024 need privileges)", 1)
    return CliError(f"cannot listen on {where}: {exc.strerror or exc}", 1)
