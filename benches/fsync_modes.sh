#!/usr/bin/env bash
# Audit fsync modes side by side (issue 3): three `cpgate serve` processes (ES256, the
# harness's config) differing only in `audit.fsync` = never / batch / always, loaded in
# interleaved rounds by wrk (64 keep-alive connections, a separate process), CPU per request
# from /proc; plus the baseline "one fsync per request": write + fdatasync of a 400-byte line,
# 200 times, on the audit files' filesystem, before and after the rounds. Ends with
# `cpgate audit verify` of each chain.
#
#   cargo build --release
#   CPGATE_ALGS=es256 CONTENDERS=cpgate-es256 benches/side_by_side.sh --serve &   # upstream, tokens
#   benches/fsync_modes.sh                         # ROUNDS=5 D=6 (seconds per run)
set -u
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CPGATE_BIN:-$HERE/target/release/cpgate} ROUNDS=${ROUNDS:-5} D=${D:-6}
WORKDIR=${BENCH_WORKDIR:-/tmp/cpgate-bench}
RUN=$WORKDIR/.run
[ -f "$RUN/cpgate-es256.toml" ] || { echo "start benches/side_by_side.sh --serve first (see above)" >&2; exit 1; }
TOK=$(cat $RUN/tokens/es256-valid)
declare -A PID PORT
p=29401
for m in never batch always; do
  d=/tmp/fs3-$m; rm -rf $d; mkdir -p $d/audit
  sed -e "s#127.0.0.1:29090#127.0.0.1:$p#; s#127.0.0.1:29190#127.0.0.1:$((p+100))#; s#$RUN/cpgate-es256.d/audit#$d/audit#; s#^fsync = .*#fsync = \"$m\"#" $RUN/cpgate-es256.toml > $d/c.toml
  $BIN serve --config $d/c.toml >$d/log 2>&1 & PID[$m]=$!; PORT[$m]=$p; p=$((p+1))
done
sleep 2
fsync_ms() { python3 - <<'PY'
import os, time
fd = os.open("/tmp/fs3-never/audit/fsync-probe", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
line = b"x" * 400 + b"\n"
t = time.perf_counter(); n = 200
for _ in range(n):
    os.write(fd, line); os.fdatasync(fd)
print(f"{(time.perf_counter() - t) / n * 1000:.3f}")
os.close(fd); os.unlink("/tmp/fs3-never/audit/fsync-probe")
PY
}
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
tck=$(getconf CLK_TCK)
echo "fdatasync_ms_before=$(fsync_ms)"
for r in $(seq $ROUNDS); do
  for m in never batch always; do
    port=${PORT[$m]}; pid=${PID[$m]}
    c0=$(cpu $pid)
    out=$(WRK_AUTH="Bearer $TOK" wrk -t1 -c64 -d${D}s -s $WORKDIR/harness/conf/wrk-auth.lua "http://127.0.0.1:$port/execute/Email/list_pops?domain=example.com" 2>&1)
    c1=$(cpu $pid)
    reqs=$(echo "$out" | awk '/requests in/ {print $1}')
    echo "round $r $m rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}') cpu_us_per_req=$(echo "($c1-$c0)*1000000/$tck/$reqs" | bc -l | cut -c1-6) non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')"
  done
done
echo "fdatasync_ms_after=$(fsync_ms)"
for m in never batch always; do kill ${PID[$m]}; done; wait
for m in never batch always; do
  # oldest first: audit.jsonl.N ... audit.jsonl.1, audit.jsonl
  files=$(ls /tmp/fs3-$m/audit/audit.jsonl.* 2>/dev/null | sort -t. -k3 -rn)
  echo "$m audit: $($BIN audit verify $files /tmp/fs3-$m/audit/audit.jsonl 2>&1 | tail -1)"
done
