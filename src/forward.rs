//! The upstream side: a pooled client per cPanel account and serving thread, the rebuilt
//! request with the master credential inserted, timeouts, one retry for idempotent reads, and
//! the circuit breaker.
//!
//! Each serving thread has its own client (`worker::PerWorker`): a pooled connection, and the
//! task that drives it, stay on the thread that opened them, never woken from another one.
//!
//! Knows nothing of tokens or policies. Never: forward a client header that is not on the
//! allow-list, append (rather than insert) `Authorization`, retry after cPanel rejected the
//! master credential, name the upstream URL or user in an error.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::uri::PathAndQuery;
use http::{Request, Response, StatusCode, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::call::Method;
use crate::config::UpstreamConfig;
use crate::rebuild::Rebuilt;
use crate::secret::Secret;
use crate::worker::PerWorker;

/// How long calls are refused after cPanel rejected the master credential.
pub const CIRCUIT_OPEN_FOR: Duration = Duration::from_secs(30);

/// Client request headers that may be copied upstream; everything else is dropped.
pub const FORWARDED_HEADERS: &[&str] = &["accept", "accept-language", "user-agent"];

/// Why forwarding failed.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("upstream unreachable or failed: {0}")]
    Unreachable(String),
    #[error("upstream timed out")]
    Timeout,
    #[error("upstream rejected the master credential (HTTP {0})")]
    AuthRejected(u16),
    #[error("upstream circuit open after a credential rejection")]
    CircuitOpen,
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// One cPanel account behind cpgate.
pub struct Upstream {
    /// One client, and so one connection pool, per serving thread.
    clients: PerWorker<HttpsClient>,
    /// `scheme://authority` of cPanel.
    base: Uri,
    host: HeaderValue,
    user: String,
    /// `cpanel USER:TOKEN`, built once, marked sensitive.
    authorization: HeaderValue,
    /// The token itself, for scanning responses.
    token: Secret,
    timeout: Duration,
    circuit: Circuit,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Upstream([redacted])")
    }
}

impl Upstream {
    /// The account of `config`, with a client for each of `workers` serving threads.
    pub fn new(config: &UpstreamConfig, workers: usize) -> Result<Self, crate::tls::TlsError> {
        let tls = crate::tls::client_config(config.ca_file.as_deref(), config.pin_sha256)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(config.connect_timeout));
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let clients = PerWorker::new(workers, |_| {
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .pool_max_idle_per_host(256)
                .build(connector.clone())
        });
        let mut authorization = HeaderValue::from_str(&format!("cpanel {}:{}", config.user, config.token.expose()))
            .map_err(|_| crate::tls::TlsError {
                file: "upstream".into(),
                message: "the master token is not a valid header value".into(),
            })?;
        authorization.set_sensitive(true);
        let authority = config.url.authority().map(|a| a.as_str()).unwrap_or_default();
        let base = Uri::builder()
            .scheme(config.url.scheme_str().unwrap_or("https"))
            .authority(authority)
            .path_and_query("/")
            .build()
            .map_err(|_| crate::tls::TlsError {
                file: "upstream".into(),
                message: "bad upstream url".into(),
            })?;
        Ok(Self {
            clients,
            host: HeaderValue::from_str(authority).unwrap_or_else(|_| HeaderValue::from_static("localhost")),
            base,
            user: config.user.clone(),
            authorization,
            token: config.token.clone(),
            timeout: config.timeout,
            circuit: Circuit::default(),
        })
    }

    /// The cPanel user calls act as (written into API 2 `cpanel_jsonapi_user`).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// How long cPanel gets to answer (the response head, and then a buffered body).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The master token, only to scan responses for it.
    pub fn token(&self) -> &Secret {
        &self.token
    }

    /// Sends the rebuilt request. `client_headers` are filtered through [`FORWARDED_HEADERS`];
    /// `idempotent` reads are retried once on a connection failure. The response head is
    /// returned once it arrives; the body streams (bounded by the caller).
    pub async fn forward(
        &self,
        rebuilt: &Rebuilt,
        method: Method,
        client_headers: &HeaderMap,
        forwarded_for: &str,
        idempotent: bool,
    ) -> Result<Response<Incoming>, ForwardError> {
        let probe = self.circuit.admit(Instant::now())?;
        let attempts = if idempotent { 2 } else { 1 };
        let mut last = ForwardError::Unreachable("no attempt".into());
        for _ in 0..attempts {
            let request = self.request(rebuilt, method, client_headers, forwarded_for)?;
            match tokio::time::timeout(self.timeout, self.clients.get().request(request)).await {
                Err(_) => {
                    self.circuit.probe_done(probe, true);
                    return Err(ForwardError::Timeout);
                }
                Ok(Ok(response)) => {
                    let status = response.status();
                    let rejected = status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN;
                    if rejected {
                        self.circuit.open(Instant::now());
                        return Err(ForwardError::AuthRejected(status.as_u16()));
                    }
                    self.circuit.probe_done(probe, true);
                    return Ok(response);
                }
                Ok(Err(e)) => {
                    // Only failures before the request was written are safe to retry.
                    let retryable = e.is_connect();
                    last = ForwardError::Unreachable(error_chain(&e));
                    if !retryable {
                        break;
                    }
                }
            }
        }
        self.circuit.probe_done(probe, true);
        Err(last)
    }

    fn request(
        &self,
        rebuilt: &Rebuilt,
        method: Method,
        client_headers: &HeaderMap,
        forwarded_for: &str,
    ) -> Result<Request<Full<Bytes>>, ForwardError> {
        // The base's scheme and authority (cheap clones) with the rebuilt path: no formatting
        // and re-parsing of the whole URI per request.
        let invalid = |_| ForwardError::Unreachable("rebuilt URI invalid".into());
        let mut parts = self.base.clone().into_parts();
        parts.path_and_query = Some(PathAndQuery::try_from(rebuilt.path_and_query.as_str()).map_err(invalid)?);
        let uri = Uri::from_parts(parts).map_err(|_| ForwardError::Unreachable("rebuilt URI invalid".into()))?;
        let mut request = Request::new(Full::new(rebuilt.body.clone()));
        *request.method_mut() = match method {
            Method::Get => http::Method::GET,
            Method::Post => http::Method::POST,
        };
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        for name in FORWARDED_HEADERS {
            // A header the client's `Connection` nominates is hop-by-hop: never forwarded.
            if nominated_by_connection(client_headers, name) {
                continue;
            }
            if let Some(value) = client_headers.get(*name) {
                headers.insert(HeaderName::from_static(name), value.clone());
            }
        }
        headers.insert(HOST, self.host.clone());
        headers.insert(AUTHORIZATION, self.authorization.clone());
        if let Ok(v) = HeaderValue::from_str(forwarded_for) {
            headers.insert(HeaderName::from_static("x-forwarded-for"), v);
        }
        if let Some(ct) = &rebuilt.content_type {
            if let Ok(v) = HeaderValue::from_str(ct) {
                headers.insert(CONTENT_TYPE, v);
            }
        }
        if method == Method::Post {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(rebuilt.body.len()));
        }
        Ok(request)
    }
}

