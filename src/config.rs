//! The config file: raw TOML structs (unknown keys rejected) -> a validated [`Config`].
//!
//! Owns: parsing durations, sizes, addresses and paths (relative to the config's folder), and
//! reading the master token from `token_file` / `token_env`. Never: accept the token inline, put
//! it in an error message. Nothing downstream re-validates: holding a `Config` means it is valid.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::audit::FsyncMode;
use crate::secret::Secret;
pub use crate::store::RedisUrl;
use crate::token::Algorithm;

/// Why the config is unusable, as `FILE:LINE: message` (line 0 when no line applies).
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}: {message}", file.display())]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file itself.
    pub path: PathBuf,
    pub server: ServerConfig,
    /// `default` for `[upstream]`, NAME for `[upstreams.NAME]`.
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    pub tokens: TokensConfig,
    pub policies_dir: PathBuf,
    pub audit: AuditConfig,
    pub rate_limit: RateLimitConfig,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Certificate chain and key; `None` = plain HTTP.
    pub tls: Option<TlsFiles>,
    pub client_ca: Option<PathBuf>,
    pub admin_listen: SocketAddr,
    pub max_body: usize,
    pub public_base_url: Option<String>,
    /// Time allowed to receive a request's headers.
    pub header_timeout: Duration,
    /// Time allowed to receive a request's body.
    pub body_timeout: Duration,
    /// An idle keep-alive connection is closed after this.
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// Threads serving the public listener, each with its own event loop (1..=[`MAX_WORKERS`]).
    pub workers: usize,
    /// Cap on the bytes of a request's header section.
    pub max_header_bytes: usize,
    /// Cap on the number of request headers.
    pub max_headers: usize,
}

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub url: http::Uri,
    pub ca_file: Option<PathBuf>,
    /// SHA-256 of the server's SubjectPublicKeyInfo.
    pub pin_sha256: Option<[u8; 32]>,
    pub user: String,
    pub token: Secret,
    pub connect_timeout: Duration,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct TokensConfig {
    pub issuer: String,
    pub audience: String,
    pub algorithm: Algorithm,
    pub key_file: PathBuf,
    pub key_id: String,
    pub verify_keys: Vec<PathBuf>,
    pub revocations: PathBuf,
    pub default_ttl: Duration,
    pub max_ttl: Duration,
    pub leeway: Duration,
}

#[derive(Debug, Clone)]
pub struct AuditConfig {
    pub file: PathBuf,
    pub fsync: FsyncMode,
    pub max_file_size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    Memory,
    /// The shared store: limits and revocations in Redis (or Valkey).
    Redis(RedisUrl),
}

/// What a Redis-backed instance does when Redis cannot answer a rate-limit decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnStoreError {
    /// Decide with this instance's in-memory limiter (limits become per instance).
    #[default]
    Local,
    /// Refuse rate-limited calls with 503 `store_unavailable`.
    Deny,
}

#[derive(Debug, Clone)]
pub struct RateLimitConfig {
    pub store: StoreKind,
    pub on_store_error: OnStoreError,
    pub default_per_minute: NonZeroU32,
    pub default_burst: NonZeroU32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    server: RawServer,
    upstream: Option<RawUpstream>,
    #[serde(default)]
    upstreams: BTreeMap<String, RawUpstream>,
    tokens: RawTokens,
    #[serde(default)]
    policies: RawPolicies,
    #[serde(default)]
    audit: RawAudit,
    #[serde(default)]
    rate_limit: RawRateLimit,
}

