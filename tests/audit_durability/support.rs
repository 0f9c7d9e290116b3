//! Fixtures: a recording mock cPanel in the test process, a real `cpgate serve` child process
//! (config written by `cpgate::sandbox::write`, on a fixed loopback port so it can be restarted
//! at the same address), a keep-alive HTTP client, and `cpgate audit verify`.
//!
//! Calls are identified by a unique `marker` parameter: cpgate does not forward `X-Request-Id`,
//! but it forwards the parameters it authorized and writes them (redacted) into the `request`
//! record's `params`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use cpgate::app::token_rules;
use cpgate::config::Config;
use cpgate::principal::DeveloperId;
use cpgate::sandbox::{self, Sandbox, SandboxSpec};
use cpgate::token::KeyRing;

pub const MASTER: &str = "DURABILITYMASTERTOKEN0123456789";

/// The one developer of these tests.
pub const POLICY: &str = r#"
[[allow]]
calls = ["Email::list_pops", "Email::add_pop", "Batch::strict"]
"#;

pub const UAPI_OK: &str = r#"{"data":[],"errors":null,"messages":null,"metadata":{},"status":1,"warnings":null}"#;

/// A mock cPanel that records the `marker` parameter of every call at arrival.
#[derive(Clone)]
pub struct Upstream {
    pub addr: SocketAddr,
    markers: Arc<Mutex<Vec<String>>>,
    bodies: Arc<Mutex<Vec<Bytes>>>,
    count: watch::Sender<usize>,
}

impl Upstream {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (count, _) = watch::channel(0);
        let up = Upstream {
            addr: listener.local_addr().unwrap(),
            markers: Arc::default(),
            bodies: Arc::default(),
            count,
        };
        let me = up.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let me = me.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| me.clone().handle(req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        up
    }

    async fn handle(self, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
        let (parts, body) = req.into_parts();
        let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let query = parts.uri.query().unwrap_or("").as_bytes();
        let marker = form_urlencoded::parse(query)
            .chain(form_urlencoded::parse(&body))
            .find(|(k, _)| k == "marker")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        self.markers.lock().unwrap().push(marker);
        self.bodies.lock().unwrap().push(body);
        self.count.send_modify(|n| *n += 1);
        Ok(Response::builder()
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(UAPI_OK.as_bytes())))
            .unwrap())
    }

    /// Markers of every call received so far, in arrival order.
    pub fn markers(&self) -> Vec<String> {
        self.markers.lock().unwrap().clone()
    }

    /// Bodies of every call received so far.
    pub fn bodies(&self) -> Vec<Bytes> {
        self.bodies.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        *self.count.borrow()
    }

    /// Waits until at least `n` calls arrived; false when `deadline` passed first.
    pub async fn wait_for(&self, n: usize, deadline: Instant) -> bool {
        let mut rx = self.count.subscribe();
        let wait = rx.wait_for(|&c| c >= n);
        tokio::time::timeout_at(deadline.into(), wait)
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

/// A sandbox folder with a config for a fixed loopback port, and a token for `alice`.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub files: Sandbox,
    pub addr: SocketAddr,
    pub bearer: String,
}

impl Setup {
    pub fn new(upstream: &Upstream, fsync: &'static str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let addr = free_port();
        let mut spec = SandboxSpec::new(format!("http://{}", upstream.addr), MASTER.into());
        spec.policies = vec![("alice.toml".into(), POLICY.into())];
        spec.listen = addr.to_string();
        spec.fsync = fsync;
        spec.rate_limit = (1_000_000, 1_000_000);
        let files = sandbox::write(dir.path(), &spec).unwrap();
        let bearer = format!("Bearer {}", mint(&files.config, "alice"));
        Setup {
            dir,
            files,
            addr,
            bearer,
        }
    }

    /// Rewrites `audit.fsync` in the config (for the next start).
    pub fn set_fsync(&self, mode: &str) {
        let text = std::fs::read_to_string(&self.files.config).unwrap();
        let text: Vec<String> = text
            .lines()
            .map(|l| {
                if l.starts_with("fsync = ") {
                    format!("fsync = \"{mode}\"")
                } else {
                    l.to_owned()
                }
            })
            .collect();
        std::fs::write(&self.files.config, text.join("\n") + "\n").unwrap();
    }

