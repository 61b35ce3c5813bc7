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

make_venv() { # name: 0 if it was just made
    if [ ! -x "$venvs/$1/bin/python" ]; then
        python3 -m venv "$venvs/$1"
        "$venvs/$1/bin/python" -m pip install --quiet --upgrade pip
        return 0
    fi
    [ "${WS4PY_BENCH_UPGRADE:-0}" = "1" ]
}

if make_venv websockets; then
    "$venvs/websockets/bin/python" -m pip install --quiet --upgrade websockets
fi
if make_venv ws4py-orig; then
    "$venvs/ws4py-orig/bin/python" -m pip install --quiet --upgrade ws4py==0.6.0
fi
make_venv threaded || true
# WS4PY_BENCH_BASE=<commit>: ws4py at that commit in bench/.venvs/threaded-base, the "base" peer
# (--peers ws4py,base,...), for before/after comparisons in one interleaved run.
if [ -n "${WS4PY_BENCH_BASE:-}" ]; then
    make_venv threaded-base || true
    rm -rf "$venvs/base-src" && mkdir -p "$venvs/base-src"
    git -C "$root" archive "$WS4PY_BENCH_BASE" | tar -x -C "$venvs/base-src"
    WS4PY_BUILD_EXTENSION=yes "$venvs/threaded-base/bin/python" -m pip install --quiet "$venvs/base-src"
fi
# WS4PY_BUILD_EXTENSION=yes: a failed C build is an error, not a silent fallback.
WS4PY_BUILD_EXTENSION=yes "$venvs/threaded/bin/python" -m pip install --quiet -e "$root"

mkdir -p "$here/loadgen/build"
gcc -O2 -Wall -Wextra -Werror -o "$here/loadgen/build/loadgen" "$here/loadgen/loadgen.c"
gcc -O2 -Wall -Wextra -Werror -o "$here/loadgen/build/c_echo" "$here/servers/c_echo.c"

cd "$root"
exec "$venvs/threaded/bin/python" bench/threaded_bench.py "$@"
