//! The system under test and the way to drive a client: an emulated cPanel (`cpgate::emulate`)
//! behind cpgate serving TLS with a throwaway CA, both in-process on ephemeral 127.0.0.1 ports,
//! and a runner for the Python clients installed in the throwaway virtual environment.
//!
//! Every test starts its own stack, so tests run in parallel without sharing ports or state.
//! The Python interpreter is `$CPGATE_CLIENT_VENV/bin/python` (default `target/client-venv`,
//! made by `scripts/test.sh`); when it is missing the tests fail and say how to make it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::net::TcpListener;

use cpgate::app::{token_rules, App};
use cpgate::cli::serve::{start, Running};
use cpgate::config::Config;
use cpgate::emulate::{Emulator, SeenAuth, SeenRequest, Spawned};
use cpgate::principal::DeveloperId;
use cpgate::sandbox::{self, SandboxSpec};
use cpgate::secret::Secret;

/// The cPanel account behind cpgate and its master token (32 characters `[0-9A-Z]`, like
/// cPanel's).
pub const ACCOUNT: &str = "acctuser";
pub const MASTER: &str = "CLIENTSMASTERTOKEN0123456789ABCD";

/// The developer the clients act as: their "user name".
pub const DEV: &str = "contractor";

/// The developer's policy: a few reads, mailbox creation on example.com, uploads below
/// public_html, API 2 zone reads, and what certbot-dns-cpanel needs for example.com (its
/// `_acme-challenge` TXT records and certificate installation, by GET). Everything else is denied by default; deletions explicitly.
pub const POLICY: &str = r#"
description = "Contractor driving the real cPanel clients (tests/clients)"

[[allow]]
calls = ["Email::list_pops", "Email::list_forwarders", "DomainInfo::list_domains",
         "Mysql::list_databases", "SSL::list_certs", "SSL::fetch_best_for_domain",
         "DynamicDNS::list", "DynamicDNS::create"]

[[allow]]
calls = ["Email::add_pop"]
methods = ["POST"]
[allow.params]
domain = ["example.com"]

[[allow]]
calls = ["Fileman::upload_files"]
methods = ["POST"]
[allow.params]
dir = ["public_html", "public_html/*"]

[[allow]]
api = "api2"
calls = ["ZoneEdit::fetchzones", "ZoneEdit::fetchzone_records"]

[[allow]]
api = "api2"
calls = ["ZoneEdit::add_zone_record"]
methods = ["GET"]
[allow.params]
domain = ["example.com"]
name = ["_acme-challenge", "_acme-challenge.*"]
type = ["TXT"]

[[allow]]
api = "api2"
calls = ["ZoneEdit::remove_zone_record"]
methods = ["GET"]
[allow.params]
domain = ["example.com"]

[[allow]]
api = "api2"
calls = ["SSL::installssl"]
methods = ["GET"]
[allow.params]
domain = ["example.com"]

[[deny]]
calls = ["Email::delete_*"]
"#;

/// How long one client run may take before the test fails.
const CLIENT_DEADLINE: Duration = Duration::from_secs(60);

/// cPanel (emulated) behind cpgate (TLS), on loopback.
pub struct Stack {
    /// cpgate's public listener.
    pub addr: SocketAddr,
    /// The emulated cPanel's state and its record of received requests.
    pub emulator: Arc<Emulator>,
    pub app: Arc<App>,
    /// The test CA that signed cpgate's certificate (for `localhost` and `127.0.0.1`).
    pub ca: PathBuf,
    pub audit: PathBuf,
    /// A scratch folder for the test (files to upload, a client's HOME).
    pub scratch: PathBuf,
    emulator_server: Option<Spawned>,
    gateway: Option<Running>,
    _dir: tempfile::TempDir,
}

impl Stack {
    pub async fn start() -> Self {
        let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let emulator_server = cpgate::emulate::spawn(loopback, ACCOUNT.into(), Secret::new(MASTER.into()))
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut spec = SandboxSpec::new(emulator_server.url(), MASTER.into());
        spec.upstream_user = ACCOUNT.into();
        spec.tls = true;
        spec.policies = vec![(format!("{DEV}.toml"), POLICY.into())];
        let files = sandbox::write(dir.path(), &spec).unwrap();
        let config = Config::load(&files.config).unwrap();
        let app = Arc::new(App::build(config).await.unwrap());
        let listener = TcpListener::bind(loopback).await.unwrap();
        let gateway = start(app.clone(), listener).await.unwrap();
        let scratch = dir.path().join("scratch");
        std::fs::create_dir_all(&scratch).unwrap();
        Stack {
            addr: gateway.addr,
            emulator: emulator_server.emulator.clone(),
            app,
            ca: files.ca.unwrap(),
            audit: files.audit,
            scratch,
            emulator_server: Some(emulator_server),
            gateway: Some(gateway),
            _dir: dir,
        }
    }

