#!/usr/bin/env bash
# Runs every test of cpgate: unit, property, integration, the Redis store tests against a real
# redis-server (started by the tests on free loopback ports), and the compatibility tests with
# the real cPanel clients (tests/clients).
# Installs what a fresh machine lacks first: redis-server and mount(8) (Debian, as root); a
# throwaway Python virtual environment in target/client-venv with the clients pinned in
# tests/clients/requirements.txt (from PyPI), re-created whenever that file changes. Needs
# python3 (3.11 or newer) with the venv module. The audit full-disk test mounts a tmpfs and
# skips with a reason when mounting is not permitted.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install Rust (https://rustup.rs) first" >&2
  exit 1
fi

if ! command -v redis-server >/dev/null 2>&1; then
  echo "installing redis-server (for tests/redis)" >&2
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  ($sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server) >/dev/null
  # The package may start a system service on 6379; the tests use their own servers.
fi


if ! command -v mount >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  { apt-get update -qq && apt-get install -y -qq mount >/dev/null; } || echo "could not install mount; the full-disk test will skip" >&2
fi

venv="$PWD/target/client-venv"
requirements="tests/clients/requirements.txt"
stamp="$venv/.requirements"
if ! cmp -s "$requirements" "$stamp" 2>/dev/null || [ ! -x "$venv/bin/python" ]; then
  if ! command -v python3 >/dev/null 2>&1; then
    echo "python3 is missing: the client compatibility tests need Python 3.11 or newer" >&2
    exit 1
  fi
  echo "installing the cPanel clients for the compatibility tests into $venv" >&2
  rm -rf "$venv"
  mkdir -p target
  if ! python3 -m venv "$venv"; then
    echo "python3 -m venv failed: install the venv module (e.g. apt-get install python3-venv)" >&2
    exit 1
  fi
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$requirements"
  cp "$requirements" "$stamp"
fi
export CPGATE_CLIENT_VENV="$venv"

cargo test --all-targets "$@"
