#!/bin/sh
# Pub/sub benchmark: fan-out of 100 messages of 64 B from 1 publisher to 5,000 clients through ws4py's in-process
# broker (1 worker) and its Redis broker (`python -m ws4py serve --workers 2 --broker redis://...`), against
# websockets + redis-py on 2 processes (bench/servers/pubsub_websockets.py), and a minimal C fan-out server
# (bench/servers/c_fanout.c) as the floor of the machine; then the publish throughput of one synchronous publisher.
# Each run gets a fresh redis-server (Debian's, on PATH).
#
#   bench/run_pubsub.sh             full run (about 3 minutes): prints the report, writes bench/results/pubsub.md
#   bench/run_pubsub.sh --quick     smoke run: 500 clients, 20 messages, one repeat, writes nothing
#   bench/run_pubsub.sh --repeats 3 --peers inprocess,redis --output /tmp/pubsub.md
#
# Two virtualenvs (ignored by git), made once (WS4PY_BENCH_UPGRADE=1 refreshes them): bench/.venvs/pubsub, ws4py
# from this repository (pip install -e on every run, so the C extension is rebuilt) with redis-py; and
# bench/.venvs/pubsub-websockets, websockets and redis-py (latest; redis-py within ws4py's bounds in both). The
# harness runs in bench/.venvs/pubsub. The load generator (bench/loadgen, C) and the C fan-out server are compiled
# on every run.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
venvs="$here/.venvs"

. "$here/_setup.sh"

REDIS_PY="redis>=5.0,<9"

if make_venv pubsub; then
    "$venvs/pubsub/bin/python" -m pip install --quiet --upgrade "$REDIS_PY"
fi
install_ws4py pubsub "$root" -e
if make_venv pubsub-websockets; then
    "$venvs/pubsub-websockets/bin/python" -m pip install --quiet --upgrade websockets "$REDIS_PY"
fi
build_loadgen
gcc -O2 -Wall -Wextra -Werror -o "$here/loadgen/build/c_fanout" "$here/servers/c_fanout.c"

cd "$root"
exec "$venvs/pubsub/bin/python" bench/pubsub_bench.py "$@"
