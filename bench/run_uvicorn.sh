#!/bin/sh
# uvicorn benchmark: ws4py as uvicorn's WebSocket implementation (--ws ws4py.server.uvicorn:WebSocketProtocol)
# against uvicorn's websockets-sansio and wsproto, the same ASGI echo app (bench/servers/asgi_echo.py), each on the
# default asyncio loop and on uvloop; ws4py.asyncio.serve alone and the C echo server (bench/servers/c_echo.c) as
# references.
#
#   bench/run_uvicorn.sh             full run (about 12 minutes): prints the report, writes bench/results/uvicorn.md
#   bench/run_uvicorn.sh --quick     smoke run: every row, tiny durations and counts, one repeat, writes nothing
#   bench/run_uvicorn.sh --repeats 3 --rows idle --peers ws4py,sansio --output /tmp/idle.md
#
# Every server runs in one virtualenv, bench/.venvs/uvicorn (ignored by git): ws4py from this repository with its
# extra uvicorn (pip install -e, on every run, so the C extension is rebuilt), uvicorn within that extra's bounds,
# httptools, websockets, wsproto and uvloop (latest); the harness runs there too. It is made once;
# WS4PY_BENCH_UPGRADE=1 refreshes it. The load generator (bench/loadgen, C) and the C echo server are compiled on
# every run, into bench/loadgen/build (ignored by git).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
venvs="$here/.venvs"

. "$here/_setup.sh"

# uvicorn within the bounds of ws4py's extra `uvicorn` (pyproject.toml); the other packages uvicorn's --ws and
# --loop choices need, and httptools, the HTTP parser every uvicorn column uses.
UVICORN_PACKAGES="uvicorn>=0.36,<1 httptools websockets wsproto uvloop"

if make_venv uvicorn; then
    # shellcheck disable=SC2086 # one requirement per word
    "$venvs/uvicorn/bin/python" -m pip install --quiet --upgrade $UVICORN_PACKAGES
fi
install_ws4py uvicorn "$root[uvicorn]" -e
build_loadgen

cd "$root"
exec "$venvs/uvicorn/bin/python" bench/uvicorn_bench.py "$@"
