#!/usr/bin/env bash
# Installs the benchmark's peers that do not come from npm: Redis from Debian's redis-server.
# Needs root (or passwordless sudo) and the Debian registry; without them it says so and the
# bench skips Redis. ioredis and lmdb come from npm as dev dependencies.
set -u
if command -v redis-server >/dev/null 2>&1; then
  echo "redis-server: $(redis-server --version | head -1)"
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
  echo "redis-server is not installed and this user cannot install it: Redis rows will be skipped"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -qq --no-install-recommends redis-server >/dev/null 2>&1; then
  $SUDO apt-get update -qq >/dev/null 2>&1
  $SUDO apt-get install -y -qq --no-install-recommends redis-server >/dev/null 2>&1 || {
    echo "could not install redis-server from the Debian registry: Redis rows will be skipped"
    exit 0
  }
fi
# The package may start a system instance on 6379; the bench starts its own on a free port.
($SUDO systemctl stop redis-server 2>/dev/null || $SUDO service redis-server stop 2>/dev/null) >/dev/null 2>&1 || true
echo "redis-server: $(redis-server --version | head -1)"
