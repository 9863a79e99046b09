#!/usr/bin/env bash
# Installs what kollega's tests need on a fresh Debian machine and runs them.
# The README's test command; .ci/run calls it too. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
  else
    echo "please install: $*" >&2
    exit 1
  fi
}

# Debian packages: PostgreSQL (both databases are tested), Chromium for the browser tests,
# nginx and shellcheck to check the deploy files.
missing=()
command -v pg_ctlcluster >/dev/null 2>&1 || missing+=(postgresql)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v nginx >/dev/null 2>&1 || missing+=(nginx-core)
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi

# PostgreSQL on 127.0.0.1:5432 with trust auth for the postgres user (the test fixtures
# create and drop their own databases). Start the cluster if it is down.
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$version" ]; then
    version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    pg_createcluster "$version" main
  fi
  conf="/etc/postgresql/$version/main/pg_hba.conf"
  if ! grep -q "kollega-tests" "$conf"; then
    sed -i '1i # kollega-tests: local trust for the test suite\nhost all postgres 127.0.0.1/32 trust' "$conf"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi

if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
# shellcheck disable=SC1091
. .venv/bin/activate
pip install -q -r requirements-dev.txt

python -m pytest "$@"
