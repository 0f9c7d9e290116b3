//! The emulator's HTTP side: plain HTTP/1.1, one task per connection, graceful stop.
//!
//! Per request, in order: the master credential (`Authorization: cpanel USER:TOKEN`, compared in
//! constant time; anything else is 401 `Access denied`), the token whitelist (only `/execute/...`
//! and `/json-api/cpanel`; anything else is 403 with cPanel's text), the method (GET/POST, else
//! 405), the body (at most [`MAX_BODY`], else 413), then `classify` — exactly the proxy's
//! classifier — and the [`Emulator`].
//!
//! Classification failures: `NotAnApiCall` (API 1, API 3 through `/json-api/cpanel`, another
//! document) is cPanel's 403; `BadRequest` is HTTP 200 with a `status: 0` UAPI body (API 2 body on
//! `/json-api/cpanel`), as cPanel answers requests it cannot run. The credential is never logged.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, ALLOW, AUTHORIZATION, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::call::Method;
use crate::classify::{classify, ClassifyError, RawRequest};
use crate::secret::Secret;

use super::reply::{api2_error, uapi_error};
use super::Emulator;

/// The largest request body the emulator reads (cpsrvd's own limit is in this range).
pub const MAX_BODY: usize = 64 * 1024 * 1024;

/// cpsrvd's answer (403) when a token reaches anything but UAPI or API 2.
pub const TOKEN_ONLY_TEXT: &str = "Token authentication allows access to UAPI or API 2 calls only.";

/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves a fresh [`Emulator`] for `user` on `listener` until `shutdown` resolves, then stops
/// accepting and waits for in-flight requests. Requests must carry
/// `Authorization: cpanel USER:TOKEN`. An empty `token` is refused (`InvalidInput`).
pub async fn serve(
    listener: TcpListener,
    user: String,
    token: Secret,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_emulator(listener, Arc::new(Emulator::new(user)), token, shutdown).await
}

/// Like [`serve`], with an emulator the caller keeps a handle on (tests inspect or pre-load its
/// state with [`Emulator::handle`]).
pub async fn serve_emulator(
    listener: TcpListener,
    emulator: Arc<Emulator>,
    token: Secret,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    if token.is_empty() || emulator.user().is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the emulator needs a non-empty user and token",
        ));
    }
    let credential = Secret::new(format!("{}:{}", emulator.user(), token.expose()));
    let app = Arc::new(App { emulator, credential });
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                // Out of descriptors and the like: back off instead of spinning.
                tracing::warn!(%error, "emulator: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let app = Arc::clone(&app);
        let service = service_fn(move |req| {
            let app = Arc::clone(&app);
            async move { Ok::<_, Infallible>(app.respond(req).await) }
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "emulator: connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Binds `addr`, prints `cpanel emulator listening on http://ADDR` on stdout, and serves until
/// Ctrl-C (or SIGTERM on Unix).
pub async fn run(addr: SocketAddr, user: String, token: Secret) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    println!("cpanel emulator listening on http://{}", listener.local_addr()?);
    serve(listener, user, token, stop_signal()).await
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM (what `docker stop` sends).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

struct App {
    emulator: Arc<Emulator>,
    /// `USER:TOKEN`, the exact credential after `cpanel `.
    credential: Secret,
}

impl App {
    async fn respond(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        if !self.authenticated(req.headers()) {
            return text(StatusCode::UNAUTHORIZED, "Access denied\n");
        }
        let path = req.uri().path();
        let api2_door = path == "/json-api/cpanel";
        if !(api2_door || path.starts_with("/execute/")) {
            return text(StatusCode::FORBIDDEN, TOKEN_ONLY_TEXT);
        }
        let method = match *req.method() {
            http::Method::GET => Method::Get,
            http::Method::POST => Method::Post,
            _ => {
                let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed\n");
                response
                    .headers_mut()
                    .insert(ALLOW, HeaderValue::from_static("GET, POST"));
                return response;
            }
        };
        let content_type = match single_header(req.headers(), CONTENT_TYPE) {
            Ok(value) => value,
            Err(()) => return text(StatusCode::BAD_REQUEST, "Invalid Content-Type\n"),
        };
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, MAX_BODY).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
                return text(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large\n")
            }
            Err(_) => return text(StatusCode::BAD_REQUEST, "Could not read the request body\n"),
        };
        let raw = RawRequest {
            method,
            path: parts.uri.path(),
            query: parts.uri.query(),
            content_type: content_type.as_deref(),
            body: &body,
        };
        match classify(&raw) {
            Ok(call) => {
                tracing::debug!(call = %call, "emulator: call");
                let (status, body) = self.emulator.handle(&call);
                json(status, &body)
            }
            Err(ClassifyError::NotAnApiCall(reason)) => {
                tracing::debug!(%reason, "emulator: not an API call");
                text(StatusCode::FORBIDDEN, TOKEN_ONLY_TEXT)
            }
            Err(ClassifyError::BadRequest(reason)) => {
                let body = if api2_door {
                    api2_error("", "", reason)
                } else {
                    uapi_error(reason)
                };
                json(StatusCode::OK, &body)
            }
        }
    }

    /// Exactly one `Authorization: cpanel USER:TOKEN` with the configured pair. The scheme is
    /// case-insensitive (RFC 9110 §11.1); the credential is compared in constant time.
    fn authenticated(&self, headers: &HeaderMap) -> bool {
        let mut values = headers.get_all(AUTHORIZATION).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return false;
        };
        let bytes = value.as_bytes();
        let Some(space) = bytes.iter().position(|b| *b == b' ') else {
            return false;
        };
        let (scheme, credential) = (&bytes[..space], &bytes[space + 1..]);
        scheme.eq_ignore_ascii_case(b"cpanel") && constant_time_eq(credential, self.credential.expose().as_bytes())
    }
}

/// The header's value when sent at most once and valid UTF-8; `Err` when repeated or not text.
fn single_header(headers: &HeaderMap, name: http::header::HeaderName) -> Result<Option<String>, ()> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(value), None) => value.to_str().map(|v| Some(v.to_owned())).map_err(|_| ()),
        (Some(_), Some(_)) => Err(()),
    }
}

/// Compares without an early exit, so timing does not reveal how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    std::hint::black_box(diff) == 0
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

fn json(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod http_tests;
