"""ws4py 0.6.0's own test suite, run against this project (issue 24).

The suite is not copied into this repository: the first run downloads the
0.6.0 source distribution from the package index (``pip download --no-deps
--no-binary :all: ws4py==0.6.0``), takes its ``test/`` folder and keeps it in
``tests/compat06/ws4py060/`` (git-ignored), where pytest collects it like any
other tests. Later runs reuse it.

Every one of its tests must pass, except those listed in
``expected_failures.txt`` (one line each: the test's id in that folder, then
why). A listed test is marked ``xfail(strict=True)``: one that starts passing
fails the run, so the list can only shrink. An entry naming a test that
does not exist fails the collection too.

Each test of the suite is bounded (:data:`TIMEOUT`): a hang becomes a failure.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

VERSION = "0.6.0"
HERE = Path(__file__).parent
#: Where the suite is kept (git-ignored): the tests of the sdist's ``test/`` folder.
UPSTREAM = HERE / "ws4py060"
EXPECTED_FAILURES = HERE / "expected_failures.txt"
#: The bound of one test of the suite, in seconds (the slowest passing one takes about one).
TIMEOUT = 5.0


def fetch_suite() -> None:
    """Download the 0.6.0 sdist and keep its tests in :data:`UPSTREAM`, unless already there."""
    done = UPSTREAM / ".complete"
    if done.exists():
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
        with tarfile.open(sdist) as archive:
            for member in archive.getmembers():
                name = member.name[len(prefix) :]
                # Only the suite's own files, by their plain names: nothing lands outside the folder.
                if member.isfile() and member.name.startswith(prefix) and name.endswith(".py") and "/" not in name:
                    source = archive.extractfile(member)
                    assert source is not None
                    (staging / name).write_bytes(source.read())
        # A package: its modules (test_client, test_manager...) do not clash with ours of the same names.
        (staging / "__init__.py").write_text('"""ws4py 0.6.0\'s test suite (downloaded; see ../conftest.py)."""\n')
        (staging / ".complete").write_text(f"ws4py {VERSION}\n")
        shutil.rmtree(UPSTREAM, ignore_errors=True)
        shutil.move(str(staging), UPSTREAM)


fetch_suite()


def expected_failures() -> dict[str, str]:
    """The listed tests: id (relative to :data:`UPSTREAM`) -> reason."""
    listed: dict[str, str] = {}
    for number, line in enumerate(EXPECTED_FAILURES.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        test_id, _, reason = line.partition(" ")
        if not reason.strip():
            raise pytest.UsageError(f"{EXPECTED_FAILURES}:{number}: {test_id} has no reason")
        if test_id in listed:
            raise pytest.UsageError(f"{EXPECTED_FAILURES}:{number}: {test_id} is listed twice")
        listed[test_id] = reason.strip()
    return listed


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    listed = expected_failures()
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
    raise TimeoutError(f"a test of ws4py {VERSION}'s suite ran for over {TIMEOUT} s")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    if UPSTREAM not in item.path.parents:
        return (yield)
    previous = signal.signal(signal.SIGALRM, _timed_out)
    signal.setitimer(signal.ITIMER_REAL, TIMEOUT)
    try:
        return (yield)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
