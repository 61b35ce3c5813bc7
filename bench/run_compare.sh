#!/bin/sh
# Before/after benchmark: ws4py's threaded, ws4py.asyncio and callbacks servers at two revisions, interleaved
# in one run (the regression check of issue 16; bench/README.md, "Before and after").
#
#   bench/run_compare.sh BEFORE_REV               BEFORE_REV against the working tree (about 10 minutes):
#                                                 prints the tables, writes bench/results/compare.md
#   bench/run_compare.sh BEFORE_REV AFTER_REV     BEFORE_REV against the commit AFTER_REV
#   bench/run_compare.sh BEFORE_REV --quick       smoke run: every row, tiny durations, one repeat; writes nothing
#   bench/run_compare.sh BEFORE_REV --rows TEXT   only the rows whose label contains TEXT (repeatable)
#
# Other options: --repeats N (runs per row, default 3; the one-CPU lockstep rows get 2N - 1), --output PATH,
# --peers (a subset of the servers). Each revision is exported with `git archive` into a temporary directory
# (removed at the end) and installed, not editable, into its own virtualenv with its C extension:
#   before       BEFORE_REV
#   after        AFTER_REV, when given
#   threaded     the working tree (pip install -e, as bench/run_threaded.sh does), when AFTER_REV is not given
#   ws4py-orig   ws4py 0.6.0 and websockets (latest), for the handshake row; made once, as by
#   websockets   bench/run_threaded.sh (WS4PY_BENCH_UPGRADE=1 refreshes them)
# Each revision's servers run from its virtualenv and its own bench/servers scripts (the working tree's when a
# revision lacks one). The load generator and the C echo server are compiled from the working tree.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
venvs="$here/.venvs"

. "$here/_setup.sh"

usage() { # exit status
    sed -n '2,/^set -eu$/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit "$1"
}

[ $# -ge 1 ] || usage 2
case $1 in
-h | --help) usage 0 ;;
-*) usage 2 ;;
esac
before_rev=$1
shift
after_rev=
if [ $# -ge 1 ]; then
    case $1 in
    -*) ;;
    *)
        after_rev=$1
        shift
        ;;
    esac
fi

commit() { # revision: its full commit hash
    git -C "$root" rev-parse --verify --quiet "$1^{commit}" || {
        echo "run_compare.sh: not a revision: $1" >&2
        return 2
    }
}
short() { git -C "$root" rev-parse --short "$1"; }

before=$(commit "$before_rev")
after=
[ -z "$after_rev" ] || after=$(commit "$after_rev")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ws4py-compare.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

install_revision() { # commit venv: export the commit to $tmp/venv and install it there, not editable
    mkdir "$tmp/$2"
    git -C "$root" archive "$1" | tar -x -C "$tmp/$2"
    install_ws4py "$2" "$tmp/$2" --force-reinstall --no-deps
}

install_revision "$before" before
if [ -n "$after" ]; then
    install_revision "$after" after
    set -- --after-rev "$after_rev" --after-commit "$(short "$after")" --after-venv after \
        --after-servers "$tmp/after/bench/servers" "$@"
else
    install_ws4py threaded "$root" -e
    if [ -n "$(git -C "$root" status --porcelain)" ]; then
        set -- --after-modified "$@"
    fi
    set -- --after-commit "$(short HEAD)" "$@"
fi
threaded_peer_venvs
build_loadgen

# The harness uses the standard library only. It runs in the background so that a signal to this script reaches
# it (as SIGTERM: it then stops every process it started) and the export is removed after it has stopped.
cd "$root"
python3 bench/compare_bench.py --before-rev "$before_rev" --before-commit "$(short "$before")" \
    --before-servers "$tmp/before/bench/servers" "$@" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null || true' HUP INT TERM
status=0
wait "$pid" || status=$?
while kill -0 "$pid" 2>/dev/null; do # a signal interrupted the wait: wait for the harness to clean up
    status=0
    wait "$pid" || status=$?
done
exit "$status"
