"""The Autobahn cases over real sockets through ws4py's gevent server and gevent client.

Run as a monkey-patched subprocess by ``test_gevent_autobahn.py``:
``python gevent_autobahn.py ROLE PREFIXES...`` (ROLE ``server`` or ``client``;
case id prefixes: families like ``1 2 ... 13``, or ``9.1``). The harness is ``tests/autobahn_sockets``'
(``socket_fuzzer``: the fuzzer, the cases of ``tests/core``, the strict
grading), unchanged; here its peers and ours are greenlets of one process:

* server: ``ws4py.server.geventserver.WSGIServer`` with a
  ``WebSocketWSGIApplication`` of ``CaseEchoWebSocket`` (permessage-deflate
  accepted), the fuzzer playing Autobahn's fuzzingclient against it;
* client: ``ws4py.client.geventclient.WebSocketClient`` echoing what it
  receives, the fuzzer playing Autobahn's fuzzingserver, a listener per case.

The cases run concurrently (their waits overlap). Prints one JSON line:
``{case id: [what went wrong]}``.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS / "core"), str(TESTS / "autobahn_sockets")]

import socket_fuzzer  # noqa: E402
import test_autobahn_cases as plain_table  # noqa: E402
import test_autobahn_deflate as deflate_table  # noqa: E402
from autobahn import Case, problems  # noqa: E402
from gevent.pool import Pool  # noqa: E402
from socket_fuzzer import CaseEchoWebSocket, _Ending, play_against_client, play_against_server  # noqa: E402

from ws4py.client.geventclient import WebSocketClient  # noqa: E402
from ws4py.messaging import Message  # noqa: E402
from ws4py.server.geventserver import WSGIServer  # noqa: E402
from ws4py.server.wsgiutils import WebSocketWSGIApplication  # noqa: E402

#: Cases played at once (their waits overlap).
CONCURRENCY = 128

# Many cases share one process (and a busy machine): a case may wait its turn longer
# than the harness' limits allow, set for one case at a time.
socket_fuzzer.IDLE = 10.0
socket_fuzzer.LABEL_WAIT = 2.0
socket_fuzzer.OPEN_TIMEOUT = 30.0
socket_fuzzer.END_TIMEOUT = 20.0


class EchoGeventClient(_Ending, WebSocketClient):
    """The client-side testee: ws4py's gevent client, echoing every message."""

    def received_message(self, message: Message) -> None:
        self.send(message.data, message.is_binary)


def cases(prefixes: set[str]) -> list[tuple[Case, bool]]:
    """The cases whose id is one of ``prefixes`` or under one (``"9.1"``: 9.1.1, 9.1.2...),
    with whether each is a deflate case."""

    def chosen(case: Case) -> bool:
        return any(case.id == prefix or case.id.startswith(prefix + ".") for prefix in prefixes)

    plain = [(case, False) for case in plain_table.CASES if chosen(case)]
    return plain + [(case, True) for case in deflate_table.CASES if chosen(case)]


def grade(case: Case, deflate: bool, played: Any) -> list[str]:
    found = played.harness + (deflate_table.deflate_problems if deflate else problems)(case, played.outcome)
    return list(found)


def play_server(case: Case, deflate: bool, port: int) -> list[str]:
    return grade(case, deflate, play_against_server(case, port))


def play_client(case: Case, deflate: bool) -> list[str]:
    with socket.create_server(("127.0.0.1", 0), backlog=4) as listener:
        played = play_against_client(case, listener, lambda url, ext: EchoGeventClient(url, extensions=ext))
    return grade(case, deflate, played)


def main() -> None:
    role, families = sys.argv[1], set(sys.argv[2:])
    chosen = cases(families)
    pool = Pool(CONCURRENCY)
    if role == "server":
        app = WebSocketWSGIApplication(handler_cls=CaseEchoWebSocket, extensions=["permessage-deflate"])
        server = WSGIServer(("127.0.0.1", 0), app, log=None)
        server.start()
        jobs = {case.id: pool.spawn(play_server, case, deflate, server.server_port) for case, deflate in chosen}
    else:
        jobs = {case.id: pool.spawn(play_client, case, deflate) for case, deflate in chosen}
    pool.join(timeout=120)
    results = {}
    for case_id, job in jobs.items():
        if not job.dead:
            results[case_id] = ["did not finish"]
        elif job.exception is not None:
            results[case_id] = [f"the harness failed: {job.exception!r}"]
        else:
            results[case_id] = job.value
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
