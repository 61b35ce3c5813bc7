"""Run every ``async def`` test of tests/asyncio on asyncio's own loop and on uvloop, and check for leaks.

No pytest plugin is needed: ``loop_factory`` (autouse, parametrized) makes
two runs of each test, and :func:`pytest_pyfunc_call` runs the coroutine on
a fresh loop of that kind, bounded by ``@pytest.mark.async_timeout(seconds)``
(default :data:`DEFAULT_TIMEOUT`). After a test that passed:

- no task of its loop is still pending (after a moment to finish),
- its loop's exception handler was never called (an unretrieved task
  exception, an error in a callback...),
- and once the loop is closed, no file descriptor it opened is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import os
import resource
import signal
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
import uvloop
from callbacks_client import open_callbacks_client

from ws4py import fanout
from ws4py.asyncio import connect

DEFAULT_TIMEOUT = 20.0
#: How long pending tasks and open descriptors get to go away after a test.
SETTLE = 3.0

LoopFactory = Callable[[], asyncio.AbstractEventLoop]
LOOP_FACTORIES: dict[str, LoopFactory] = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}

# Some tests hold thousands of sockets (both ends of each connection live in this process).
_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if _hard == resource.RLIM_INFINITY or _soft < _hard:
    resource.setrlimit(resource.RLIMIT_NOFILE, (_hard, _hard))

# libuv opens a pipe for the whole process the first time a loop is made: not a test's leak.
uvloop.new_event_loop().close()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "async_timeout(seconds): bound of an async test of tests/asyncio")


# -- the loops ---------------------------------------------------------------------


@pytest.fixture(params=list(LOOP_FACTORIES), autouse=True)
def loop_factory(request: pytest.FixtureRequest) -> LoopFactory:
    """The event loop the test runs on: asyncio's default loop, then uvloop."""
    return LOOP_FACTORIES[request.param]


# -- the fan-out send -----------------------------------------------------------------


@pytest.fixture(params=fanout.available_implementations())
def each_send_ready(request: pytest.FixtureRequest) -> Iterator[str]:
    """``ws4py.fanout.send_ready`` in C (if built), then its pure-Python twin; for
    ``pytestmark = pytest.mark.usefixtures("each_send_ready")`` in the modules that use ``broadcast``."""
    previous = fanout.implementation
    fanout.use(request.param)
    try:
        yield request.param
    finally:
        fanout.use(previous)


# -- the clients ------------------------------------------------------------------------


@pytest.fixture(params=["connect", "callbacks"])
def open_client(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """``ws4py.asyncio.connect``, then the callbacks client in its shape (tests/asyncio/callbacks_client.py).

    For the tests of what both clients must do alike: options, refusals,
    timeouts, proxies, TLS, limits.
    """
    return connect if request.param == "connect" else open_callbacks_client


# -- leaks -----------------------------------------------------------------------------


def _open_fds() -> set[tuple[int, str]]:
    """The process's open file descriptors with what they point to."""
    fds = set()
    for name in os.listdir("/proc/self/fd"):
        # OSError: the descriptor listdir itself used, closed by now.
        with contextlib.suppress(OSError):
            fds.add((int(name), os.readlink(f"/proc/self/fd/{name}")))
    return fds


@pytest.fixture(autouse=True)
def no_leaked_fds() -> Iterator[None]:
    """No file descriptor opened during the test outlives it (its loop is closed by then)."""
    before = _open_fds()
    yield
    deadline = time.monotonic() + SETTLE
    while True:
        extra = _open_fds() - before
        if not extra or time.monotonic() >= deadline:
            break
        time.sleep(0.01)
    assert not extra, f"file descriptors outlived the test: {sorted(extra)}"


async def _pending_tasks() -> list[asyncio.Task[Any]]:
    """The loop's other tasks still pending after up to SETTLE seconds."""
    me = asyncio.current_task()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE
    while True:
        pending = [task for task in asyncio.all_tasks() if task is not me]
        if not pending or loop.time() >= deadline:
            return pending
        await asyncio.sleep(0.01)


# -- running a test ----------------------------------------------------------------------


class LoopHeld(Exception):
    """The test kept the loop busy past its bound (``wait_for`` cannot interrupt that)."""


def _loop_held(signum: int, frame: Any) -> None:
    raise LoopHeld("the test did not yield to the event loop within its bound")


def _run(loop_factory: LoopFactory, test: Coroutine[Any, Any, Any], timeout: float) -> list[dict[str, Any]]:
    """Run ``test`` on a new loop, check that it left no task behind, close the loop; the loop's errors."""
    errors: list[dict[str, Any]] = []
    loop = loop_factory()
    try:
        loop.set_exception_handler(lambda loop, context: errors.append(context))
        loop.run_until_complete(asyncio.wait_for(test, timeout))
        pending = loop.run_until_complete(_pending_tasks())
        assert not pending, f"tasks outlived the test: {pending}"
        gc.collect()  # a task's unretrieved exception is reported when it is collected
    finally:
        # What asyncio.Runner does on close (it is not in Python 3.10).
        leftovers = asyncio.all_tasks(loop)
        for task in leftovers:
            task.cancel()
        if leftovers:  # gather() of nothing would make a loop of its own
            loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
    return errors


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    marker = pyfuncitem.get_closest_marker("async_timeout")
    timeout = float(marker.args[0]) if marker is not None else DEFAULT_TIMEOUT
    kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    loop_factory: LoopFactory = pyfuncitem.funcargs["loop_factory"]  # type: ignore[assignment]
    previous = signal.signal(signal.SIGALRM, _loop_held)
    signal.setitimer(signal.ITIMER_REAL, timeout + 5.0)
    try:
        errors = _run(loop_factory, pyfuncitem.obj(**kwargs), timeout)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert not errors, f"the loop reported errors: {errors}"
    return True
