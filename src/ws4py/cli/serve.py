"""``python -m ws4py serve MODULE:ATTR``: one process, or ``--workers N`` under a supervisor."""

from __future__ import annotations

import argparse
import os
import sys

from .apps import check_asyncio_target, threaded_app
from .errors import CliError
from .serve_asyncio import run_asyncio
from .serve_threaded import run_threaded
from .supervisor import Supervisor
from .target import load
from .tls import server_context
from .worker import WorkerConfig

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``serve``."""
    parser.add_argument(
        "app",
        metavar="MODULE:ATTR",
        help=(
            "the application: an async handler(connection), an app object or factory (see ws4py.cli.apps);"
            " with --threaded, a ws4py.websocket.WebSocket subclass"
        ),
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (default: 127.0.0.1; '' or 0.0.0.0: every interface)",
    )
    parser.add_argument("--port", type=int, default=8765, help="the port (default: 8765; 0: any free port)")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="N processes sharing the port (SO_REUSEPORT), each replaced if it dies (default: 1, no supervisor)",
    )
    parser.add_argument(
        "--threaded",
        action="store_true",
        help="the threaded stack (wsgiref's server and a WebSocketManager) instead of asyncio",
    )
    parser.add_argument(
        "--broker",
        metavar="URL",
        help=(
            "the pub/sub broker of every worker: redis://, rediss://, unix://, redis+cluster:// or memory://"
            " (default: in-process, or $WS4PY_BROKER)"
        ),
    )
    parser.add_argument(
        "--close-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds a connection has to close (at shutdown: 1001) before it is dropped (default: 10)",
    )
    parser.add_argument("--certfile", help="TLS: the server's certificate chain (PEM); serves wss://")
    parser.add_argument("--keyfile", help="TLS: its private key, if not in --certfile")
    parser.add_argument("--cafile", help="TLS: require client certificates issued by these CAs")
    # For the supervisor's workers only: where to say "listening", and the pipe that ends with the supervisor.
    parser.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--parent-fd", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or Ctrl-C; the exit status."""
    if args.workers < 1:
        raise CliError(f"--workers must be at least 1, not {args.workers}")
    if not 0 <= args.port <= 65535:
        raise CliError(f"--port must be within 0-65535, not {args.port}")
    if args.close_timeout <= 0:
        raise CliError("--close-timeout must be positive")
    config = WorkerConfig(
        spec=args.app,
        host=args.host,
        port=args.port,
        ssl=server_context(args.certfile, args.keyfile, args.cafile),
        close_timeout=args.close_timeout,
        broker_url=args.broker,
        reuse_port=args.reuse_port,
        ready_fd=args.ready_fd,
        parent_fd=args.parent_fd,
    )
    if args.workers == 1:
        (run_threaded if args.threaded else run_asyncio)(config)
        return 0
    # Import the application here first: a bad MODULE:ATTR is one clear error, not N dying workers.
    target = load(args.app)
    if args.threaded:
        threaded_app(target, args.app)
    else:
        check_asyncio_target(target, args.app)

    def worker_args(port: int, ready_fd: int, parent_fd: int) -> list[str]:
        own = ["--log-level", args.log_level, "serve", args.app, "--host", args.host, "--port", str(port)]
        own += ["--close-timeout", str(args.close_timeout)]
        own += ["--reuse-port", "--ready-fd", str(ready_fd), "--parent-fd", str(parent_fd)]
        for name in ("broker", "certfile", "keyfile", "cafile"):
            value = getattr(args, name)
            if value is not None:
                own += [f"--{name}", value]
        return [*own, "--threaded"] if args.threaded else own

    if args.broker is None and not os.environ.get("WS4PY_BROKER"):
        # ws4py.pubsub's default then: one in-process broker per worker, which see nothing of each other.
        print("ws4py serve: no --broker: each worker publishes to its own connections only", file=sys.stderr)
    sys.stdout.flush()
    return Supervisor(config, args.workers, worker_args).run()
