#!/usr/bin/env bash
# Installs Debian's chromium for the browser interop test (tests/interop), if it is missing.
# Quiet and successful when /usr/bin/chromium is already there; uses sudo only when not root.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_chromium: /usr/bin/chromium is missing and apt-get is not available" >&2
    exit 1
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "ensure_chromium: /usr/bin/chromium is missing; installing it needs root or sudo" >&2
        exit 1
    fi
    SUDO=(sudo)
fi
echo "ensure_chromium: installing chromium with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null
[ -x /usr/bin/chromium ] || { echo "ensure_chromium: chromium is still missing after apt-get install" >&2; exit 1; }
