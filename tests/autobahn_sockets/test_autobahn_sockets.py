"""Every Autobahn case of ``tests/core`` (families 1-7, 9, 10, 12, 13), over real sockets.

The cases are the very ``Case`` objects of ``tests/core/test_autobahn_cases.py``
and ``tests/core/test_autobahn_deflate.py``, graded by ``autobahn.problems``
(and ``deflate_problems`` for 12 and 13): strict ``OK`` for every case, the
expected close, a clean closing handshake where one is due, a
``ConnectionFailed`` with the close code where the testee must fail. Like
``tests/core``, every test runs once per frame codec.

* server: ws4py's wsgiref server with its manager and an echo websocket
  (accepting permessage-deflate) is the testee; :class:`SocketFuzzer` plays
  Autobahn's fuzzingclient over TCP, one connection per case to the same
  server.
* client: ws4py's client is the testee, echoing what it receives; the
  fuzzer plays Autobahn's fuzzingserver on a listening socket. Families 1-10
  use the threaded ``WebSocketClient``, 12 and 13 a ``WebSocketBaseClient``
  on a shared ``WebSocketManager``.
* octet-wise: the cases ``tests/core`` replays with single-octet reads are
  replayed with every octet in a TCP write of its own (the testee's reads
  then take what has arrived: one octet or a few).

Not played here: the parameter sweep of ``tests/core`` (``DeflateOptions``
that the threaded server and client do not take).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable

import pytest
import test_autobahn_cases as plain_table
import test_autobahn_deflate as deflate_table
from autobahn import Case, problems
from socket_fuzzer import EchoThreadedClient, ManagedEchoClient, Played, play_against_client, play_against_server

from ws4py.manager import WebSocketManager

PLAIN_CASES: list[Case] = plain_table.CASES
OCTET_WISE_CASES: list[Case] = plain_table.OCTET_WISE
DEFLATE_CASES: list[Case] = deflate_table.CASES


def _params(cases: Iterable[Case]) -> list:
    return [pytest.param(case, id=case.id) for case in cases]


def _check(case: Case, played: Played, found: list[str], role: str) -> None:
    assert not found, _report(case, role, played, found)


def _report(case: Case, role: str, played: Played, found: list[str]) -> str:
    agreed = f"\n  agreed {played.outcome.agreed}" if played.outcome.agreed else ""
    return f"{case.id} ({role}, over TCP): {case.description}{agreed}\n  " + "\n  ".join(found)


def _threaded_client(url: str, extensions: list[str] | None) -> EchoThreadedClient:
    return EchoThreadedClient(url, extensions=extensions)


@pytest.mark.parametrize("case", _params(PLAIN_CASES))
def test_server(case: Case, ws4py_server: int) -> None:
    played = play_against_server(case, ws4py_server)
    found = played.harness + problems(case, played.outcome)
    _check(case, played, found, "ws4py server")


@pytest.mark.parametrize("case", _params(PLAIN_CASES))
def test_client(case: Case, fuzzing_listener: socket.socket) -> None:
    played = play_against_client(case, fuzzing_listener, _threaded_client)
    found = played.harness + problems(case, played.outcome)
    _check(case, played, found, "ws4py threaded client")


@pytest.mark.parametrize("case", _params(OCTET_WISE_CASES))
def test_server_octet_wise(case: Case, ws4py_server: int) -> None:
    played = play_against_server(case, ws4py_server, octet_wise=True)
    found = played.harness + problems(case, played.outcome)
    _check(case, played, found, "ws4py server, octet-wise writes")


@pytest.mark.parametrize("case", _params(OCTET_WISE_CASES))
def test_client_octet_wise(case: Case, fuzzing_listener: socket.socket) -> None:
    played = play_against_client(case, fuzzing_listener, _threaded_client, octet_wise=True)
    found = played.harness + problems(case, played.outcome)
    _check(case, played, found, "ws4py threaded client, octet-wise writes")


@pytest.mark.parametrize("case", _params(DEFLATE_CASES))
def test_server_deflate(case: Case, ws4py_server: int) -> None:
    played = play_against_server(case, ws4py_server)
    found = played.harness + deflate_table.deflate_problems(case, played.outcome)
    _check(case, played, found, "ws4py server")


@pytest.mark.parametrize("case", _params(DEFLATE_CASES))
def test_client_deflate(case: Case, fuzzing_listener: socket.socket, client_manager: WebSocketManager) -> None:
    played = play_against_client(
        case, fuzzing_listener, lambda url, ext: ManagedEchoClient(url, client_manager, extensions=ext)
    )
    found = played.harness + deflate_table.deflate_problems(case, played.outcome)
    _check(case, played, found, "ws4py client on a manager")
