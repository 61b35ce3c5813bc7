#!/bin/sh
# Threaded-server benchmark: ws4py's wsgiref server vs ws4py 0.6.0, websockets asyncio and websockets threaded
# (and a minimal C echo server, bench/servers/c_echo.c, as a reference floor).
#
#   bench/run_threaded.sh           full run (about 20 minutes): prints the table, writes bench/results/threaded.md
#   bench/run_threaded.sh --quick   smoke run: every row, tiny durations, one repeat, writes nothing
#
# Every server runs in its own virtualenv under bench/.venvs (ignored by git):
#   threaded     ws4py from this repository (pip install -e, on every run, so the C extension is rebuilt);
#                the harness runs here too
#   ws4py-orig   ws4py 0.6.0
#   websockets   websockets (latest)
# The virtualenvs are made once; WS4PY_BENCH_UPGRADE=1 refreshes them. The load
# generator (bench/loadgen, C) and the C echo server are compiled on every run,
# into bench/loadgen/build (ignored by git).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
venvs="$here/.venvs"

. "$here/_setup.sh"

threaded_peer_venvs
install_ws4py threaded "$root" -e
build_loadgen

cd "$root"
exec "$venvs/threaded/bin/python" bench/threaded_bench.py "$@"
