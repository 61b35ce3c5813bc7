"""ws4py 0.6.0's own test suite, run against this project (issue 24).

The suite is not copied into this repository: the first run downloads the
0.6.0 source distribution from the package index (``pip download --no-deps
--no-binary :all: ws4py==0.6.0``), takes its ``test/`` folder and keeps it in
``tests/compat06/ws4py060/`` (git-ignored). Later runs reuse it. It runs in a
pytest process of its own (``test_suite_060.py`` starts it, with
``WS4PY_COMPAT06_SUITE=1``): its tests change process-wide state as 0.6's suite
was free to (``cherrypy.server.unsubscribe()``, plugins left on CherryPy's bus,
manager threads on mocked pollers), which must not reach the other tests. Two of 0.6's modules are kept beside it,
as oracles for this project's tests of its layers: ``reference_framing.py``
and ``reference_utf8validator.py`` (see :func:`reference_module`).

Every one of its tests must pass, except those listed in
``expected_failures.txt`` (one line each: the test's id in that folder, then
why). A listed test is marked ``xfail(strict=True)``: one that starts passing
fails the run, so the list can only shrink. An entry naming a test that
does not exist fails the collection too.

Each test of this folder is bounded (:data:`TIMEOUT`): a hang becomes a failure.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import FrameType, ModuleType

import pytest
from compat06_support import EXPECTED_FAILURES, UPSTREAM, expected_failures

from ws4py.protocol import frames

VERSION = "0.6.0"
#: 0.6's modules kept as oracles (``reference_<name>.py``): self-contained but for ws4py.exc and ws4py.compat.
REFERENCES = ("framing", "utf8validator")
#: What the folder's marker says once complete (a new layout fetches again).
COMPLETE = f"ws4py {VERSION}: test/, {', '.join(REFERENCES)}\n"
#: The bound of one test of this folder, in seconds (the slowest passing one takes under one).
TIMEOUT = 5.0


def fetch_suite() -> None:
    """Download the 0.6.0 sdist and keep its tests in :data:`UPSTREAM`, unless already there."""
    done = UPSTREAM / ".complete"
    if done.exists() and done.read_text() == COMPLETE:
        return
    with tempfile.TemporaryDirectory() as tmp:
        pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:"]
        subprocess.run(
            [*pip, "--dest", tmp, f"ws4py=={VERSION}"],
            check=True,
            timeout=300,
        )
        (sdist,) = Path(tmp).glob(f"ws4py-{VERSION}.tar.gz")
        staging = Path(tmp) / "ws4py060"
        staging.mkdir()
        prefix = f"ws4py-{VERSION}/test/"
        references = {f"ws4py-{VERSION}/ws4py/{name}.py": f"reference_{name}.py" for name in REFERENCES}
        with tarfile.open(sdist) as archive:
            for member in archive.getmembers():
                name = member.name[len(prefix) :]
                # Only the suite's own files, by their plain names: nothing lands outside the folder.
                if member.isfile() and member.name.startswith(prefix) and name.endswith(".py") and "/" not in name:
                    kept = name
                elif member.isfile() and member.name in references:
                    kept = references[member.name]
                else:
                    continue
                source = archive.extractfile(member)
                assert source is not None
                (staging / kept).write_bytes(source.read())
        # A package: its modules (test_client, test_manager...) do not clash with ours of the same names.
        (staging / "__init__.py").write_text('"""ws4py 0.6.0\'s test suite (downloaded; see ../conftest.py)."""\n')
        (staging / ".complete").write_text(COMPLETE)
        shutil.rmtree(UPSTREAM, ignore_errors=True)
        shutil.move(str(staging), UPSTREAM)


fetch_suite()

#: 0.6.0's suite is collected only in its own process (see the module docstring).
SUITE_PROCESS = os.environ.get("WS4PY_COMPAT06_SUITE") == "1"
collect_ignore = [] if SUITE_PROCESS else [UPSTREAM.name]


def reference_module(name: str) -> ModuleType:
    """0.6's module ``ws4py.<name>`` (one of :data:`REFERENCES`), loaded from the kept copy.

    Its own imports of ``ws4py.exc`` and ``ws4py.compat`` get this project's.
    """
    path = UPSTREAM / f"reference_{name}.py"
    spec = importlib.util.spec_from_file_location(f"ws4py060_reference_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    listed = expected_failures(EXPECTED_FAILURES)
    seen_files: set[str] = set()
    found: set[str] = set()
    for item in items:
        if UPSTREAM not in item.path.parents:
            continue
        test_id = item.nodeid.split("ws4py060/", 1)[1]
        seen_files.add(test_id.split("::", 1)[0])
        reason = listed.get(test_id)
        if reason is not None:
            found.add(test_id)
            item.add_marker(pytest.mark.xfail(strict=True, reason=reason))
    stale = sorted(t for t in listed if t.split("::", 1)[0] in seen_files and t not in found)
    if stale:
        raise pytest.UsageError(f"{EXPECTED_FAILURES.name} lists tests that do not exist: {', '.join(stale)}")


def _timed_out(signum: int, frame: FrameType | None) -> None:
    raise TimeoutError(f"the test ran for over {TIMEOUT} s")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    # Every test of this folder, 0.6.0's and ours (the hook sees only this folder's tests), but
    # the one that runs 0.6.0's whole suite in its own process (bounded there, test by test).
    if item.path.name == "test_suite_060.py":
        return (yield)
    previous = signal.signal(signal.SIGALRM, _timed_out)
    signal.setitimer(signal.ITIMER_REAL, TIMEOUT)
    try:
        return (yield)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# -- fixtures of this project's tests of the 0.6 layers ---------------------------------------


@pytest.fixture(params=frames.available_implementations())
def codec(request: pytest.FixtureRequest) -> Iterator[str]:
    """The frame codec (``"c"`` or ``"python"``) the test runs against, as in tests/core."""
    with frames.using(request.param):
        yield request.param


@pytest.fixture(scope="session")
def reference_framing() -> ModuleType:
    """0.6's ``ws4py.framing``: its ``Frame``, the oracle of :class:`ws4py.framing.Frame`'s parser."""
    return reference_module("framing")


@pytest.fixture(scope="session")
def reference_utf8validator() -> ModuleType:
    """0.6's ``ws4py.utf8validator``: its DFA, the oracle of :class:`ws4py.utf8validator.Utf8Validator`."""
    return reference_module("utf8validator")
