#!/usr/bin/env bash
# Resident memory of cpgate holding N idle keep-alive client connections (issue 6 target:
# <= 64 MiB with N = 10,000). Everything on 127.0.0.1; every process started here is stopped
# by PID on exit. Each connection makes one allowed call (forwarded to an emulated cPanel,
# audited) and then stays open, idle; the script reads cpgate's VmRSS/VmHWM from /proc.
#
#   cargo build --release
#   benches/idle_memory.sh                  # CPGATE_BIN=target/release/cpgate N=10000
#   N=2000 PORT=29390 benches/idle_memory.sh
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
CPGATE_BIN=${CPGATE_BIN:-$HERE/target/release/cpgate}
N=${N:-10000}
PORT=${PORT:-29390}              # cpgate; PORT+1 the emulated cPanel, PORT+100 admin
HOLD=${HOLD:-3}                  # seconds the connections stay idle before the reading
[ -x "$CPGATE_BIN" ] || { echo "no $CPGATE_BIN: cargo build --release" >&2; exit 1; }
ulimit -n $((N + 1024)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -gt "$N" ] || { echo "ulimit -n $(ulimit -n) is below N=$N" >&2; exit 1; }

WORK=$(mktemp -d /tmp/cpgate-idle.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/policies" "$WORK/keys"
printf 'MASTERTOKEN123' >"$WORK/master.token"
KID=$("$CPGATE_BIN" keys generate --dir "$WORK/keys" --alg ES256 2>/dev/null)
cat >"$WORK/cpgate.toml" <<CONF
[server]
listen = "127.0.0.1:$PORT"
admin_listen = "127.0.0.1:$((PORT + 100))"
max_connections = $((N + 1000))
idle_timeout = "10m"

[upstream]
url = "http://127.0.0.1:$((PORT + 1))"
user = "masteruser"
token_file = "$WORK/master.token"

[tokens]
issuer = "cpgate-idle"
audience = "cpanel"
algorithm = "ES256"
key_file = "$WORK/keys/$KID.pem"
key_id = "$KID"
max_ttl = "2h"

[policies]
dir = "$WORK/policies"

[audit]
file = "$WORK/audit/audit.jsonl"
fsync = "batch"

[rate_limit]
store = "memory"
default_per_minute = 6000000
default_burst = 1000000
CONF
printf '[[allow]]\ncalls = ["Email::list_pops"]\n' >"$WORK/policies/alice.toml"
TOKEN=$("$CPGATE_BIN" token issue --config "$WORK/cpgate.toml" --developer alice --ttl 1h)

"$CPGATE_BIN" emulate --listen "127.0.0.1:$((PORT + 1))" --user masteruser --token MASTERTOKEN123 \
    >"$WORK/emulate.log" 2>&1 &
PIDS+=($!)
"$CPGATE_BIN" serve --config "$WORK/cpgate.toml" >"$WORK/cpgate.log" 2>&1 &
CPGATE_PID=$!; PIDS+=($CPGATE_PID)
for _ in $(seq 100); do
    ss -Hltn "sport = :$PORT" | grep -q . && ss -Hltn "sport = :$((PORT + 1))" | grep -q . && break
    sleep 0.1
done
rss() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$CPGATE_PID/status"; }
echo "cpgate started: VmRSS $(rss VmRSS) kB"

python3 - "$PORT" "$N" "$TOKEN" "$HOLD" "$CPGATE_PID" <<'PY'
import socket, sys, time
port, n, token, hold, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), sys.argv[5]
req = (f"GET /execute/Email/list_pops?domain=example.com HTTP/1.1\r\nHost: 127.0.0.1\r\n"
       f"Authorization: Bearer {token}\r\n\r\n").encode()
def status(key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
def read_response(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError("closed")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    while len(body) < length:
        body += s.recv(65536)
    return head.split(b" ")[1]
conns, ok = [], 0
for i in range(n):                       # bounded: N connections, one call each
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(req)
    if read_response(s) == b"200":
        ok += 1
    conns.append(s)
time.sleep(hold)
rss, hwm = status("VmRSS"), status("VmHWM")
open_now = sum(1 for s in conns if s.fileno() >= 0)
print(f"connections={n} ok_calls={ok} idle_for={hold}s VmRSS={rss/1024:.1f} MiB VmHWM={hwm/1024:.1f} MiB")
for s in conns:
    s.close()
PY