/// True if any `Connection` header of `headers` names `name` (lowercase); an unreadable
/// `Connection` value counts as naming everything.
fn nominated_by_connection(headers: &HeaderMap, name: &str) -> bool {
    headers
        .get_all(http::header::CONNECTION)
        .iter()
        .any(|v| match v.to_str() {
            Ok(text) => text.split(',').any(|t| t.trim().eq_ignore_ascii_case(name)),
            Err(_) => true,
        })
}

/// The error and its sources, for logs (hyper's top-level message alone says little).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Opens for [`CIRCUIT_OPEN_FOR`] when cPanel rejects the master credential; then lets exactly
/// one probe call through, closing on its success and reopening on another rejection.
#[derive(Debug, Default)]
pub struct Circuit {
    state: Mutex<CircuitState>,
}

#[derive(Debug, Default)]
struct CircuitState {
    open_until: Option<Instant>,
    probing: bool,
}

/// Whether an admitted call is the half-open probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe(bool);

impl Circuit {
    /// Admits a call, or refuses it while open (or while the probe is in flight).
    pub fn admit(&self, now: Instant) -> Result<Probe, ForwardError> {
        let Ok(mut s) = self.state.lock() else {
            return Err(ForwardError::CircuitOpen);
        };
        match s.open_until {
            None => Ok(Probe(false)),
            Some(until) if now < until || s.probing => Err(ForwardError::CircuitOpen),
            Some(_) => {
                s.probing = true;
                Ok(Probe(true))
            }
        }
    }

    /// Opens (or reopens) the circuit.
    pub fn open(&self, now: Instant) {
        if let Ok(mut s) = self.state.lock() {
            s.open_until = Some(now + CIRCUIT_OPEN_FOR);
            s.probing = false;
        }
    }

    /// Ends a probe that cPanel did not reject: the circuit closes.
    pub fn probe_done(&self, probe: Probe, accepted: bool) {
        if probe.0 && accepted {
            if let Ok(mut s) = self.state.lock() {
                s.open_until = None;
                s.probing = false;
            }
        }
    }

    pub fn is_open(&self, now: Instant) -> bool {
        self.state
            .lock()
            .map(|s| s.open_until.is_some_and(|until| now < until))
            .unwrap_or(true)
    }
}

impl Upstream {
    /// Whether calls to this account are currently refused by the circuit breaker.
    pub fn circuit_open(&self) -> bool {
        self.circuit.is_open(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn circuit_opens_for_thirty_seconds_then_lets_one_probe_through() {
        let c = Circuit::default();
        let t0 = Instant::now();
        assert_eq!(c.admit(t0).unwrap(), Probe(false));
        c.open(t0);
        assert!(matches!(
            c.admit(t0 + Duration::from_secs(29)),
            Err(ForwardError::CircuitOpen)
        ));
        let probe = c.admit(t0 + Duration::from_secs(31)).unwrap();
        assert_eq!(probe, Probe(true));
        assert!(
            matches!(c.admit(t0 + Duration::from_secs(31)), Err(ForwardError::CircuitOpen)),
            "only one probe at a time"
        );
        c.probe_done(probe, true);
        assert_eq!(c.admit(t0 + Duration::from_secs(32)).unwrap(), Probe(false));
    }

    #[test]
    fn a_rejected_probe_reopens_the_circuit() {
        let c = Circuit::default();
        let t0 = Instant::now();
        c.open(t0);
        let _probe = c.admit(t0 + Duration::from_secs(31)).unwrap();
        c.open(t0 + Duration::from_secs(31));
        assert!(c.admit(t0 + Duration::from_secs(40)).is_err());
        assert!(c.admit(t0 + Duration::from_secs(62)).is_ok());
    }
}
