//! Test fixtures: a recording mock cPanel, a gateway started in-process on port 0, a raw HTTP
//! client, and a global log capture for the master-token canary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

use cpgate::app::{token_rules, App};
use cpgate::cli::serve::{start, Running};
use cpgate::config::Config;
use cpgate::principal::DeveloperId;
use cpgate::sandbox::{self, Sandbox, SandboxSpec};

/// The master token every test gateway holds: recognisable, so the canary can look for it.
pub const MASTER: &str = "CANARYMASTERTOKEN0123456789ABCDE";

/// Policies of the test gateway.
pub const POLICIES: &[(&str, &str)] = &[
    (
        "alice.toml",
        r#"
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
"#,
    ),
    (
        "limited.toml",
        "[rate_limit]\nper_minute = 1\nburst = 2\n[[allow]]\ncalls = [\"Email::list_pops\"]\n",
    ),
    (
        "disabled.toml",
        "enabled = false\n[[allow]]\ncalls = [\"Email::list_pops\"]\n",
    ),
    (
        "expired.toml",
        "expires = 2020-01-01T00:00:00Z\n[[allow]]\ncalls = [\"Email::list_pops\"]\n",
    ),
    (
        "office.toml",
        "source_ips = [\"203.0.113.0/24\"]\n[[allow]]\ncalls = [\"Email::list_pops\"]\n",
    ),
];

/// One request as the mock cPanel received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub target: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The audit file's contents at the moment the request arrived.
    pub audit_at_arrival: Option<String>,
}

/// What the mock answers.
#[derive(Clone, Debug)]
pub enum Reply {
    Json(u16, String),
    /// Never answers (for timeouts).
    Hang,
    /// Answers 200 with [`UAPI_OK`] once the watch value turns true (for in-flight calls).
    #[allow(dead_code)] // used by the security suites only
    Gate(tokio::sync::watch::Receiver<bool>),
}

/// A recording mock cPanel on 127.0.0.1:0.
#[derive(Clone)]
pub struct MockUpstream {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
    pub reply: Arc<Mutex<Reply>>,
    pub audit_file: Arc<Mutex<Option<PathBuf>>>,
}

pub const UAPI_OK: &str =
    r#"{"data":[{"email":"info@example.com"}],"errors":null,"messages":null,"metadata":{},"status":1,"warnings":null}"#;

impl MockUpstream {
    pub async fn start() -> Self {
        Self::start_inner(None).await
    }

