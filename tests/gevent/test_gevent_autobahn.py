"""The Autobahn-style case families over real sockets, through ws4py's gevent server and client.

``gevent_autobahn.py`` plays the cases of ``tests/core`` with the harness of
``tests/autobahn_sockets`` (its fuzzer and strict grading: ``OK`` for every
case, the expected close, a clean closing handshake where one is due, the
failure with its close code where the testee must fail) in a monkey-patched
subprocess per role, the two at once; each test here checks one family.

Lean on purpose (the suite's time budget): the server plays every family
(1-7, 9, 10, and the deflate families 12 and 13); the client plays 1-7, 10
and 13 (family 9's large messages and 12's deflate framing run through the
same websocket code as on the server, and the threaded suite plays them for the client).
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
    "server": ["1", "2", "3", "4", "5", "6", "7", "9", "10", "12", "13"],
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
    cases = {case: found for case, found in played[role].items() if case.split(".")[0] == family}
    assert cases, f"no case of family {family} was played"
    failed = {case: found for case, found in cases.items() if found}
    assert not failed, "\n".join(f"{case} ({role}, gevent): " + "; ".join(found) for case, found in failed.items())
