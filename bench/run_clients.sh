#!/bin/sh
# Client benchmark (issue 22): ws4py's clients (the callbacks client, ws4py.asyncio.connect, the threaded and
# the gevent client) against websockets (asyncio and sync), aiohttp, picows, websocket-client, tornado and the
# threaded client of ws4py 0.6.0, against one C server (bench/clientbench/server.c) that is never the
# bottleneck; a C client (bench/clientbench/client.c) as the machine's ceiling.
#
#   bench/run_clients.sh           full run (about 20 minutes): prints the report, writes bench/results/clients.md
#   bench/run_clients.sh --quick   smoke run: every row, tiny durations, one repeat, writes nothing
#
# Every client runs in its own virtualenv under bench/.venvs (ignored by git):
#   threaded           ws4py from this repository (pip install -e, on every run: the C extension is rebuilt),
#                      uvloop; the harness runs here too
#   integrations       ws4py from this repository with its extras cherrypy and gevent (the gevent client)
#   ws4py-orig         ws4py 0.6.0 from PyPI (shared with bench/run_threaded.sh)
#   websockets, aiohttp, picows, tornado   the latest release, and uvloop (shared with bench/run_asyncio.sh)
#   websocket-client   websocket-client (latest)
# The virtualenvs are made once (WS4PY_BENCH_UPGRADE=1 refreshes them). The C server and client are compiled
# on every run, into bench/clientbench/build (ignored by git).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
venvs="$here/.venvs"

. "$here/_setup.sh"

peer_venv() { # name package...: the virtualenv with the latest of these packages and uvloop
    name=$1
    shift
    if make_venv "$name"; then
        "$venvs/$name/bin/python" -m pip install --quiet --upgrade "$@" uvloop
    elif ! "$venvs/$name/bin/python" -c "import uvloop" 2>/dev/null; then
        "$venvs/$name/bin/python" -m pip install --quiet uvloop # e.g. the websockets venv of run_threaded.sh
    fi
}

threaded_peer_venvs # websockets and ws4py-orig
peer_venv websockets websockets
peer_venv aiohttp aiohttp
peer_venv picows picows
peer_venv tornado tornado
if make_venv websocket-client; then
    "$venvs/websocket-client/bin/python" -m pip install --quiet --upgrade websocket-client
fi
peer_venv threaded
install_ws4py threaded "$root" -e
install_ws4py integrations "$root[cherrypy,gevent]" -e

mkdir -p "$here/clientbench/build"
gcc -O2 -Wall -Wextra -Werror -o "$here/clientbench/build/server" "$here/clientbench/server.c"
gcc -O2 -Wall -Wextra -Werror -o "$here/clientbench/build/client" "$here/clientbench/client.c"

cd "$root"
exec "$venvs/threaded/bin/python" bench/client_bench.py "$@"
