#!/usr/bin/env bash
# The side-by-side harness of ../shared/bench (nginx, HAProxy, cpgate) against this checkout's
# release build, with one documented change to its check: cpgate never relays the master
# credential, so the upstream's echo header cannot prove the header swap for cpgate; the
# patch (benches/harness-proof-by-body.patch) accepts the upstream's fixed 200 body instead,
# which the upstream sends only when it saw exactly the master Authorization, and only for
# cpgate-* contenders. Everything else — load, rounds, tables — is the harness's own.
#
#   cargo build --release
#   benches/side_by_side.sh                                   # every contender
#   CPGATE_ALGS=es256 CONTENDERS="nginx haproxy-es256 cpgate-es256" ROUNDS=3 benches/side_by_side.sh
#
# Knobs are the harness's (ROUNDS, DURATION, LAT_ROUNDS, CPGATE_AUDIT_FSYNC, ...; see its
# README). Results land in $BENCH_WORKDIR/results (default /tmp/cpgate-bench).
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${BENCH_SRC:-$HERE/../shared/bench}
export BENCH_WORKDIR=${BENCH_WORKDIR:-/tmp/cpgate-bench}
export CPGATE_BIN=${CPGATE_BIN:-$HERE/target/release/cpgate}
[ -x "$CPGATE_BIN" ] || { echo "no $CPGATE_BIN: cargo build --release" >&2; exit 1; }
[ -d "$SHARED" ] || { echo "no harness at $SHARED (set BENCH_SRC)" >&2; exit 1; }
mkdir -p "$BENCH_WORKDIR"
rm -rf "$BENCH_WORKDIR/harness"
cp -r "$SHARED" "$BENCH_WORKDIR/harness"
rm -rf "$BENCH_WORKDIR/harness/.run" "$BENCH_WORKDIR/harness/results"
patch -s -d "$BENCH_WORKDIR/harness" -p1 <"$HERE/benches/harness-proof-by-body.patch"
exec "$BENCH_WORKDIR/harness/run.sh" "$@"
