"""``python -m ws4py publish URL CHANNEL MESSAGE``: one message to a channel, for operators and scripts."""

from __future__ import annotations

import argparse
import sys

from .errors import CliError

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``publish``."""
    parser.add_argument(
        "url", metavar="URL", help="the broker: redis://host:port, rediss://, unix://, redis+cluster://"
    )
    parser.add_argument("channel", metavar="CHANNEL")
    parser.add_argument("message", metavar="MESSAGE", help="the message ('-': read it from stdin)")
    parser.add_argument("--binary", action="store_true", help="publish a binary message (the UTF-8 bytes of MESSAGE)")
    parser.add_argument("--timeout", type=float, default=5.0, metavar="S", help="seconds to give up after (default: 5)")


def run(args: argparse.Namespace) -> int:
    """Publish; print how many subscribed processes received it. Exit 1 if the broker cannot take it."""
    from ..pubsub import BrokerUnavailable, publish  # redis-py loads only for this command

    text = sys.stdin.read() if args.message == "-" else args.message
    message: str | bytes = text.encode() if args.binary else text
    try:
        count = publish(args.url, args.channel, message, timeout=args.timeout)
    except BrokerUnavailable as exc:
        raise CliError(f"cannot publish to {args.url}: {exc}", 1) from None
    except ValueError as exc:
        raise CliError(f"{args.url}: {exc}") from None
    print(f"published to {args.channel!r}: received by {count} subscribed process{'' if count == 1 else 'es'}")
    return 0
