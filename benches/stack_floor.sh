#!/usr/bin/env bash
# The floor of the stack (issue 6): nginx (the harness's plain proxy), a bare hyper proxy with
# cpgate's serving model and no checks (examples/bare_proxy.rs), and cpgate, loaded in
# interleaved rounds by wrk (64 keep-alive connections, a separate process); requests per
# second and proxy CPU per request from /proc. Whatever the bare proxy reaches against nginx
# is the most a gateway built on hyper + tokio reaches on this machine; the gap between it
# and cpgate is cpgate's own work.
#
#   cargo build --release && cargo build --release --example bare_proxy
#   CPGATE_ALGS=es256 CONTENDERS="nginx cpgate-es256" benches/side_by_side.sh --serve &   # upstream, nginx, tokens
#   benches/stack_floor.sh                         # ROUNDS=5 D=6 (seconds per run)
set -u
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CPGATE_BIN:-$HERE/target/release/cpgate} BARE=$HERE/target/release/examples/bare_proxy
ROUNDS=${ROUNDS:-5} D=${D:-6}
WORKDIR=${BENCH_WORKDIR:-/tmp/cpgate-bench}
RUN=$WORKDIR/.run
[ -f "$RUN/cpgate-es256.toml" ] && [ -f "$RUN/proxy.nginx.pid" ] || { echo "start benches/side_by_side.sh --serve first (see above)" >&2; exit 1; }
[ -x "$BARE" ] || { echo "no $BARE: cargo build --release --example bare_proxy" >&2; exit 1; }
TOK=$(cat $RUN/tokens/es256-valid)
d=/tmp/stack-floor; rm -rf $d; mkdir -p $d/audit
sed -e "s#127.0.0.1:29090#127.0.0.1:29096#; s#127.0.0.1:29190#127.0.0.1:29196#; s#$RUN/cpgate-es256.d/audit#$d/audit#" $RUN/cpgate-es256.toml > $d/c.toml
"$BARE" 127.0.0.1:29095 127.0.0.1:29080 2 >$d/bare.log 2>&1 & BARE_PID=$!
$BIN serve --config $d/c.toml >$d/cpgate.log 2>&1 & CPGATE_PID=$!
trap 'kill $BARE_PID $CPGATE_PID 2>/dev/null; wait 2>/dev/null' EXIT
NGINX_PIDS=$(pgrep -P "$(cat $RUN/proxy.nginx.pid)" | tr '\n' ' ')
sleep 2
tck=$(getconf CLK_TCK)
cpu() { local s=0 p; for p in $1; do s=$((s + $(awk '{print $14+$15}' /proc/$p/stat))); done; echo $s; }
load() { WRK_AUTH="Bearer $TOK" wrk -t1 -c64 -d"$2" -s $WORKDIR/harness/conf/wrk-auth.lua "http://127.0.0.1:$1/execute/Email/list_pops?domain=example.com" 2>&1; }
for r in $(seq $ROUNDS); do
  for x in nginx bare cpgate; do
    case $x in
      nginx) pids=$NGINX_PIDS port=29081 ;;
      bare) pids=$BARE_PID port=29095 ;;
      cpgate) pids=$CPGATE_PID port=29096 ;;
    esac
    load $port 1s >/dev/null
    c0=$(cpu "$pids")
    out=$(load $port ${D}s)
    c1=$(cpu "$pids")
    reqs=$(echo "$out" | awk '/requests in/ {print $1}')
    echo "round $r $x rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}') cpu_us_per_req=$(echo "($c1-$c0)*1000000/$tck/$reqs" | bc -l | cut -c1-6) non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')"
  done
done
