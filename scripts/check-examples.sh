#!/usr/bin/env bash
# Validates the example policies in policies/ with `cpgate check`, using a throwaway config
# and signing key (the examples must load against a config like the README's).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cargo build --quiet
bin=target/debug/cpgate
kid=$("$bin" keys generate --dir "$tmp/keys" --alg EdDSA 2>/dev/null)
cat > "$tmp/cpgate.toml" <<TOML
[server]
listen = "127.0.0.1:2083"

[upstream]
url = "https://cpanel.example.com:2083"
user = "acctuser"
token_env = "CPGATE_EXAMPLE_TOKEN"

[tokens]
algorithm = "EdDSA"
key_file = "keys/$kid.pem"
key_id = "$kid"

[policies]
dir = "$PWD/policies"

[audit]
file = "$tmp/audit/audit.jsonl"
TOML
CPGATE_EXAMPLE_TOKEN=EXAMPLEONLY "$bin" check --config "$tmp/cpgate.toml"
