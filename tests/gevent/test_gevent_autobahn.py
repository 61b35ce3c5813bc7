"""The Autobahn-style case families over real sockets, through ws4py's gevent server and client.

``gevent_autobahn.py`` plays the cases of ``tests/core`` with the harness of
``tests/autobahn_sockets`` (its fuzzer and strict grading: ``OK`` for every
case, the expected close, a clean closing handshake where one is due, the
failure with its close code where the testee must fail) in a monkey-patched
subprocess per role, the two at once; each test here checks one family.

Lean on purpose (the suite's time budget), each family where it says most:
families 1-7 and 10 on both sides; on the server family 9's single large
messages, chopped writes and bursts of small ones (9.1, 9.2, 9.5, 9.7) and
the deflate family 12; on the client the deflate family 13. The threaded
and asyncio suites play every case on both sides through the same websocket
code and core; here the gevent I/O paths are under test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from gevent_support import peer_env

SCRIPT = Path(__file__).resolve().parent / "gevent_autobahn.py"
FAMILIES = {
    "server": ["1", "2", "3", "4", "5", "6", "7", "10", "9.1", "9.2", "9.5", "9.7", "12"],
    "client": ["1", "2", "3", "4", "5", "6", "7", "10", "13"],
}


@pytest.fixture(scope="module")
def played() -> dict[str, dict[str, list[str]]]:
    """``{role: {case id: problems}}``, both roles played at once."""
    processes = {
        role: subprocess.Popen(
            [sys.executable, str(SCRIPT), role, *families],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=peer_env(),
        )
        for role, families in FAMILIES.items()
    }
    results: dict[str, Any] = {}
    for role, process in processes.items():
        try:
            out, err = process.communicate(timeout=150)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
        lines = out.strip().splitlines()
        assert process.returncode == 0 and lines, f"{role}: exit {process.returncode}\n{err[-3000:]}"
        results[role] = json.loads(lines[-1])
    return results


@pytest.mark.parametrize(
    ("role", "family"),
    [pytest.param(role, family, id=f"{role}-{family}") for role in FAMILIES for family in FAMILIES[role]],
)
def test_gevent_autobahn_family(role: str, family: str, played: dict[str, dict[str, list[str]]]) -> None:
    cases = {case: found for case, found in played[role].items() if case == family or case.startswith(family + ".")}
    assert cases, f"no case of family {family} was played"
    failed = {case: found for case, found in cases.items() if found}
    assert not failed, "\n".join(f"{case} ({role}, gevent): " + "; ".join(found) for case, found in failed.items())
