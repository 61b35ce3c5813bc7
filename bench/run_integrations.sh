#!/bin/sh
# Integrations benchmark: ws4py's CherryPy and gevent servers vs ws4py 0.6.0's (the same snippets) and
# websockets asyncio (and the minimal C echo server, bench/servers/c_echo.c, as a reference floor).
#
#   bench/run_integrations.sh               full run (about 10 minutes): prints the report, writes bench/results/integrations.md
#   bench/run_integrations.sh --quick       smoke run: every row, tiny durations and counts, one repeat, writes nothing
#   bench/run_integrations.sh --repeats 3 --rows idle --peers cherrypy,orig-cherrypy --output /tmp/idle.md
#
# Every server runs in its own virtualenv under bench/.venvs (ignored by git):
#   integrations        ws4py from this repository with its extras cherrypy and gevent (pip install -e, on
#                       every run, so the C extension is rebuilt); the harness runs here too
#   orig-integrations   ws4py 0.6.0 with the same CherryPy, cheroot and gevent releases
#   websockets          websockets (latest), shared with bench/run_threaded.sh
# The virtualenvs are made once; WS4PY_BENCH_UPGRADE=1 refreshes them. The load generator (bench/loadgen, C)
# and the C echo server are compiled on every run, into bench/loadgen/build (ignored by git).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
venvs="$here/.venvs"

. "$here/_setup.sh"

integration_peer_venvs
install_ws4py integrations "$root[cherrypy,gevent]" -e
build_loadgen

cd "$root"
exec "$venvs/integrations/bin/python" bench/integrations_bench.py "$@"
