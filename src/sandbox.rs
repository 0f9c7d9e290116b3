//! A self-contained cpgate set-up in one folder (config, fresh signing key, policies, master
//! token file, optional test TLS certificates), for `cpgate demo` and the integration tests.
//!
//! Never for production: the TLS CA it makes is a throwaway, marked as such.

use std::path::{Path, PathBuf};

use crate::token::{generate_key, Algorithm};

/// What to put in the folder.
#[derive(Clone, Debug)]
pub struct SandboxSpec {
    pub algorithm: Algorithm,
    /// `http://127.0.0.1:PORT` of the (emulated or mock) cPanel.
    pub upstream_url: String,
    pub upstream_user: String,
    /// Written to `master.token` (mode 0600) and referenced by `token_file`.
    pub master_token: String,
    /// `(file name, TOML)` of each policy.
    pub policies: Vec<(String, String)>,
    /// Serve TLS with a throwaway CA (`ca.pem` in the folder).
    pub tls: bool,
    pub listen: String,
    /// Extra lines for the `[server]` table.
    pub server_extra: String,
    /// Extra lines for the `[tokens]` table.
    pub tokens_extra: String,
    pub rate_limit: (u32, u32),
    pub fsync: &'static str,
    /// `[upstream] timeout`.
    pub upstream_timeout: &'static str,
    /// Extra lines for the `[upstream]` table (`ca_file`, `pin_sha256`).
    pub upstream_trust: String,
    /// Appended at the end of the config (e.g. `[upstreams.NAME]` tables).
    pub config_extra: String,
}

impl SandboxSpec {
    /// Sensible defaults: EdDSA, plain HTTP on an ephemeral loopback port, generous limits.
    pub fn new(upstream_url: String, master_token: String) -> Self {
        Self {
            algorithm: Algorithm::EdDSA,
            upstream_url,
            upstream_user: "acctuser".into(),
            master_token,
            policies: Vec::new(),
            tls: false,
            listen: "127.0.0.1:0".into(),
            server_extra: String::new(),
            tokens_extra: String::new(),
            rate_limit: (600, 100),
            fsync: "batch",
            upstream_timeout: "10s",
            config_extra: String::new(),
            upstream_trust: String::new(),
        }
    }
}

/// The files written.
#[derive(Clone, Debug)]
pub struct Sandbox {
    pub config: PathBuf,
    pub audit: PathBuf,
    /// The throwaway CA certificate when TLS is on.
    pub ca: Option<PathBuf>,
}

/// Writes the sandbox into `dir` (which must exist).
pub fn write(dir: &Path, spec: &SandboxSpec) -> anyhow::Result<Sandbox> {
    let key = generate_key(spec.algorithm, &dir.join("keys"))?;
    let key_file = key
        .private_key
        .strip_prefix(dir)
        .map(Path::to_path_buf)
        .unwrap_or(key.private_key.clone());
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies)?;
    for (name, text) in &spec.policies {
        std::fs::write(policies.join(name), text)?;
    }
    write_private(&dir.join("master.token"), spec.master_token.as_bytes())?;
    let (tls_lines, ca) = if spec.tls {
        let (ca, chain, key) = crate::tls::test_ca_and_server(&["localhost", "127.0.0.1"])?;
        std::fs::write(dir.join("ca.pem"), ca)?;
        std::fs::write(dir.join("proxy.crt"), chain)?;
        write_private(&dir.join("proxy.key"), key.as_bytes())?;
        (
            "tls_cert = \"proxy.crt\"\ntls_key = \"proxy.key\"\n",
            Some(dir.join("ca.pem")),
        )
    } else {
        ("", None)
    };
    let alg = match spec.algorithm {
        Algorithm::EdDSA => "EdDSA",
        Algorithm::ES256 => "ES256",
        Algorithm::RS256 => "RS256",
        Algorithm::HS256 => "HS256",
    };
    let text = format!(
        r#"# Written by cpgate for a sandbox (demo or tests). Not a production config.
[server]
listen = "{listen}"
admin_listen = "127.0.0.1:0"
{tls_lines}{server_extra}
[upstream]
url = "{upstream}"
user = "{user}"
token_file = "master.token"
connect_timeout = "2s"
timeout = "{upstream_timeout}"
{upstream_trust}
[tokens]
algorithm = "{alg}"
key_file = "{key_file}"
key_id = "{kid}"
{tokens_extra}
[policies]
dir = "policies"

[audit]
file = "audit/audit.jsonl"
fsync = "{fsync}"

[rate_limit]
default_per_minute = {per_minute}
default_burst = {burst}
{config_extra}"#,
        listen = spec.listen,
        server_extra = spec.server_extra,
        upstream = spec.upstream_url,
        user = spec.upstream_user,
        key_file = key_file.display(),
        kid = key.kid,
        tokens_extra = spec.tokens_extra,
        fsync = spec.fsync,
        upstream_timeout = spec.upstream_timeout,
        config_extra = spec.config_extra,
        upstream_trust = spec.upstream_trust,
        per_minute = spec.rate_limit.0,
        burst = spec.rate_limit.1,
    );
    let config = dir.join("cpgate.toml");
    std::fs::write(&config, text)?;
    Ok(Sandbox {
        config,
        audit: dir.join("audit/audit.jsonl"),
        ca,
    })
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}
