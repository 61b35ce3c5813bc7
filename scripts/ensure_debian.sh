#!/usr/bin/env bash
# Installs Debian packages the tests need, if missing: ensure_debian.sh PROGRAM PACKAGE [PROGRAM PACKAGE]...
# (e.g. /usr/bin/chromium chromium). Quiet and successful when every PROGRAM is there already;
# one apt-get run for the missing ones; uses sudo only when not root.
set -euo pipefail
missing=()
programs=()
while [ $# -ge 2 ]; do
    [ -x "$1" ] || { missing+=("$2"); programs+=("$1"); }
    shift 2
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_debian: ${missing[*]} missing and apt-get is not available" >&2
    exit 1
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "ensure_debian: ${missing[*]} missing; installing needs root or sudo" >&2
        exit 1
    fi
    SUDO=(sudo)
fi
echo "ensure_debian: installing ${missing[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for program in "${programs[@]}"; do
    [ -x "$program" ] || { echo "ensure_debian: $program is still missing after apt-get install" >&2; exit 1; }
done
