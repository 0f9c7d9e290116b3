//! Token broker integration tests: `POST /oauth/token`, the JWK set, revocation and key
//! rotation against cpgate and a recording mock cPanel, in-process on port 0.
//!
//! The mock cPanel, the raw HTTP client and the log capture come from the main integration
//! suite's `support.rs`; this file adds a gateway that can be restarted on the same files.

// Test fixtures may panic: a failed fixture is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../integration/support.rs"]
#[allow(dead_code)]
mod support;

mod brute_force;
mod cli;
mod endpoint;
mod jwks;
mod revocation;
mod rotation;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket};

use cpgate::app::App;
use cpgate::cli::serve::{start, Running};
use cpgate::config::Config;
use cpgate::sandbox::{self, Sandbox, SandboxSpec};
use cpgate::token::Algorithm;
use support::{send_to, Answer, MockUpstream, MASTER};

/// alice's client secret (also the right secret of `disabled`, `expired` and `office`).
pub const ALICE_SECRET: &str = "alice-Secret_0123456789abcdefghijklmnopqrstu";
/// bob's client secret.
pub const BOB_SECRET: &str = "bob-Secret_0123456789abcdefghijklmnopqrstuvw";

/// The argon2id hashes of the two secrets, computed once per test binary.
fn hashes() -> &'static (String, String) {
    static HASHES: OnceLock<(String, String)> = OnceLock::new();
    HASHES.get_or_init(|| {
        (
            cpgate::token::hash_client_secret(ALICE_SECRET).unwrap(),
            cpgate::token::hash_client_secret(BOB_SECRET).unwrap(),
        )
    })
}

/// The broker test policies.
pub fn policies() -> Vec<(String, String)> {
    let (alice, bob) = hashes();
    let list = "[[allow]]\ncalls = [\"Email::list_pops\"]\n";
    vec![
        (
            "alice.toml".into(),
            format!(
                "# alice\nclient_secret_hash = \"{alice}\"\nmax_token_ttl = \"10m\"\n\n[[allow]]\n\
                 calls = [\"Email::list_pops\", \"DomainInfo::list_domains\"]\n\n[[deny]]\ncalls = [\"Email::delete_*\"]\n"
            ),
        ),
        ("bob.toml".into(), format!("client_secret_hash = \"{bob}\"\n{list}")),
        (
            "disabled.toml".into(),
            format!("enabled = false\nclient_secret_hash = \"{alice}\"\n{list}"),
        ),
        (
            "expired.toml".into(),
            format!("expires = 2020-01-01T00:00:00Z\nclient_secret_hash = \"{alice}\"\n{list}"),
        ),
        (
            "office.toml".into(),
            format!("source_ips = [\"203.0.113.0/24\"]\nclient_secret_hash = \"{alice}\"\n{list}"),
        ),
        ("nohash.toml".into(), list.into()),
        ("carol.toml".into(), format!("# carol, no secret yet\ndescription = \"c\"\n\n{list}")),
    ]
}

/// A gateway on its own folder, restartable on the same files.
pub struct Broker {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    pub upstream: MockUpstream,
    pub files: Sandbox,
    pub dir: PathBuf,
    running: Option<Running>,
    _tmp: tempfile::TempDir,
}

impl Broker {
    pub async fn start() -> Self {
        Self::start_with(Algorithm::EdDSA).await
    }

    pub async fn start_with(algorithm: Algorithm) -> Self {
        capture_logs();
        let upstream = MockUpstream::start().await;
        let tmp = tempfile::tempdir().unwrap();
        let mut spec = SandboxSpec::new(format!("http://{}", upstream.addr), MASTER.into());
        spec.algorithm = algorithm;
        spec.policies = policies();
        let files = sandbox::write(tmp.path(), &spec).unwrap();
        let (app, running) = launch(&files).await;
        Broker {
            addr: running.addr,
            app,
            upstream,
            files,
            dir: tmp.path().to_owned(),
            running: Some(running),
            _tmp: tmp,
        }
    }

    /// Stops the server and starts a new one on the same config, keys, policies and files.
    pub async fn restart(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.unwrap();
        }
        let (app, running) = launch(&self.files).await;
        self.addr = running.addr;
        self.app = app;
        self.running = Some(running);
    }

    /// A token for `developer` signed with the keys in force, issued at `iat`.
    pub fn token_at(&self, developer: &str, iat: u64) -> String {
        support::issue_token(&self.app, developer, None, iat)
    }

    pub fn token(&self, developer: &str) -> String {
        self.token_at(developer, now())
    }

    /// `GET /execute/Email/list_pops` with `Authorization: Bearer TOKEN`.
    pub async fn call(&self, token: &str) -> Answer {
        self.call_fn("Email/list_pops", token).await
    }

    pub async fn call_fn(&self, function: &str, token: &str) -> Answer {
        let auth = format!("Bearer {token}");
        send_to(
            self.addr,
            "GET",
            &format!("/execute/{function}"),
            &[("authorization", &auth)],
            "",
        )
        .await
    }

    /// `POST /oauth/token` with a form body and extra headers, from 127.0.0.1.
    pub async fn token_request(&self, headers: &[(&str, &str)], body: &str) -> Answer {
        self.token_request_from([127, 0, 0, 1].into(), headers, body).await
    }

    /// The same, from another loopback source address (127.0.0.0/8 all reach this host).
    pub async fn token_request_from(&self, source: IpAddr, headers: &[(&str, &str)], body: &str) -> Answer {
        let mut all = vec![("content-type", "application/x-www-form-urlencoded")];
        all.extend_from_slice(headers);
        send_from(source, self.addr, "POST", "/oauth/token", &all, body).await
    }

    /// A token from the endpoint by HTTP Basic; panics unless it was issued.
    pub async fn oauth_token(&self, client: &str, secret: &str, scope: Option<&str>) -> String {
        let basic = basic(client, secret);
        let body = match scope {
            Some(s) => format!("grant_type=client_credentials&scope={}", urlencode(s)),
            None => "grant_type=client_credentials".to_owned(),
        };
        let answer = self.token_request(&[("authorization", &basic)], &body).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        answer.json()["access_token"].as_str().unwrap().to_owned()
    }

    pub fn audit_lines(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.files.audit)
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

async fn launch(files: &Sandbox) -> (Arc<App>, Running) {
    let config = Config::load(&files.config).unwrap();
    let app = Arc::new(App::build(config).await.unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = start(app.clone(), listener).await.unwrap();
    (app, running)
}

/// One request on a fresh connection from `source` (port 0).
pub async fn send_from(
    source: IpAddr,
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source, 0)).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(target)
        .header("host", addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let response = sender
        .send_request(req.body(Full::new(Bytes::from(body.to_owned()))).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

pub fn basic(client: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{client}:{secret}")))
}

pub fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A token's decoded header and claims (no verification).
pub fn decode(token: &str) -> (serde_json::Value, serde_json::Value) {
    let mut parts = token.split('.');
    let mut part = || serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).unwrap();
    (part(), part())
}

pub use support::{capture_logs, cpgate, eventually, logs, now};
