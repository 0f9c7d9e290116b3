#!/usr/bin/env bash
# Runs every test of cpgate: unit, property and integration tests.
# Installs what a fresh machine lacks first: mount(8) for the audit full-disk test (a tmpfs;
# the test skips with a reason when mounting is not permitted).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install Rust (https://rustup.rs) first" >&2
  exit 1
fi

if ! command -v mount >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  { apt-get update -qq && apt-get install -y -qq mount >/dev/null; } || echo "could not install mount; the full-disk test will skip" >&2
fi

cargo test --all-targets "$@"
