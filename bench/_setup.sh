# Sourced by bench/run_threaded.sh, bench/run_asyncio.sh, bench/run_compare.sh, bench/run_integrations.sh,
# bench/run_uvicorn.sh and bench/run_pubsub.sh, after they set $here (bench/) and $venvs (bench/.venvs): the
# virtualenvs and the compiled load generator.

make_venv() { # name: 0 if it was just made (or is to be refreshed: WS4PY_BENCH_UPGRADE=1)
    if [ ! -x "$venvs/$1/bin/python" ]; then
        python3 -m venv "$venvs/$1"
        "$venvs/$1/bin/python" -m pip install --quiet --upgrade pip
        return 0
    fi
    [ "${WS4PY_BENCH_UPGRADE:-0}" = "1" ]
}

install_ws4py() { # venv source [pip option...]: ws4py from that tree, its C extension rebuilt
    venv=$1
    source=$2
    shift 2
    make_venv "$venv" || true
    # WS4PY_BUILD_EXTENSION=yes: a failed C build is an error, not a silent fallback.
    WS4PY_BUILD_EXTENSION=yes "$venvs/$venv/bin/python" -m pip install --quiet "$@" "$source"
}

websockets_venv() { # the virtualenv of websockets (latest)
    if make_venv websockets; then
        "$venvs/websockets/bin/python" -m pip install --quiet --upgrade websockets
    fi
}

threaded_peer_venvs() { # the virtualenvs of websockets (latest) and of the original ws4py 0.6.0
    websockets_venv
    if make_venv ws4py-orig; then
        "$venvs/ws4py-orig/bin/python" -m pip install --quiet --upgrade ws4py==0.6.0
    fi
}

build_loadgen() { # the load generator and the C echo server, into bench/loadgen/build (ignored by git)
    mkdir -p "$here/loadgen/build"
    gcc -O2 -Wall -Wextra -Werror -o "$here/loadgen/build/loadgen" "$here/loadgen/loadgen.c"
    gcc -O2 -Wall -Wextra -Werror -o "$here/loadgen/build/c_echo" "$here/servers/c_echo.c"
}

# The frameworks of the integrations benchmark: the bounds of ws4py's extras `cherrypy` and `gevent`
# (pyproject.toml), so that both ws4py versions run on the same (newest) releases.
INTEGRATION_FRAMEWORKS="CherryPy>=18.8,<19 cheroot>=10,<12 gevent>=24.2,<27"

integration_peer_venvs() { # websockets (latest), and the original ws4py 0.6.0 with CherryPy, cheroot and gevent
    websockets_venv
    if make_venv orig-integrations; then
        # shellcheck disable=SC2086 # one requirement per word
        "$venvs/orig-integrations/bin/python" -m pip install --quiet --upgrade ws4py==0.6.0 $INTEGRATION_FRAMEWORKS
    fi
}
