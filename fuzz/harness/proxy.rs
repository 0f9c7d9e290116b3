//! The whole proxy over a byte stream: a gateway and a recording cPanel in-process on loopback;
//! each input is written on a fresh connection (`@TOKEN@` replaced by a valid token of `alice`,
//! `@BASIC@` by `base64(alice:TOKEN)`), the write side closed, and the answer read to EOF.
//!
//! Invariants, checked by the recording cPanel as each request arrives: exactly one
//! `Authorization`, the master one; only allow-listed headers; a call alice's policy allows
//! (classified again from what arrived, and by name); and a `request` record for it already in
//! the audit file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use cpgate::call::Method;
use cpgate::classify::{classify, RawRequest};
use cpgate::policy::{Decision, DecisionRequest, LoadOptions, Policy};

pub const MASTER: &str = "FUZZMASTERTOKEN0123456789ABCDEFG";

pub const ALICE: &str = r#"
[[allow]]
calls = ["Email::list_pops", "DomainInfo::list_domains"]

[[allow]]
calls = ["Email::add_pop"]
methods = ["POST"]
[allow.params]
domain = ["example.com"]
email = ["*"]

[[allow]]
api = "api2"
calls = ["ZoneEdit::fetchzone_records"]

[[deny]]
calls = ["Email::delete_*"]
"#;

/// Calls (and batch inner calls) alice may make, by name: the independent check.
const ALLOWED: &[&str] = &[
    "Email::list_pops",
    "DomainInfo::list_domains",
    "Email::add_pop",
    "ZoneEdit::fetchzone_records",
    "Batch::strict",
];

const UPSTREAM_HEADERS: &[&str] = &[
    "host",
    "authorization",
    "x-forwarded-for",
    "content-type",
    "content-length",
    "accept",
    "accept-language",
    "user-agent",
];

struct Harness {
    runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
    token: String,
    violations: Arc<Mutex<Vec<String>>>,
    forwarded: Arc<std::sync::atomic::AtomicUsize>,
    _dir: tempfile::TempDir,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let violations = Arc::new(Mutex::new(Vec::new()));
        let forwarded = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (addr, token) = runtime.block_on(start(dir.path().to_path_buf(), violations.clone(), forwarded.clone()));
        Harness {
            runtime,
            addr,
            token,
            violations,
            forwarded,
            _dir: dir,
        }
    })
}

async fn start(
    dir: PathBuf,
    violations: Arc<Mutex<Vec<String>>>,
    forwarded: Arc<std::sync::atomic::AtomicUsize>,
) -> (SocketAddr, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_addr = listener.local_addr().unwrap();
    let mut spec = cpgate::sandbox::SandboxSpec::new(format!("http://{upstream_addr}"), MASTER.into());
    spec.policies = vec![("alice.toml".into(), ALICE.into())];
    spec.rate_limit = (1_000_000, 1_000_000);
    spec.fsync = "never";
    spec.upstream_timeout = "2s";
    spec.server_extra = "header_timeout = \"1s\"\nbody_timeout = \"1s\"\nidle_timeout = \"1s\"\n".into();
    let files = cpgate::sandbox::write(&dir, &spec).unwrap();
    let recorder = Recorder {
        audit: files.audit.clone(),
        state: Arc::new(Mutex::new(AuditCursor::default())),
        violations,
        forwarded,
    };
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let recorder = recorder.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| recorder.clone().handle(req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let config = cpgate::config::Config::load(&files.config).unwrap();
    let app = Arc::new(cpgate::app::App::build(config).await.unwrap());
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let rules = cpgate::app::token_rules(&app.config);
    let alice = cpgate::principal::DeveloperId::parse("alice").unwrap();
    // The key ring loaded from the config, as the gateway loads it.
    let t = &app.config.tokens;
    let keys = cpgate::token::KeyRing::load(t.algorithm, &t.key_file, &t.key_id, &t.verify_keys).unwrap();
    let token = cpgate::token::issue(&keys, &rules, &alice, Duration::from_secs(3600), None, now)
        .unwrap()
        .token;
    let gateway = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = gateway.local_addr().unwrap();
    // cpgate's own connection builder and pipeline; only half-close differs, so that the
    // harness can end its write side and still read every answer (hyper otherwise cancels
    // in-flight requests when the client half-closes).
    let mut builder = cpgate::server::http_builder(&app);
    builder.http1().half_close(true);
    tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = gateway.accept().await else {
                return;
            };
            let app = app.clone();
            let builder = builder.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let app = app.clone();
                    async move { Ok::<_, std::convert::Infallible>(cpgate::pipeline::handle(app, req, peer).await) }
                });
                let _ = builder.serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    (addr, token)
}

/// Request records written to the audit file and not yet matched by an arrival.
#[derive(Default)]
struct AuditCursor {
    offset: u64,
    partial: Vec<u8>,
    pending: Vec<String>,
}

#[derive(Clone)]
struct Recorder {
    audit: PathBuf,
    state: Arc<Mutex<AuditCursor>>,
    violations: Arc<Mutex<Vec<String>>>,
    forwarded: Arc<std::sync::atomic::AtomicUsize>,
}

