#!/usr/bin/env bash
# Prepares deploy/ for `docker compose up`: a signing key, a random master token (shared by the
# emulated cPanel and cpgate as a Docker secret), a throwaway TLS certificate, and the config.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release --bin cpgate --example make_test_certs
mkdir -p deploy/secrets deploy/certs
if [ ! -s deploy/secrets/cpanel_token ]; then
  (umask 077; tr -dc 'A-Z0-9' </dev/urandom | head -c 32 > deploy/secrets/cpanel_token)
fi
kid=$(target/release/cpgate keys generate --dir deploy/keys --alg EdDSA 2>/dev/null)
target/release/examples/make_test_certs deploy/certs >/dev/null
cat > deploy/cpgate.toml <<TOML
# Written by scripts/compose-setup.sh for docker-compose.yml.
[server]
listen = "0.0.0.0:2083"
admin_listen = "127.0.0.1:9483"
tls_cert = "certs/proxy.crt"
tls_key = "certs/proxy.key"

[upstream]
url = "http://cpanel:2084"
user = "acctuser"
token_file = "/run/secrets/cpanel_token"

[tokens]
algorithm = "EdDSA"
key_file = "keys/$kid.pem"
key_id = "$kid"

[policies]
dir = "policies"

[audit]
file = "/var/lib/cpgate/audit.jsonl"

[rate_limit]
store = "redis://redis:6379/0"   # shared by the replicas: limits and revocations
on_store_error = "local"
TOML
# The image runs as the distroless "nonroot" user (65532): it must be able to read the secret,
# the signing key and the TLS key, which are created 0600.
if [ "$(id -u)" = 0 ]; then
  chown -R 65532:65532 deploy/secrets deploy/keys deploy/certs
else
  echo "warning: not root; making deploy/ secrets readable by the container user (chmod a+r)" >&2
  chmod -R a+rX deploy/secrets deploy/keys deploy/certs
fi
echo "deploy/ ready (kid $kid). Next: docker compose up --build"
echo "Issue a token: target/release/cpgate token issue --config deploy/cpgate.toml --developer alice"
echo "Revoke (inside a replica, which reaches Redis): docker compose exec cpgate-a cpgate token revoke --config /etc/cpgate/cpgate.toml --developer alice"
