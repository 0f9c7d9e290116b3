#!/usr/bin/env bash
# Instruction counts per proxied request (valgrind --tool=callgrind): repeatable on a noisy
# machine, unlike wall-clock figures. Starts an emulated cPanel and cpgate (ES256, fsync =
# "batch", the harness's policy shape) on loopback, warms up, then counts exactly N calls made
# by curl over one keep-alive connection. Every process started here is stopped by PID.
#
#   cargo build --release
#   benches/profile.sh                    # N=1000, prints Ir/request and the top functions
#   CPGATE_BIN=/tmp/cpgate-old N=500 benches/profile.sh
#   callgrind_annotate --inclusive=yes $OUT/callgrind.out | less
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
CPGATE_BIN=${CPGATE_BIN:-$HERE/target/release/cpgate}
N=${N:-1000}
WARM=${WARM:-100}
PORT=${PORT:-29490}
OUT=${OUT:-$(mktemp -d /tmp/cpgate-profile.XXXXXX)}
ALG=${ALG:-ES256}
[ -x "$CPGATE_BIN" ] || { echo "no $CPGATE_BIN: cargo build --release" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }

PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

mkdir -p "$OUT/policies" "$OUT/keys"
printf 'MASTERTOKEN123' >"$OUT/master.token"
KID=$("$CPGATE_BIN" keys generate --dir "$OUT/keys" --alg "$ALG" 2>/dev/null)
KEY=$OUT/keys/$KID.pem; [ "$ALG" = HS256 ] && KEY=$OUT/keys/$KID.key
cat >"$OUT/cpgate.toml" <<CONF
[server]
listen = "127.0.0.1:$PORT"
admin_listen = "127.0.0.1:$((PORT + 100))"

[upstream]
url = "http://127.0.0.1:$((PORT + 1))"
user = "masteruser"
token_file = "$OUT/master.token"

[tokens]
issuer = "cpgate-profile"
audience = "cpanel"
algorithm = "$ALG"
key_file = "$KEY"
key_id = "$KID"
max_ttl = "2h"

[policies]
dir = "$OUT/policies"

[audit]
file = "$OUT/audit/audit.jsonl"
fsync = "batch"

[rate_limit]
store = "memory"
default_per_minute = 600000
default_burst = 100000
CONF
printf '[rate_limit]\nper_minute = 600000000\nburst = 100000000\n\n[[allow]]\ncalls = ["Email::list_pops", "Email::list_forwarders", "DomainInfo::list_domains"]\n' \
    >"$OUT/policies/alice.toml"
TOKEN=$("$CPGATE_BIN" token issue --config "$OUT/cpgate.toml" --developer alice --ttl 1h)

"$CPGATE_BIN" emulate --listen "127.0.0.1:$((PORT + 1))" --user masteruser --token MASTERTOKEN123 \
    >"$OUT/emulate.log" 2>&1 &
PIDS+=($!)
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT/callgrind.out" \
    "$CPGATE_BIN" serve --config "$OUT/cpgate.toml" >"$OUT/cpgate.log" 2>&1 &
VG=$!; PIDS+=($VG)
for _ in $(seq 600); do
    ss -Hltn "sport = :$PORT" | grep -q . && ss -Hltn "sport = :$((PORT + 1))" | grep -q . && break
    sleep 0.1
done

calls() { # calls COUNT: COUNT calls on one keep-alive connection; prints the status histogram
    local f="$OUT/curl.cfg" i
    : >"$f"
    for i in $(seq "$1"); do
        printf 'url = "http://127.0.0.1:%s/execute/Email/list_pops?domain=example.com"\noutput = "/dev/null"\n' "$PORT" >>"$f"
    done
    curl -s -H "Authorization: Bearer $TOKEN" -K "$f" -w '%{http_code}\n' | sort | uniq -c
}
calls "$WARM" >/dev/null
callgrind_control -i on "$VG" >/dev/null
echo "statuses of the $N counted calls:"; calls "$N"
callgrind_control -i off "$VG" >/dev/null
callgrind_control -d "$VG" >/dev/null
sleep 1
DUMP=$(ls "$OUT"/callgrind.out.* | sort -t. -k3 -n | tail -1)
TOTAL=$(callgrind_annotate "$DUMP" 2>/dev/null | awk '/PROGRAM TOTALS/ && !t {gsub(",", "", $1); t = $1} END {print t}')
[ -n "$TOTAL" ] || { echo "no totals in $DUMP" >&2; exit 1; }
echo "instructions: total $TOTAL, per request $((TOTAL / N))  (dump: $DUMP)"
callgrind_annotate --inclusive=yes "$DUMP" 2>/dev/null | grep -E "^ *[0-9,]+ " | head -"${TOP:-40}" || true
