#!/bin/sh
# asyncio-server benchmark: ws4py.asyncio and ws4py's callback API against websockets, aiohttp, picows and
# tornado, each on the default asyncio loop and (where the peer supports it) on uvloop; the C echo server
# (bench/servers/c_echo.c) as a reference floor.
#
#   bench/run_asyncio.sh           full run (about 35 minutes): prints the tables, writes bench/results/asyncio.md
#   bench/run_asyncio.sh --quick   smoke run: every row, tiny durations and counts, one repeat, writes nothing
#
# Every server runs in its own virtualenv under bench/.venvs (ignored by git), uvloop in each:
#   threaded     ws4py from this repository (pip install -e, on every run, so the C extension is rebuilt);
#                the harness runs here too
#   websockets   websockets (latest; shared with bench/run_threaded.sh)
#   aiohttp      aiohttp (latest)
#   picows       picows (latest)
#   tornado      tornado (latest)
# The virtualenvs are made once, and uvloop is added to one that lacks it; WS4PY_BENCH_UPGRADE=1 refreshes
# them. The load generator (bench/loadgen, C) and the C echo server are compiled on every run, into
# bench/loadgen/build (ignored by git).
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

peer_venv websockets websockets
peer_venv aiohttp aiohttp
peer_venv picows picows
peer_venv tornado tornado
peer_venv threaded
install_ws4py threaded "$root" -e
build_loadgen

cd "$root"
exec "$venvs/threaded/bin/python" bench/asyncio_bench.py "$@"
