#!/bin/sh
# Protocol-core benchmark: ws4py (C and pure-Python codecs) vs websockets and wsproto.
#
#   bench/run_core.sh             full run (a few minutes), prints the table, writes bench/results/core.md
#   bench/run_core.sh --quick     smoke run: tiny N, one repeat, every row, writes nothing
#   bench/run_core.sh --profile   cProfile of ws4py's core on the 16 B and 1 KiB rows
#
# The peers live in their own virtualenv, bench/.venvs/core, so the project's
# environment stays clean. websockets and wsproto are installed (latest) when
# the virtualenv is made; WS4PY_BENCH_UPGRADE=1 upgrades them. ws4py itself is
# reinstalled (-e, which rebuilds the C extension) on every run, so an edit to
# src/ws4py/_speedups.c is always what gets measured.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
venv="$here/.venvs/core"
python="$venv/bin/python"

if [ ! -x "$python" ]; then
    python3 -m venv "$venv"
    "$python" -m pip install --quiet --upgrade pip
    WS4PY_BENCH_UPGRADE=1
fi
if [ "${WS4PY_BENCH_UPGRADE:-0}" = "1" ]; then
    "$python" -m pip install --quiet --upgrade websockets wsproto
fi
# WS4PY_BUILD_EXTENSION=yes: a failed C build is an error, not a silent fallback.
WS4PY_BUILD_EXTENSION=yes "$python" -m pip install --quiet -e "$root"

cd "$root"
exec "$python" bench/core_bench.py "$@"
