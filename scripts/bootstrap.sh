# Sourced by the other scripts: makes .venv (once) and installs ws4py into it
# with its compiled speed-ups, plus the extras named in WS4PY_EXTRAS.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
fi
# WS4PY_BUILD_EXTENSION=yes: a failed C build is an error here, not a silent fallback.
# No brackets without extras: pip 26 refuses ".[]".
extras="${WS4PY_EXTRAS:-}"
WS4PY_BUILD_EXTENSION=yes .venv/bin/python -m pip install -q -e ".${extras:+[$extras]}"