type S<T> = Spanned<T>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<S<String>>,
    tls_cert: Option<S<String>>,
    tls_key: Option<S<String>>,
    client_ca: Option<S<String>>,
    admin_listen: Option<S<String>>,
    max_body: Option<S<String>>,
    public_base_url: Option<S<String>>,
    header_timeout: Option<S<String>>,
    body_timeout: Option<S<String>>,
    idle_timeout: Option<S<String>>,
    max_connections: Option<S<u32>>,
    workers: Option<S<u32>>,
    max_header_bytes: Option<S<String>>,
    max_headers: Option<S<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    url: S<String>,
    ca_file: Option<S<String>>,
    pin_sha256: Option<S<String>>,
    user: S<String>,
    token_file: Option<S<String>>,
    token_env: Option<S<String>>,
    /// Present only to give a precise error: the token is never accepted inline.
    token: Option<S<toml::Value>>,
    connect_timeout: Option<S<String>>,
    timeout: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTokens {
    issuer: Option<S<String>>,
    audience: Option<S<String>>,
    algorithm: S<String>,
    key_file: S<String>,
    key_id: S<String>,
    #[serde(default)]
    verify_keys: Vec<S<String>>,
    revocations: Option<S<String>>,
    default_ttl: Option<S<String>>,
    max_ttl: Option<S<String>>,
    leeway: Option<S<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPolicies {
    dir: Option<S<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    file: Option<S<String>>,
    fsync: Option<S<String>>,
    max_file_size: Option<S<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    store: Option<S<String>>,
    on_store_error: Option<S<String>>,
    default_per_minute: Option<S<u32>>,
    default_burst: Option<S<u32>>,
}

impl Config {
    /// Reads and validates the config at `path`, including the master token(s).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            line: 0,
            message: format!("cannot read config: {e}"),
        })?;
        Self::parse(path, &text, &|name| std::env::var(name).ok())
    }

    /// Like [`Config::load`], but without reading the master token(s): for commands that never
    /// call cPanel (`token issue`, `token revoke`, `explain`), so that an operator can run them
    /// where only the service can read the token (systemd credentials, Docker secrets). The
    /// upstream tokens of the result are empty.
    pub fn load_for_tools(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            line: 0,
            message: format!("cannot read config: {e}"),
        })?;
        let v = Validator::new(path, &text, false);
        v.parse_and_build(&|name| std::env::var(name).ok())
    }

    /// Validates config `text` as if read from `path`; `env` looks up `token_env` variables.
    pub fn parse(path: &Path, text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        Validator::new(path, text, true).parse_and_build(env)
    }
}

impl<'a> Validator<'a> {
    fn new(file: &'a Path, text: &'a str, read_secrets: bool) -> Self {
        Self {
            file,
            text,
            base: file.parent().unwrap_or(Path::new(".")),
            read_secrets,
        }
    }

    fn parse_and_build(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(self.text).map_err(|e| {
            let line = e.span().map_or(0, |s| self.line_of(s.start));
            self.err_at(line, e.message().trim().to_owned())
        })?;
        self.build(raw, env)
    }
}

/// Validation context: turns spans into lines and relative paths into absolute ones.
struct Validator<'a> {
    file: &'a Path,
    text: &'a str,
    base: &'a Path,
    /// Read the master tokens (false for tools that never call cPanel).
    read_secrets: bool,
}

