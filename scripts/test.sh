#!/usr/bin/env bash
# Runs every test of cpgate: unit, property and integration tests, and the Redis store tests
# against a real redis-server (which they start themselves on free loopback ports).
# Installs what a fresh machine lacks first: redis-server (Debian/Ubuntu, as root).
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

cargo test --all-targets "$@"