    /// A mock cPanel over TLS with a throwaway CA: returns the mock, the CA file and the
    /// base64 SHA-256 of the server key (for `pin_sha256`).
    pub async fn start_tls(dir: &std::path::Path) -> (Self, PathBuf, String) {
        use base64::Engine as _;
        use rustls::pki_types::pem::PemObject as _;
        let (ca, chain, key) = cpgate::tls::test_ca_and_server(&["localhost"]).unwrap();
        let ca_path = dir.join("upstream-ca.pem");
        std::fs::write(&ca_path, ca).unwrap();
        std::fs::write(dir.join("upstream.crt"), &chain).unwrap();
        std::fs::write(dir.join("upstream.key"), &key).unwrap();
        let config = cpgate::tls::server_config(&dir.join("upstream.crt"), &dir.join("upstream.key"), None).unwrap();
        let cert = rustls::pki_types::CertificateDer::from_pem_slice(chain.as_bytes()).unwrap();
        let pin = base64::engine::general_purpose::STANDARD.encode(cpgate::tls::spki_sha256(&cert).unwrap());
        let mock = Self::start_inner(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await;
        (mock, ca_path, pin)
    }

    async fn start_inner(tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mock = MockUpstream {
            addr: listener.local_addr().unwrap(),
            requests: Arc::default(),
            reply: Arc::new(Mutex::new(Reply::Json(200, UAPI_OK.into()))),
            audit_file: Arc::default(),
        };
        let m = mock.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let m = m.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| m.clone().handle(req));
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                    }
                });
            }
        });
        mock
    }

    async fn handle(self, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
        let (parts, body) = req.into_parts();
        let audit_at_arrival = self
            .audit_file
            .lock()
            .unwrap()
            .clone()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default());
        let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        self.requests.lock().unwrap().push(Recorded {
            method: parts.method.to_string(),
            target: parts.uri.to_string(),
            headers: parts.headers,
            body,
            audit_at_arrival,
        });
        let reply = self.reply.lock().unwrap().clone();
        match reply {
            Reply::Json(status, body) => Ok(Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .header("set-cookie", "cpsession=secret; path=/")
                .body(Full::new(Bytes::from(body)))
                .unwrap()),
            Reply::Hang => {
                std::future::pending::<()>().await;
                unreachable!()
            }
            Reply::Gate(mut open) => {
                let _ = open.wait_for(|v| *v).await;
                Ok(Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(UAPI_OK)))
                    .unwrap())
            }
        }
    }

    pub fn set_reply(&self, reply: Reply) {
        *self.reply.lock().unwrap() = reply;
    }

    pub fn received(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

/// A gateway in front of a mock cPanel, in-process, on an ephemeral loopback port.
pub struct Gateway {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub app: Arc<App>,
    pub upstream: MockUpstream,
    pub files: Sandbox,
    running: Option<Running>,
    _dir: tempfile::TempDir,
}

impl Gateway {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut SandboxSpec)) -> Self {
        capture_logs();
        let upstream = MockUpstream::start().await;
        let dir = tempfile::tempdir().unwrap();
        let mut spec = SandboxSpec::new(format!("http://{}", upstream.addr), MASTER.into());
        spec.policies = POLICIES.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect();
        tweak(&mut spec);
        let files = sandbox::write(dir.path(), &spec).unwrap();
        *upstream.audit_file.lock().unwrap() = Some(files.audit.clone());
        let config = Config::load(&files.config).unwrap();
        let app = Arc::new(App::build(config).await.unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let running = start(app.clone(), listener).await.unwrap();
        Gateway {
            addr: running.addr,
            admin_addr: running.admin_addr,
            app,
            upstream,
            files,
            running: Some(running),
            _dir: dir,
        }
    }

    /// A valid token for `developer` (which need not have a policy).
    pub fn token(&self, developer: &str) -> String {
        self.token_with(developer, None)
    }

    pub fn token_with(&self, developer: &str, scope: Option<&str>) -> String {
        issue_token(&self.app, developer, scope, now())
    }

    pub fn bearer(&self, developer: &str) -> String {
        format!("Bearer {}", self.token(developer))
    }

    /// Sends one request on a fresh connection with exactly these headers (plus Host unless
    /// given) and body.
    pub async fn send(&self, method: &str, target: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        send_to(self.addr, method, target, headers, body).await
    }

    /// `GET target` with a fresh token of `developer`.
    pub async fn get_as(&self, developer: &str, target: &str) -> Answer {
        self.send("GET", target, &[("authorization", &self.bearer(developer))], "")
            .await
    }

    pub fn audit_lines(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.files.audit)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// What SIGHUP does for the certificate: re-read it for new connections.
    pub fn reload_tls(&self) -> anyhow::Result<()> {
        self.running.as_ref().map_or(Ok(()), |r| r.reload_tls())
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.unwrap();
        }
    }
}

/// A response, fully read.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// `metadata.cpgate.code` (UAPI) or `cpanelresult.cpgate.code` (API 2).
    pub fn code(&self) -> String {
        let v = self.json();
        let code = v["metadata"]["cpgate"]["code"]
            .as_str()
            .or(v["cpanelresult"]["cpgate"]["code"].as_str());
        code.unwrap_or("").to_owned()
    }
}

pub async fn send_to(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = Request::builder().method(method).uri(target);
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req = req.header("host", addr.to_string());
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
    let response = sender.send_request(req).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// Every log line of the test binary, at the most verbose level, for the canary.
pub fn logs() -> String {
    String::from_utf8_lossy(&LOGS.get_or_init(Default::default).lock().unwrap()).into_owned()
}

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends every log line of this test binary, at the most verbose level, to [`logs`].
pub fn capture_logs() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let buf = LOGS.get_or_init(Default::default).clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || Capture(buf.clone()))
            .with_ansi(false)
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}

