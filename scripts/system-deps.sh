#!/usr/bin/env bash
# Installs the Debian packages the tests use, only where they are missing:
# promtool (prometheus), chromium (browser tests), PostgreSQL server binaries
# (a private server when none is reachable), docker-compose (compose validation),
# espeak-ng and sox (the IVR prompts build: python -m callcenter prompts build).
set -euo pipefail
need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
command -v sox >/dev/null 2>&1 || need+=(sox)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "system-deps: missing ${need[*]}; install them with apt-get (needs root)" >&2
  exit 0
fi
echo "system-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# --no-install-recommends keeps the install small; prometheus' service is not started by us.
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
