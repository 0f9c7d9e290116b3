#!/usr/bin/env bash
# Lints the Dockerfile: hadolint when installed, else the checks hadolint would make that
# matter most here (no hadolint package in Debian 12).
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v hadolint >/dev/null 2>&1; then
  exec hadolint Dockerfile
fi
fail() { echo "Dockerfile: $*" >&2; exit 1; }
grep -qE '^FROM .* AS build$' Dockerfile || fail "expected a named build stage (multi-stage)"
[ "$(grep -c '^FROM ' Dockerfile)" -ge 2 ] || fail "expected a multi-stage build"
tail_from=$(grep -n '^FROM ' Dockerfile | tail -1 | cut -d: -f1)
sed -n "${tail_from},\$p" Dockerfile | grep -qE '^USER [a-z]+' || fail "the final stage must run as a non-root USER"
sed -n "${tail_from},\$p" Dockerfile | grep -qE '^USER (root|0)' && fail "the final stage runs as root"
grep -qE '^FROM [^ ]+:latest' Dockerfile && fail "do not use :latest base images"
grep -qE 'cargo build .*--locked' Dockerfile || fail "build with --locked"
grep -qE '^ENTRYPOINT \[' Dockerfile || fail "use the exec form of ENTRYPOINT"
echo "Dockerfile: ok (manual checks; install hadolint for the full lint)"
