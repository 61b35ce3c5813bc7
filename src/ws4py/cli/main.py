"""The parser of ``python -m ws4py`` and the dispatch to each command's module."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from . import publisher, serve, terminal
from .errors import CliError

__all__ = ["build_parser", "main"]

_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "serve": (
        "serve an application: asyncio or threaded, N workers, a pub/sub broker, TLS",
        serve.add_arguments,
        serve.run,
    ),
    "connect": ("talk to a WebSocket server from this terminal", terminal.add_arguments, terminal.run),
    "publish": ("publish one message to a pub/sub channel (Redis)", publisher.add_arguments, publisher.run),
}


def build_parser() -> argparse.ArgumentParser:
    """``python -m ws4py``'s parser: one subcommand each for serve, connect and publish."""
    parser = argparse.ArgumentParser(
        prog="python -m ws4py", description="ws4py's command line: WebSocket servers, clients and pub/sub."
    )
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=["debug", "info", "warning", "error"],
        help="what ws4py logs on stderr (default: warning)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (summary, add_arguments, _) in _COMMANDS.items():
        add_arguments(commands.add_parser(name, help=summary, description=summary))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m ws4py`` with ``argv`` (default: the process's); the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(process)d %(name)s %(levelname)s: %(message)s"
    )
    try:
        return _COMMANDS[args.command][2](args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return exc.status
    except KeyboardInterrupt:
        return 130
