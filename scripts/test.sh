#!/usr/bin/env bash
# Runs every test of cpgate: unit, property and integration tests.
# Installs what a fresh machine lacks first (nothing beyond the Rust toolchain yet).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install Rust (https://rustup.rs) first" >&2
  exit 1
fi

cargo test --all-targets "$@"