// ---------------------------------------------------------------------------------------------
// Raw-socket HTTP/1 client and upstream assertions, for the security suites (added for issue 5).

/// How long any single raw exchange may take before the test fails.
#[allow(dead_code)] // used by the security suites only
pub const RAW_DEADLINE: Duration = Duration::from_secs(10);

/// One HTTP/1 response read off a raw socket.
#[derive(Debug)]
#[allow(dead_code)] // used by the security suites only
pub struct RawResponse {
    pub status: u16,
    /// The status line and header lines, as sent.
    pub head: String,
    pub body: Vec<u8>,
}

#[allow(dead_code)] // used by the security suites only
impl RawResponse {
    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }

    /// `metadata.cpgate.code` of a cpgate refusal ("" when the body is not one, e.g. hyper's
    /// own empty 400).
    pub fn code(&self) -> String {
        let v: serde_json::Value = serde_json::from_slice(&self.body).unwrap_or_default();
        v["metadata"]["cpgate"]["code"]
            .as_str()
            .or(v["cpanelresult"]["cpgate"]["code"].as_str())
            .unwrap_or("")
            .to_owned()
    }
}

/// A raw TCP connection that writes bytes verbatim and parses HTTP/1 responses.
#[allow(dead_code)] // used by the security suites only
pub struct RawConn {
    pub stream: TcpStream,
    buf: Vec<u8>,
    eof: bool,
}

#[allow(dead_code)] // used by the security suites only
impl RawConn {
    pub async fn open(addr: SocketAddr) -> Self {
        RawConn {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
            eof: false,
        }
    }

