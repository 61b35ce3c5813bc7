#!/usr/bin/env bash
# Installs Debian's redis-server (which brings redis-cli) for the pub/sub tests (tests/pubsub), if it is missing.
# Quiet and successful when /usr/bin/redis-server is already there; uses sudo only when not root.
set -euo pipefail
if [ -x /usr/bin/redis-server ] && [ -x /usr/bin/redis-cli ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_redis: /usr/bin/redis-server is missing and apt-get is not available" >&2
    exit 1
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "ensure_redis: /usr/bin/redis-server is missing; installing it needs root or sudo" >&2
        exit 1
    fi
    SUDO=(sudo)
fi
echo "ensure_redis: installing redis-server with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends redis-server >/dev/null
# The package starts a system-wide Redis on port 6379; the tests start their own on free ports.
[ -x /usr/bin/redis-server ] || { echo "ensure_redis: redis-server is still missing after apt-get install" >&2; exit 1; }