impl Recorder {
    async fn handle(self, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
        self.forwarded.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (parts, body) = req.into_parts();
        let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let mut problems = Vec::new();
        let auth: Vec<_> = parts.headers.get_all("authorization").iter().collect();
        if auth.len() != 1 || auth[0] != format!("cpanel acctuser:{MASTER}").as_str() {
            problems.push(format!("Authorization headers: {}", auth.len()));
        }
        for name in parts.headers.keys() {
            if !UPSTREAM_HEADERS.contains(&name.as_str()) || parts.headers.get_all(name).iter().count() > 1 {
                problems.push(format!("header {name} forwarded"));
            }
        }
        let method = match parts.method {
            http::Method::GET => Method::Get,
            http::Method::POST => Method::Post,
            ref other => {
                problems.push(format!("method {other} forwarded"));
                Method::Get
            }
        };
        let content_type = parts.headers.get("content-type").and_then(|v| v.to_str().ok());
        let raw = RawRequest {
            method,
            path: parts.uri.path(),
            query: parts.uri.query(),
            content_type,
            body: &body,
        };
        match classify(&raw) {
            Err(e) => problems.push(format!("forwarded request does not classify: {e}")),
            Ok(call) => {
                let names = std::iter::once(call.name()).chain(call.batch.iter().map(|c| c.name()));
                for name in names {
                    if !ALLOWED.contains(&name.as_str()) {
                        problems.push(format!("call {name} forwarded"));
                    }
                }
                if !allowed(&call, method) {
                    problems.push(format!("call {call} is not allowed by alice's policy"));
                }
                if !self.take_request_record() {
                    problems.push(format!("call {call} reached cPanel without a prior request record"));
                }
            }
        }
        if !problems.is_empty() {
            self.violations.lock().unwrap().extend(problems);
        }
        let body = r#"{"data":[],"errors":null,"messages":null,"metadata":{},"status":1,"warnings":null}"#;
        Ok(Response::builder()
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap())
    }

    /// Reads new audit lines and consumes one pending `request` record.
    fn take_request_record(&self) -> bool {
        use std::io::{Read, Seek, SeekFrom};
        let mut state = self.state.lock().unwrap();
        let mut file = match std::fs::File::open(&self.audit) {
            Ok(f) => f,
            Err(_) => return false,
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len < state.offset {
            // Rotated: start over.
            state.offset = 0;
            state.partial.clear();
        }
        let _ = file.seek(SeekFrom::Start(state.offset));
        let mut fresh = Vec::new();
        let _ = file.read_to_end(&mut fresh);
        state.offset += fresh.len() as u64;
        let mut text = std::mem::take(&mut state.partial);
        text.extend_from_slice(&fresh);
        let complete = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        state.partial = text[complete..].to_vec();
        for line in text[..complete].split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) {
                if v["event"] == "request" {
                    state.pending.push(v["request_id"].as_str().unwrap_or("").to_owned());
                }
            }
        }
        state.pending.pop().is_some()
    }
}

fn allowed(call: &cpgate::call::CpanelCall, method: Method) -> bool {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    let policy = POLICY.get_or_init(|| {
        let opts = LoadOptions {
            max_ttl: Duration::from_secs(3600),
            accounts: vec!["default".into()],
        };
        Policy::from_toml(std::path::Path::new("alice.toml"), ALICE, &opts)
            .unwrap()
            .0
    });
    matches!(
        policy.decide(&DecisionRequest {
            call,
            method,
            client_ip: std::net::IpAddr::from([127, 0, 0, 1]),
            scope: None,
            now: time::OffsetDateTime::now_utc(),
        }),
        Decision::Allow { .. }
    )
}

/// Replaces the placeholders of an input.
pub fn expand(data: &[u8], token: &str) -> Vec<u8> {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("alice:{token}"));
    let mut out = Vec::with_capacity(data.len() + token.len());
    let mut rest = data;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix(b"@TOKEN@") {
            out.extend_from_slice(token.as_bytes());
            rest = r;
        } else if let Some(r) = rest.strip_prefix(b"@BASIC@") {
            out.extend_from_slice(basic.as_bytes());
            rest = r;
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}

/// One input through the whole proxy; panics on any invariant broken so far.
pub fn proxy(data: &[u8]) {
    let h = harness();
    let bytes = expand(data, &h.token);
    h.runtime.block_on(async {
        let Ok(mut stream) = TcpStream::connect(h.addr).await else {
            return;
        };
        let _ = stream.write_all(&bytes).await;
        let _ = stream.shutdown().await;
        let mut buf = vec![0u8; 64 * 1024];
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
    });
    let violations = std::mem::take(&mut *h.violations.lock().unwrap());
    assert!(violations.is_empty(), "invariants broken: {violations:?}");
}

/// How many requests cPanel received so far (to check a corpus really exercises forwarding).
pub fn forwarded() -> usize {
    harness().forwarded.load(std::sync::atomic::Ordering::Relaxed)
}
