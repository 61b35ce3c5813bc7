"""What every fuzz target shares: reading structure out of the fuzzer's bytes, and running both codecs.

A target is a function ``check(data: bytes) -> None`` that returns for any
input the library handles as documented and raises :class:`Finding` (or lets an
undocumented exception escape) otherwise. It needs no fuzzer: the seed corpus
is replayed by ``tests/core/test_fuzz_harness.py`` with plain pytest, and
``fuzz.py`` hands the same function to atheris.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

from ws4py.protocol import frames

T = TypeVar("T")

CODECS = frames.available_implementations()
if os.environ.get("WS4PY_REQUIRE_SPEEDUPS") == "1" and "c" not in CODECS:
    # A differential fuzzer with one codec would pass by comparing the Python codec with itself.
    raise RuntimeError("WS4PY_REQUIRE_SPEEDUPS=1 but the C codec (ws4py._speedups) is not built")


class Finding(AssertionError):
    """The input made the library break its contract: a bug, or codecs that disagree."""


class Input:
    """Structured values read off the fuzzer's bytes, front to back; zeros once they run out.

    Reading runs out gracefully so that every byte string is a valid input:
    the fuzzer's mutations then always reach the code under test.
    """

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def __len__(self) -> int:
        return len(self.data) - self.pos

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size).ljust(size, b"\0"), "big")

    def take(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        self.pos += len(chunk)
        return chunk

    def rest(self) -> bytes:
        return self.take(len(self))

    def pick(self, options: list[T] | tuple[T, ...]) -> T:
        return options[self.byte() % len(options)]


def on_each_codec(run: Callable[[], T]) -> dict[str, T]:
    """``run()``'s result under each codec (a fresh call each: it must build its own state)."""
    results = {}
    for name in CODECS:
        with frames.using(name):
            results[name] = run()
    return results


def same_on_each_codec(what: str, run: Callable[[], T]) -> T:
    """``run()``'s result, which must be equal under every codec; else a :class:`Finding`."""
    results = on_each_codec(run)
    values = list(results.values())
    for name, value in results.items():
        if value != values[0]:
            raise Finding(f"{what}: the codecs disagree\n  {CODECS[0]}: {short(values[0])}\n  {name}: {short(value)}")
    return values[0]


def short(value: object, limit: int = 3000) -> str:
    """``repr(value)``, cut in the middle when long: a 64 KiB message would bury the report."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit // 2]} ... {text[-limit // 2 :]}"


def outcome(call: Callable[[], T], allowed: tuple[type[BaseException], ...]) -> tuple[str, object]:
    """``("ok", result)``, or ``("raise", (type, message))`` for an ``allowed`` exception.

    Any other exception propagates: the fuzzer reports it with its traceback.
    """
    try:
        return "ok", call()
    except allowed as exc:
        return "raise", (type(exc).__name__, str(exc))