    /// A valid access token for `developer`, optionally narrowed by `scope`.
    pub fn token_with(&self, developer: &str, scope: Option<&str>) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let rules = token_rules(&self.app.config);
        let dev = DeveloperId::parse(developer).unwrap();
        cpgate::token::issue(&self.app.keys(), &rules, &dev, Duration::from_secs(600), scope, now)
            .unwrap()
            .token
    }

    /// A valid access token for [`DEV`].
    pub fn token(&self) -> String {
        self.token_with(DEV, None)
    }

    /// What the clients are told: host, port, user name, token and CA, as environment variables
    /// the Python drivers read (`CPGATE_HOST`, `CPGATE_PORT`, `CPGATE_USER`, `CPGATE_TOKEN`,
    /// `CPGATE_CA`).
    pub fn client_env(&self, token: &str) -> Vec<(String, String)> {
        vec![
            ("CPGATE_HOST".into(), "127.0.0.1".into()),
            ("CPGATE_PORT".into(), self.addr.port().to_string()),
            ("CPGATE_USER".into(), DEV.into()),
            ("CPGATE_TOKEN".into(), token.into()),
            ("CPGATE_CA".into(), self.ca.display().to_string()),
        ]
    }

    /// The requests that reached the emulated cPanel, after checking that every one of them
    /// carried exactly the master credential (and nothing a client sent).
    pub fn upstream_requests(&self) -> Vec<SeenRequest> {
        let seen = self.emulator.seen();
        for request in &seen {
            assert_eq!(
                request.authorization,
                [SeenAuth::Master],
                "cPanel received something other than the master credential: {request:?}"
            );
        }
        seen
    }

    /// The paths that reached the emulated cPanel, in order (all with the master credential).
    pub fn upstream_paths(&self) -> Vec<String> {
        self.upstream_requests().into_iter().map(|r| r.path).collect()
    }

    /// The audit log, one JSON value per record.
    pub fn audit_records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.audit)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub async fn stop(mut self) {
        if let Some(gateway) = self.gateway.take() {
            gateway.stop().await.unwrap();
        }
        if let Some(emulator) = self.emulator_server.take() {
            emulator.stop().await.unwrap();
        }
    }
}

/// One finished client run.
#[derive(Debug)]
pub struct Run {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The last stdout line as JSON (the drivers print exactly one JSON line).
    pub fn json(&self) -> Value {
        let line = self.stdout.lines().last().unwrap_or_default();
        serde_json::from_str(line).unwrap_or_else(|e| panic!("driver output is not JSON ({e}): {self:#?}"))
    }

    /// The driver's `result`, failing the test (with the run) when it raised instead.
    pub fn result(&self) -> Value {
        let v = self.json();
        assert!(v.get("exception").is_none(), "the client raised: {self:#?}");
        v["result"].clone()
    }

    /// `(exception class, message)` of a driver run that raised.
    pub fn exception(&self) -> (String, String) {
        let v = self.json();
        let class = v["exception"]
            .as_str()
            .unwrap_or_else(|| panic!("the client did not raise: {self:#?}"));
        (class.to_owned(), v["message"].as_str().unwrap_or_default().to_owned())
    }
}

/// The virtual environment holding the pinned clients.
pub fn venv() -> PathBuf {
    let venv = std::env::var_os("CPGATE_CLIENT_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/client-venv"));
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: the client compatibility tests need the pinned Python clients; \
         run scripts/test.sh (it creates the virtual environment) or set CPGATE_CLIENT_VENV",
        python.display()
    );
    venv
}

/// Runs `tests/clients/py/SCRIPT` with the venv's Python.
pub async fn driver(script: &str, args: &[&str], env: &[(String, String)]) -> Run {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients/py")
        .join(script);
    let python = venv().join("bin/python");
    let mut all = vec![script.display().to_string()];
    all.extend(args.iter().map(|a| a.to_string()));
    run(&python, &all, env).await
}

/// Runs the venv's console script `name` (e.g. `cpanel`, cpanel-cli's command).
pub async fn console(name: &str, args: &[&str], env: &[(String, String)]) -> Run {
    let program = venv().join("bin").join(name);
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    run(&program, &args, env).await
}

/// Environment variables that would redirect or re-route a client behind the test's back.
const SCRUBBED: &[&str] = &[
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "CPANEL_HOSTNAME",
    "CPANEL_USERNAME",
    "CPANEL_UTOKEN",
    "XDG_CONFIG_HOME",
    "DEBUG",
];

async fn run(program: &Path, args: &[String], env: &[(String, String)]) -> Run {
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("NO_PROXY", "127.0.0.1,localhost");
    for name in SCRUBBED {
        command.env_remove(name);
    }
    command.envs(env.iter().map(|(k, v)| (k, v)));
    let child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let output = tokio::time::timeout(CLIENT_DEADLINE, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{} did not finish within {CLIENT_DEADLINE:?}", program.display()))
        .unwrap();
    Run {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