    /// Starts `cpgate serve` and waits (polling, with a deadline) until it accepts connections.
    pub async fn spawn(&self) -> Proxy {
        self.spawn_bin(Path::new(env!("CARGO_BIN_EXE_cpgate"))).await
    }

    /// [`Setup::spawn`] with another build of cpgate (the audit bench's A/B runs).
    pub async fn spawn_bin(&self, bin: &Path) -> Proxy {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("cpgate.log"))
            .unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg("--config")
            .arg(&self.files.config)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut proxy = Proxy { child };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect(self.addr).await.is_ok() {
                return proxy;
            }
            if let Some(status) = proxy.child.try_wait().unwrap() {
                panic!("cpgate exited at start ({status}):\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "cpgate not ready in time:\n{}", self.log());
            // Polling interval of the readiness probe (not a synchronisation sleep).
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// cpgate's stderr so far (all runs).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("cpgate.log")).unwrap_or_default()
    }

    /// Parsed records of one audit file.
    pub fn records(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line ({e}): {l}")))
            .collect()
    }

    /// `params.marker` of every `request` record of `path`.
    pub fn request_markers(path: &Path) -> HashSet<String> {
        Self::records(path)
            .iter()
            .filter(|r| r["event"] == "request")
            .filter_map(|r| r["params"]["marker"].as_str().map(str::to_owned))
            .collect()
    }
}

/// A running `cpgate serve`.
pub struct Proxy {
    pub child: Child,
}

impl Proxy {
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id().unwrap()).unwrap()
    }

    /// SIGKILL, then reap.
    pub async fn kill9(mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }

    /// Sends `signal` (SIGHUP, SIGTERM, ...).
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), signal).unwrap();
    }

    /// SIGTERM (graceful: drain, final sync) and wait for a clean exit.
    pub async fn stop(mut self) {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success(), "cpgate exited with {status}");
    }
}

/// `cpgate audit verify FILES...`: (exit success, stdout).
pub fn verify(files: &[PathBuf]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cpgate"))
        .args(["audit", "verify"])
        .args(files)
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// An access token for `developer`, signed with the sandbox's key.
pub fn mint(config: &Path, developer: &str) -> String {
    let config = Config::load(config).unwrap();
    let t = &config.tokens;
    let keys = KeyRing::load(t.algorithm, &t.key_file, &t.key_id, &t.verify_keys).unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let dev = DeveloperId::parse(developer).unwrap();
    cpgate::token::issue(&keys, &token_rules(&config), &dev, Duration::from_secs(600), None, now)
        .unwrap()
        .token
}

/// A loopback port that was free a moment ago.
fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// One keep-alive HTTP/1.1 connection.
pub struct Client {
    addr: SocketAddr,
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

/// A response, fully read.
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Answer {
    /// `metadata.cpgate.code` of a refusal.
    pub fn code(&self) -> String {
        let v: serde_json::Value = serde_json::from_slice(&self.body).unwrap_or_default();
        v["metadata"]["cpgate"]["code"].as_str().unwrap_or("").to_owned()
    }
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> std::io::Result<Client> {
        let stream = TcpStream::connect(addr).await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(conn);
        Ok(Client { addr, sender })
    }

    /// One request; `Err` when the connection broke.
    pub async fn send(&mut self, method: &str, target: &str, bearer: &str, form: &str) -> Result<Answer, String> {
        self.sender.ready().await.map_err(|e| e.to_string())?;
        let mut req = Request::builder()
            .method(method)
            .uri(target)
            .header("host", self.addr.to_string())
            .header("authorization", bearer);
        if !form.is_empty() {
            req = req.header("content-type", "application/x-www-form-urlencoded");
        }
        let req = req.body(Full::new(Bytes::from(form.to_owned()))).unwrap();
        let response = self.sender.send_request(req).await.map_err(|e| e.to_string())?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok(Answer {
            status: parts.status,
            body,
        })
    }
}
