//! The Redis store against a real `redis-server` that each test starts itself on a free
//! loopback port (no persistence, a temporary folder), and stops, kills or restarts for the
//! failure cases: shared rate limits across instances, shared revocations, store failures.
//!
//! Several cpgate instances run in-process on port 0 in front of one recording mock cPanel;
//! they share one folder's signing key and policies, each with its own config, audit file and
//! revocation file. `scripts/test.sh` installs `redis-server` when it is missing.

// Test fixtures may panic: a failed fixture is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../integration/support.rs"]
#[allow(dead_code)]
mod support;

mod audit_query;
mod batched_decisions;
mod bench;
mod readiness;
mod revocations;
mod shared_limits;
mod store_failure;

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;

use cpgate::app::App;
use cpgate::cli::serve::{start, Running};
use cpgate::config::Config;
use cpgate::sandbox::{self, SandboxSpec};
use support::{send_to, Answer, MockUpstream, MASTER};

/// The policies of the test instances: `alice` with generous limits, `limited` with a small
/// allowance (2 per second, burst 5) to share.
const POLICIES: &[(&str, &str)] = &[
    ("alice.toml", "[[allow]]\ncalls = [\"Email::list_pops\"]\n"),
    (
        "bench.toml",
        "[rate_limit]\nper_minute = 100000000\nburst = 1000000\n[[allow]]\ncalls = [\"Email::list_pops\"]\n",
    ),
    (
        "limited.toml",
        "[rate_limit]\nper_minute = 120\nburst = 5\n[[allow]]\ncalls = [\"Email::list_pops\"]\n",
    ),
];

/// A `redis-server` of this test: its own port and folder, stopped when dropped.
pub struct RedisServer {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free loopback port (retrying on a port taken in between).
    pub fn start() -> Self {
        let mut server = RedisServer {
            port: 0,
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        for _ in 0..20 {
            server.port = free_port();
            if server.spawn() {
                return server;
            }
        }
        panic!("could not start redis-server on a free port");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server at once (as a crash would): its data is gone (no persistence).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (empty: it had no persistence).
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.spawn() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("could not restart redis-server on port {}", self.port);
    }

    /// A plain connection for the test's own looks into Redis.
    pub fn connection(&self) -> redis::Connection {
        let client = redis::Client::open(self.url()).unwrap();
        let conn = client.get_connection_with_timeout(Duration::from_secs(2)).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        conn
    }

    /// Spawns redis-server and waits (at most 5 s) until it answers PING.
    fn spawn(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no", "--protected-mode", "yes", "--loglevel", "warning"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => panic!("cannot run redis-server ({e}): install it (scripts/test.sh does)"),
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return false; // exited: most likely the port was taken
            }
            let pong = redis::Client::open(self.url())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if pong.is_ok() {
                self.child = Some(child);
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A folder with one signing key and the policies, and a config per instance.
pub struct Cluster {
    pub upstream: MockUpstream,
    pub dir: PathBuf,
    base_config: String,
    _tmp: tempfile::TempDir,
}

impl Cluster {
    /// `store_lines` go into `[rate_limit]` (e.g. the store URL and `on_store_error`).
    pub async fn new(store_lines: &str) -> Self {
        capture_logs();
        let upstream = MockUpstream::start().await;
        let tmp = tempfile::tempdir().unwrap();
        let mut spec = SandboxSpec::new(format!("http://{}", upstream.addr), MASTER.into());
        spec.policies = POLICIES.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect();
        spec.config_extra = store_lines.to_owned();
        let files = sandbox::write(tmp.path(), &spec).unwrap();
        let base_config = std::fs::read_to_string(&files.config).unwrap();
        Cluster {
            upstream,
            dir: tmp.path().to_owned(),
            base_config,
            _tmp: tmp,
        }
    }

    /// A config for instance `name` (own audit and revocation files), written to the folder.
    pub fn config(&self, name: &str) -> PathBuf {
        let text = self.base_config.replace(
            "file = \"audit/audit.jsonl\"",
            &format!("file = \"{name}/audit.jsonl\""),
        );
        let path = self.dir.join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Starts instance `name` (a fresh process state on its files).
    pub async fn instance(&self, name: &str) -> Instance {
        let config = Config::load(&self.config(name)).unwrap();
        let app = Arc::new(App::build(config).await.unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let running = start(app.clone(), listener).await.unwrap();
        Instance {
            addr: running.addr,
            admin_addr: running.admin_addr,
            config: self.dir.join(format!("{name}.toml")),
            app,
            running: Some(running),
        }
    }
}

/// One running cpgate instance.
pub struct Instance {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub config: PathBuf,
    pub app: Arc<App>,
    running: Option<Running>,
}

impl Instance {
    /// A token for `developer`, issued at `iat`, signed with the shared key.
    pub fn token_at(&self, developer: &str, iat: u64) -> String {
        support::issue_token(&self.app, developer, None, iat)
    }

    pub fn token(&self, developer: &str) -> String {
        self.token_at(developer, now())
    }

    /// `GET /execute/Email/list_pops` with the token.
    pub async fn call(&self, token: &str) -> Answer {
        let auth = format!("Bearer {token}");
        send_to(
            self.addr,
            "GET",
            "/execute/Email/list_pops",
            &[("authorization", &auth)],
            "",
        )
        .await
    }

    /// The value of one series on the admin listener's `/metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        let answer = send_to(self.admin_addr, "GET", "/metrics", &[], "").await;
        let text = String::from_utf8_lossy(&answer.body).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
    }

    pub fn audit_lines(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.app.config.audit.file)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.unwrap();
        }
    }
}

/// `[rate_limit]` lines for a Redis store.
pub fn store_lines(redis: &RedisServer, on_store_error: &str) -> String {
    format!("store = \"{}\"\non_store_error = \"{on_store_error}\"\n", redis.url())
}

/// A token's `jti` (claims decoded without verification).
pub fn jti_of(token: &str) -> String {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["jti"].as_str().unwrap().to_owned()
}

pub use support::{capture_logs, cpgate, eventually, logs, now};

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}
