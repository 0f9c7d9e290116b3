#!/usr/bin/env bash
# Validates the shipped example config and the example policies with `cpgate check`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --bin cpgate
CPGATE_UPSTREAM_TOKEN=EXAMPLEONLY target/debug/cpgate check --config examples/cpgate.toml