    pub async fn write(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt as _;
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads more bytes; false at EOF (or a reset, which is an EOF for our purposes).
    async fn fill(&mut self) -> bool {
        use tokio::io::AsyncReadExt as _;
        if self.eof {
            return false;
        }
        let mut chunk = [0u8; 16 * 1024];
        match tokio::time::timeout(RAW_DEADLINE, self.stream.read(&mut chunk)).await {
            Err(_) => panic!("no response within {RAW_DEADLINE:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => {
                self.eof = true;
                false
            }
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// The next response's head only (for HEAD requests), or `None` at EOF.
    pub async fn response_head(&mut self) -> Option<RawResponse> {
        let end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if !self.fill().await {
                return None;
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end);
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        Some(RawResponse {
            status,
            head,
            body: Vec::new(),
        })
    }

    /// The next response, or `None` if the server closed the connection without one.
    pub async fn response(&mut self) -> Option<RawResponse> {
        let end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if !self.fill().await {
                assert!(
                    self.buf.is_empty(),
                    "truncated response head: {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
                return None;
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end);
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line: {head:?}"));
        let mut response = RawResponse {
            status,
            head,
            body: Vec::new(),
        };
        let chunked = response
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        if let Some(len) = response.header("content-length") {
            let len: usize = len.parse().unwrap();
            while self.buf.len() < len {
                assert!(self.fill().await, "truncated body");
            }
            response.body = self.buf.drain(..len).collect();
        } else if chunked {
            loop {
                let line_end = loop {
                    if let Some(i) = find(&self.buf, b"\r\n") {
                        break i;
                    }
                    assert!(self.fill().await, "truncated chunk");
                };
                let size_text = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
                let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
                while self.buf.len() < line_end + 2 + size + 2 {
                    assert!(self.fill().await, "truncated chunk");
                }
                response
                    .body
                    .extend_from_slice(&self.buf[line_end + 2..line_end + 2 + size]);
                self.buf.drain(..line_end + 2 + size + 2);
                if size == 0 {
                    break;
                }
            }
        } else if !(100..200).contains(&status) && status != 204 && status != 304 {
            while self.fill().await {}
            response.body = std::mem::take(&mut self.buf);
        }
        Some(response)
    }

    /// True once the server closed the connection (waits at most [`RAW_DEADLINE`]); false if
    /// it sent more bytes instead.
    pub async fn closed(&mut self) -> bool {
        self.buf.is_empty() && !self.fill().await
    }
}

#[allow(dead_code)] // used by the security suites only
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Sends `bytes` verbatim on a fresh connection and reads one response (`None`: the server
/// closed the connection without answering).
#[allow(dead_code)] // used by the security suites only
pub async fn raw(addr: SocketAddr, bytes: &[u8]) -> Option<RawResponse> {
    let mut conn = RawConn::open(addr).await;
    conn.write(bytes).await;
    conn.response().await
}

/// The request headers cpgate may send upstream (allow-list plus what it sets itself).
#[allow(dead_code)] // used by the security suites only
pub const UPSTREAM_HEADERS: &[&str] = &[
    "host",
    "authorization",
    "x-forwarded-for",
    "content-type",
    "content-length",
    "accept",
    "accept-language",
    "user-agent",
];

/// Asserts a request cPanel received carries exactly one `Authorization`, the master one, and
/// only allow-listed headers.
#[allow(dead_code)] // used by the security suites only
pub fn assert_clean_upstream_request(r: &Recorded) {
    let auth: Vec<_> = r.headers.get_all("authorization").iter().collect();
    assert_eq!(
        auth.len(),
        1,
        "exactly one Authorization: {:?}",
        r.headers.keys().collect::<Vec<_>>()
    );
    assert_eq!(auth[0], &format!("cpanel acctuser:{MASTER}"), "the master credential");
    for name in r.headers.keys() {
        assert!(
            UPSTREAM_HEADERS.contains(&name.as_str()),
            "header {name} forwarded upstream"
        );
    }
    for name in UPSTREAM_HEADERS {
        assert!(r.headers.get_all(*name).iter().count() <= 1, "{name} sent twice");
    }
}

/// Asserts cPanel received nothing at all.
#[allow(dead_code)] // used by the security suites only
pub fn assert_nothing_forwarded(gw: &Gateway) {
    let got = gw.upstream.received();
    assert!(got.is_empty(), "cPanel must receive nothing, got {got:?}");
}

// Shared by the broker and redis test binaries.

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Polls `probe` until it returns true or `within` has passed; returns the time it took.
#[allow(dead_code)]
pub async fn eventually<F, Fut>(within: Duration, mut probe: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    while started.elapsed() < within {
        if probe().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// The end of a graceful-shutdown test: `stopping` must still be waiting for the calls held
/// at cPanel (behind `open`); once they are released every one is answered 200 and the stop
/// completes within 10 s.
#[allow(dead_code)]
pub async fn release_held_calls_and_finish_the_drain(
    open: tokio::sync::watch::Sender<bool>,
    in_flight: Vec<tokio::task::JoinHandle<Answer>>,
    stopping: tokio::task::JoinHandle<()>,
) {
    assert!(
        !stopping.is_finished(),
        "the drain waits for the {} in-flight calls",
        in_flight.len()
    );
    open.send(true).unwrap();
    for call in in_flight {
        let a = call.await.unwrap();
        assert_eq!(a.status, 200, "in-flight call failed during shutdown: {:?}", a.body);
    }
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("the drain ends once the calls are answered")
        .unwrap();
}

/// Runs the real `cpgate` binary; returns (success, stdout, stderr).
#[allow(dead_code)]
pub fn cpgate(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cpgate"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A 10-minute token for `developer` (which need not have a policy), signed with `app`'s keys
/// in force, issued at `iat`.
pub fn issue_token(app: &App, developer: &str, scope: Option<&str>, iat: u64) -> String {
    let rules = token_rules(&app.config);
    let dev = DeveloperId::parse(developer).unwrap();
    cpgate::token::issue(&app.keys(), &rules, &dev, Duration::from_secs(600), scope, iat)
        .unwrap()
        .token
}