impl Validator<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text
            .as_bytes()
            .get(..end)
            .map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
            + 1
    }

    fn err_at(&self, line: usize, message: String) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            line,
            message,
        }
    }

    fn err<T>(&self, at: &S<T>, message: impl Into<String>) -> ConfigError {
        self.err_at(self.line_of(at.span().start), message.into())
    }

    fn path(&self, s: &S<String>) -> PathBuf {
        self.base.join(s.get_ref())
    }

    fn duration(&self, s: Option<&S<String>>, default: Duration, key: &str) -> Result<Duration, ConfigError> {
        let Some(s) = s else { return Ok(default) };
        parse_duration(s.get_ref()).map_err(|e| self.err(s, format!("{key}: {e}")))
    }

    fn size(&self, s: Option<&S<String>>, default: u64, key: &str) -> Result<u64, ConfigError> {
        let Some(s) = s else { return Ok(default) };
        parse_size(s.get_ref()).map_err(|e| self.err(s, format!("{key}: {e}")))
    }

    fn addr(&self, s: Option<&S<String>>, default: &str, key: &str) -> Result<SocketAddr, ConfigError> {
        let text = s.map_or(default, |s| s.get_ref().as_str());
        text.parse().map_err(|_| match s {
            Some(s) => self.err(s, format!("{key}: expected IP:PORT, got {text:?}")),
            None => self.err_at(0, format!("{key}: bad default")),
        })
    }

    fn build(&self, raw: RawConfig, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let server = self.server(&raw.server)?;
        let mut upstreams = BTreeMap::new();
        if let Some(up) = &raw.upstream {
            upstreams.insert("default".to_owned(), self.upstream(up, env)?);
        }
        for (name, up) in &raw.upstreams {
            if crate::principal::DeveloperId::parse(name).is_err() {
                return Err(self.err(
                    &up.url,
                    format!("upstreams.{name}: name must match [a-z0-9][a-z0-9_.-]{{0,63}}"),
                ));
            }
            if upstreams.insert(name.clone(), self.upstream(up, env)?).is_some() {
                return Err(self.err(
                    &up.url,
                    format!("upstreams.{name}: duplicates [upstream] (named \"default\")"),
                ));
            }
        }
        if upstreams.is_empty() {
            return Err(self.err_at(1, "missing [upstream] (or [upstreams.NAME]) table".into()));
        }
        let audit = self.audit(&raw.audit)?;
        let tokens = self.tokens(&raw.tokens, &audit.file)?;
        let policies_dir = raw
            .policies
            .dir
            .as_ref()
            .map_or_else(|| self.base.join("policies"), |d| self.path(d));
        let rate_limit = self.rate_limit(&raw.rate_limit)?;
        Ok(Config {
            path: self.file.to_path_buf(),
            server,
            upstreams,
            tokens,
            policies_dir,
            audit,
            rate_limit,
        })
    }

    fn server(&self, s: &RawServer) -> Result<ServerConfig, ConfigError> {
        let tls = match (&s.tls_cert, &s.tls_key) {
            (Some(c), Some(k)) => Some(TlsFiles {
                cert: self.path(c),
                key: self.path(k),
            }),
            (None, None) => None,
            (Some(c), None) => return Err(self.err(c, "tls_cert needs tls_key")),
            (None, Some(k)) => return Err(self.err(k, "tls_key needs tls_cert")),
        };
        if let (Some(ca), None) = (&s.client_ca, &tls) {
            return Err(self.err(ca, "client_ca needs tls_cert and tls_key (mTLS runs over TLS)"));
        }
        let max_body = self.size(s.max_body.as_ref(), 1 << 20, "max_body")?;
        let max_header_bytes = self.size(s.max_header_bytes.as_ref(), 16 << 10, "max_header_bytes")?;
        let positive = |v: &Option<S<u32>>, default: u32, key: &str| match v {
            Some(n) if *n.get_ref() == 0 => Err(self.err(n, format!("{key} must be at least 1"))),
            Some(n) => Ok(*n.get_ref() as usize),
            None => Ok(default as usize),
        };
        Ok(ServerConfig {
            listen: self.addr(s.listen.as_ref(), "0.0.0.0:2083", "listen")?,
            tls,
            client_ca: s.client_ca.as_ref().map(|c| self.path(c)),
            admin_listen: self.addr(s.admin_listen.as_ref(), "127.0.0.1:9483", "admin_listen")?,
            max_body: usize::try_from(max_body).unwrap_or(usize::MAX),
            public_base_url: s.public_base_url.as_ref().map(|u| u.get_ref().clone()),
            header_timeout: self.duration(s.header_timeout.as_ref(), Duration::from_secs(10), "header_timeout")?,
            body_timeout: self.duration(s.body_timeout.as_ref(), Duration::from_secs(30), "body_timeout")?,
            idle_timeout: self.duration(s.idle_timeout.as_ref(), Duration::from_secs(60), "idle_timeout")?,
            max_connections: positive(&s.max_connections, 10_000, "max_connections")?,
            workers: self.workers(s.workers.as_ref())?,
            max_header_bytes: usize::try_from(max_header_bytes).unwrap_or(usize::MAX).max(1024),
            max_headers: positive(&s.max_headers, 64, "max_headers")?,
        })
    }

    /// `server.workers`: 1..=[`MAX_WORKERS`]; by default one per CPU the process may use.
    fn workers(&self, w: Option<&S<u32>>) -> Result<usize, ConfigError> {
        let Some(w) = w else {
            return Ok(default_workers());
        };
        match usize::try_from(*w.get_ref()) {
            Ok(n @ 1..=MAX_WORKERS) => Ok(n),
            _ => Err(self.err(
                w,
                format!("workers must be between 1 and {MAX_WORKERS} (one per CPU core is usual)"),
            )),
        }
    }

    fn upstream(&self, u: &RawUpstream, env: &dyn Fn(&str) -> Option<String>) -> Result<UpstreamConfig, ConfigError> {
        if let Some(t) = &u.token {
            return Err(self.err(
                t,
                "the master token is never accepted inline: use token_file or token_env",
            ));
        }
        let url: http::Uri = u
            .url
            .get_ref()
            .parse()
            .map_err(|_| self.err(&u.url, "url: not a valid URL"))?;
        let scheme_ok = matches!(url.scheme_str(), Some("https" | "http"));
        if !scheme_ok || url.host().is_none() || url.path().len() > 1 || url.query().is_some() {
            return Err(self.err(
                &u.url,
                "url: expected https://HOST[:PORT] (http:// for local testing), no path",
            ));
        }
        let user = u.user.get_ref();
        if user.is_empty()
            || !user
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        {
            return Err(self.err(&u.user, "user: expected a cPanel user name"));
        }
        let token = match (&u.token_file, &u.token_env) {
            (Some(_), None) | (None, Some(_)) if !self.read_secrets => Secret::new(String::new()),
            (Some(f), None) => {
                let text = std::fs::read_to_string(self.path(f)).map_err(|e| {
                    self.err(
                        f,
                        format!("token_file: cannot read {}: {}", self.path(f).display(), e.kind()),
                    )
                })?;
                self.token(f, text.trim().to_owned(), "token_file")?
            }
            (None, Some(var)) => {
                let value = env(var.get_ref()).ok_or_else(|| {
                    self.err(
                        var,
                        format!("token_env: environment variable {} is not set", var.get_ref()),
                    )
                })?;
                self.token(var, value.trim().to_owned(), "token_env")?
            }
            (Some(f), Some(_)) => return Err(self.err(f, "give token_file or token_env, not both")),
            (None, None) => return Err(self.err(&u.user, "upstream needs token_file or token_env")),
        };
        let pin_sha256 = match &u.pin_sha256 {
            None => None,
            Some(p) => {
                Some(decode_pin(p.get_ref()).ok_or_else(|| self.err(p, "pin_sha256: expected base64 of 32 bytes"))?)
            }
        };
        Ok(UpstreamConfig {
            url,
            ca_file: u.ca_file.as_ref().map(|c| self.path(c)),
            pin_sha256,
            user: user.clone(),
            token,
            connect_timeout: self.duration(u.connect_timeout.as_ref(), Duration::from_secs(5), "connect_timeout")?,
            timeout: self.duration(u.timeout.as_ref(), Duration::from_secs(60), "timeout")?,
        })
    }

    /// Checks the master token's shape without ever echoing it.
    fn token<T>(&self, at: &S<T>, value: String, key: &str) -> Result<Secret, ConfigError> {
        let ok = !value.is_empty() && value.len() <= 256 && value.bytes().all(|b| b.is_ascii_graphic() && b != b':');
        let secret = Secret::new(value);
        if ok {
            Ok(secret)
        } else {
            Err(self.err(
                at,
                format!("{key}: the master token must be 1-256 visible ASCII characters without ':'"),
            ))
        }
    }

    fn tokens(&self, t: &RawTokens, audit_file: &Path) -> Result<TokensConfig, ConfigError> {
        let algorithm = match t.algorithm.get_ref().as_str() {
            "EdDSA" => Algorithm::EdDSA,
            "ES256" => Algorithm::ES256,
            "RS256" => Algorithm::RS256,
            "HS256" => Algorithm::HS256,
            other => {
                return Err(self.err(
                    &t.algorithm,
                    format!("algorithm: {other:?} is not one of EdDSA, ES256, RS256, HS256"),
                ))
            }
        };
        let key_id = t.key_id.get_ref();
        if key_id.is_empty()
            || key_id.len() > 64
            || !key_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(self.err(&t.key_id, "key_id: 1-64 characters of [A-Za-z0-9_-]"));
        }
        let default_ttl = self.duration(t.default_ttl.as_ref(), Duration::from_secs(15 * 60), "default_ttl")?;
        let max_ttl = self.duration(t.max_ttl.as_ref(), Duration::from_secs(3600), "max_ttl")?;
        if default_ttl > max_ttl || default_ttl.is_zero() {
            let at = t.default_ttl.as_ref().or(t.max_ttl.as_ref()).unwrap_or(&t.algorithm);
            return Err(self.err(at, "default_ttl must be positive and at most max_ttl"));
        }
        let revocations = t.revocations.as_ref().map_or_else(
            || audit_file.parent().unwrap_or(Path::new(".")).join("revocations.jsonl"),
            |r| self.path(r),
        );
        let text =
            |v: &Option<S<String>>, default: &str| v.as_ref().map_or(default.to_owned(), |s| s.get_ref().clone());
        Ok(TokensConfig {
            issuer: text(&t.issuer, "cpgate"),
            audience: text(&t.audience, "cpanel"),
            algorithm,
            key_file: self.path(&t.key_file),
            key_id: key_id.clone(),
            verify_keys: t.verify_keys.iter().map(|k| self.path(k)).collect(),
            revocations,
            default_ttl,
            max_ttl,
            leeway: self.duration(t.leeway.as_ref(), Duration::from_secs(30), "leeway")?,
        })
    }

    fn audit(&self, a: &RawAudit) -> Result<AuditConfig, ConfigError> {
        let fsync = match a.fsync.as_ref().map(|f| (f, f.get_ref().as_str())) {
            None | Some((_, "batch")) => FsyncMode::Batch,
            Some((_, "always")) => FsyncMode::Always,
            Some((_, "never")) => FsyncMode::Never,
            Some((f, other)) => return Err(self.err(f, format!("fsync: {other:?} is not one of always, batch, never"))),
        };
        Ok(AuditConfig {
            file: a
                .file
                .as_ref()
                .map_or_else(|| self.base.join("audit/audit.jsonl"), |f| self.path(f)),
            fsync,
            max_file_size: self.size(a.max_file_size.as_ref(), 256 << 20, "max_file_size")?,
        })
    }

    fn rate_limit(&self, r: &RawRateLimit) -> Result<RateLimitConfig, ConfigError> {
        let store = match &r.store {
            None => StoreKind::Memory,
            Some(s) if s.get_ref() == "memory" => StoreKind::Memory,
            Some(s) if s.get_ref().starts_with("redis://") || s.get_ref().starts_with("rediss://") => {
                StoreKind::Redis(RedisUrl::parse(s.get_ref()).map_err(|e| self.err(s, format!("store: {e}")))?)
            }
            Some(s) => return Err(self.err(s, "store: expected \"memory\" or a redis:// URL")),
        };
        let on_store_error = match r.on_store_error.as_ref().map(|o| (o, o.get_ref().as_str())) {
            None | Some((_, "local")) => OnStoreError::Local,
            Some((_, "deny")) => OnStoreError::Deny,
            Some((o, other)) => {
                return Err(self.err(o, format!("on_store_error: {other:?} is not one of local, deny")));
            }
        };
        let nz = |v: &Option<S<u32>>, default: u32, key: &str| match v {
            None => NonZeroU32::new(default).ok_or_else(|| self.err_at(0, format!("{key}: bad default"))),
            Some(n) => NonZeroU32::new(*n.get_ref()).ok_or_else(|| self.err(n, format!("{key} must be at least 1"))),
        };
        Ok(RateLimitConfig {
            store,
            on_store_error,
            default_per_minute: nz(&r.default_per_minute, 60, "default_per_minute")?,
            default_burst: nz(&r.default_burst, 10, "default_burst")?,
        })
    }
}

/// The most `server.workers` accepted.
pub const MAX_WORKERS: usize = 256;

/// The default `server.workers`: the CPUs this process may run on (1 if unknown), at most
/// [`MAX_WORKERS`].
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_WORKERS))
}

/// `30s`, `15m`, `1h`, `500ms` (humantime syntax).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|_| format!("{s:?} is not a duration like 30s, 15m or 1h"))
}

/// `64KiB`, `1MiB`, `1000` (bytes).
pub fn parse_size(s: &str) -> Result<u64, String> {
    s.parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|_| format!("{s:?} is not a size like 64KiB or 1MiB"))
}

fn decode_pin(s: &str) -> Option<[u8; 32]> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests;
