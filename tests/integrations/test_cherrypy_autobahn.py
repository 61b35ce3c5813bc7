"""The Autobahn-style case families of ``tests/core`` over real sockets, through the CherryPy path.

The very cases, fuzzer and strict grading of ``tests/autobahn_sockets``
(:func:`socket_fuzzer.play_against_server`), with CherryPy's tool, gateway and
plugin as the server: ``/runCase`` runs the fuzzer's echo websocket, accepting
permessage-deflate. One test per family, playing its cases in turn (a test
per case would cost more in pytest than in play); octet-wise writes and the
deflate families 12 and 13 too. With the default frame codec only: the
codecs are the core's, played both ways in ``tests/autobahn_sockets``. The
three slowest sets (families 6 and 9, the octet-wise replays: the core's
UTF-8 and size cases, not the integration's) play every third case, which
keeps each of their kinds, to stay within the suite's time.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest
import test_autobahn_cases as plain_table
import test_autobahn_deflate as deflate_table
from autobahn import Case, problems
from cherrypy_support import Servers
from socket_fuzzer import play_cases_against_server


def _families(cases: Iterable[Case]) -> dict[str, list[Case]]:
    families: dict[str, list[Case]] = {}
    for case in cases:
        families.setdefault(case.id.split(".")[0], []).append(case)
    return families


PLAIN = _families(plain_table.CASES)
for _family in ("6", "9"):
    PLAIN[_family] = PLAIN[_family][::3]
DEFLATE = _families(deflate_table.CASES)


def _play(cases: list[Case], port: int, grade, *, octet_wise: bool = False) -> None:  # type: ignore[no-untyped-def]
    play_cases_against_server(cases, port, grade, "CherryPy", octet_wise=octet_wise)


@pytest.mark.parametrize("family", sorted(PLAIN, key=int))
def test_family_through_cherrypy(family: str, servers: Servers) -> None:
    _play(PLAIN[family], servers.port, problems)


def test_octet_wise_cases_through_cherrypy(servers: Servers) -> None:
    _play(plain_table.OCTET_WISE[::3], servers.port, problems, octet_wise=True)


@pytest.mark.parametrize("family", sorted(DEFLATE, key=int))
def test_deflate_family_through_cherrypy(family: str, servers: Servers) -> None:
    _play(DEFLATE[family], servers.port, deflate_table.deflate_problems)
