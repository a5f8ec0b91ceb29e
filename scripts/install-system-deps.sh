#!/usr/bin/env bash
# Install the Debian packages the test tiers start: a real Prometheus, a real Redis, wrk.
# Idempotent and quiet when everything is there already.
set -euo pipefail
packages=()
for spec in prometheus:prometheus promtool:prometheus redis-server:redis-server wrk:wrk; do
    cmd=${spec%%:*} pkg=${spec##*:}
    command -v "$cmd" >/dev/null 2>&1 || packages+=("$pkg")
done
[ ${#packages[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${packages[@]}" | sort -u) >/dev/null
# The Debian package starts nothing here, but stop any service it may have started.
$SUDO systemctl disable --now prometheus redis-server 2>/dev/null || true
