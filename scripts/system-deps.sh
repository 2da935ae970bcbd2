#!/usr/bin/env bash
# Installs the Debian packages the tests use, only where they are missing:
# promtool (prometheus), chromium (browser tests), PostgreSQL server binaries
# (a private server when none is reachable), docker-compose (compose validation),
# espeak-ng and sox (the IVR prompts build: python -m callcenter prompts build).
# Exits non-zero when something is missing and cannot be installed (not root, no sudo, apt
# failed): a test run without them would only skip, and skips must not pass for green.
set -euo pipefail
missing() {
  need=()
  command -v promtool >/dev/null 2>&1 || need+=(prometheus)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
  command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
  command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
  command -v sox >/dev/null 2>&1 || need+=(sox)
}
missing
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
as_root=()
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
    as_root=(sudo -n)
  else
    echo "system-deps: missing ${need[*]} and cannot install them (not root, no sudo):" \
      "run 'apt-get install -y ${need[*]}' as root" >&2
    exit 1
  fi
fi
echo "system-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Another apt may hold the lock for a while (several engineers on one machine): wait for it.
apt_opts=(-o DPkg::Lock::Timeout=300)
if ! "${as_root[@]}" apt-get "${apt_opts[@]}" update -qq >/dev/null ||
   ! "${as_root[@]}" apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends \
       "${need[@]}" >/dev/null; then
  echo "system-deps: apt-get could not install ${need[*]}" >&2
  exit 1
fi
# --no-install-recommends keeps the install small; prometheus' service is not started by us.
missing
if [ ${#need[@]} -ne 0 ]; then
  echo "system-deps: still missing after the install: ${need[*]}" >&2
  exit 1
fi
