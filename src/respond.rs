//! Step 8 for allowed calls: relay cPanel's answer (status and body unchanged) minus hop-by-hop
//! headers, `Set-Cookie` and `Location`, and write the `response` record.
//!
//! Never: relay a response that contains the master token (502 if nothing was sent yet, the
//! connection cut otherwise), relay an upstream 401/403 (the master credential was refused).

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, CONNECTION, CONTENT_LENGTH};
use http::Response;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::app::App;
use crate::audit::Event;
use crate::body::{contains, full, Body, BoxError, Guarded};
use crate::error::ProxyError;
use crate::forward::{ForwardError, Upstream};
use crate::pipeline::{upstream_failure, Ctx};

/// Bodies up to this size (by `Content-Length`) are buffered, scanned whole and answered with
/// an exact length; larger or unsized bodies stream through the token guard.
const BUFFER_LIMIT: usize = 256 * 1024;

/// Response headers never relayed.
const DROPPED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "set-cookie",
    "set-cookie2",
    "location",
    "content-location",
    "refresh",
];

/// Relays the upstream outcome; failures become refusals with a `response` record.
pub async fn relay(
    app: &App,
    ctx: &Ctx,
    upstream: &Upstream,
    outcome: Result<Response<Incoming>, ForwardError>,
    started: Instant,
) -> Result<Response<Body>, ProxyError> {
    let response = match outcome {
        Ok(r) => r,
        Err(e) => return Ok(upstream_failure(app, ctx, forward_error(e), started).await),
    };
    let (mut parts, body) = response.into_parts();
    strip_headers(&mut parts.headers);
    let token = upstream.token().expose().as_bytes();
    if parts.headers.iter().any(|(_, v)| contains(v.as_bytes(), token)) {
        return Ok(leaked(app, ctx, started).await);
    }
    let length = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    match length {
        Some(n) if n <= BUFFER_LIMIT => {
            // The upstream timeout covers the body too: a cPanel that stalls mid-body must not
            // hold the client (and its connection slot) forever.
            let collected = tokio::time::timeout(upstream.timeout(), Limited::new(body, BUFFER_LIMIT).collect()).await;
            let bytes = match collected {
                Ok(Ok(c)) => c.to_bytes(),
                Ok(Err(e)) => {
                    let err = ProxyError::UpstreamError(format!("reading the response body failed: {e}"));
                    return Ok(upstream_failure(app, ctx, err, started).await);
                }
                Err(_) => return Ok(upstream_failure(app, ctx, ProxyError::UpstreamTimeout, started).await),
            };
            if contains(&bytes, token) {
                return Ok(leaked(app, ctx, started).await);
            }
            record_response(
                app,
                ctx,
                parts.status.as_u16(),
                cpanel_status(&bytes),
                bytes.len() as u64,
                started,
            )
            .await;
            Ok(Response::from_parts(parts, full(bytes)))
        }
        _ => {
            let status = parts.status.as_u16();
            let on_end = stream_end_recorder(app, ctx, status, started);
            let guarded = Guarded::new(StallLimit::new(body, upstream.timeout()), token, on_end);
            Ok(Response::from_parts(parts, guarded.boxed_unsync()))
        }
    }
}

/// A streamed upstream body that fails once cPanel sent nothing for `limit` while cpgate was
/// waiting for it (time spent waiting on a slow client does not count): a cPanel that stalls
/// mid-stream must not hold the client's connection open forever.
struct StallLimit<B> {
    inner: Pin<Box<B>>,
    limit: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    waiting: bool,
}

/// The upstream stopped sending in the middle of a streamed body.
#[derive(Debug, thiserror::Error)]
#[error("upstream response body stalled")]
struct BodyStalled;

impl<B> StallLimit<B> {
    fn new(inner: B, limit: Duration) -> Self {
        Self {
            inner: Box::pin(inner),
            limit,
            timer: Box::pin(tokio::time::sleep(limit)),
            waiting: false,
        }
    }
}

impl<B> HttpBody for StallLimit<B>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match this.inner.as_mut().poll_frame(cx) {
            Poll::Ready(frame) => {
                this.waiting = false;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                if !this.waiting {
                    this.waiting = true;
                    this.timer.as_mut().reset(tokio::time::Instant::now() + this.limit);
                }
                match this.timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyStalled)))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn forward_error(e: ForwardError) -> ProxyError {
    match e {
        ForwardError::Unreachable(why) => ProxyError::UpstreamError(why),
        ForwardError::Timeout => ProxyError::UpstreamTimeout,
        ForwardError::AuthRejected(_) | ForwardError::CircuitOpen => ProxyError::UpstreamAuthFailed,
    }
}

/// Removes hop-by-hop headers (and any the upstream's `Connection` nominates), cookies and
/// redirects.
fn strip_headers(headers: &mut HeaderMap) {
    let nominated: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in nominated
        .iter()
        .filter(|n| n.as_str() != "content-length" && n.as_str() != "content-type")
    {
        headers.remove(name);
    }
    for name in DROPPED {
        headers.remove(*name);
    }
}

/// The top-level `status` of a JSON body (UAPI), if any.
fn cpanel_status(body: &Bytes) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct Status {
        status: Option<i64>,
    }
    serde_json::from_slice::<Status>(body).ok()?.status
}

async fn leaked(app: &App, ctx: &Ctx, started: Instant) -> Response<Body> {
    tracing::error!(
        request_id = %ctx.request_id,
        security_event = "master_token_in_response",
        "upstream response contained the master credential; not relayed"
    );
    let err = ProxyError::UpstreamError("upstream response contained the master credential".into());
    upstream_failure(app, ctx, err, started).await
}

async fn record_response(app: &App, ctx: &Ctx, status: u16, cpanel_status: Option<i64>, bytes: u64, started: Instant) {
    let mut record = ctx.record(Event::Response);
    record.status = Some(status);
    record.cpanel_status = cpanel_status;
    record.bytes = Some(bytes);
    record.duration_us = Some(started.elapsed().as_micros() as u64);
    if let Err(e) = app.audit.append(record).await {
        tracing::error!(request_id = %ctx.request_id, error = %e, "could not write the response record");
    }
}

/// For streamed bodies: writes the `response` record when the stream ends (or is cut).
fn stream_end_recorder(app: &App, ctx: &Ctx, status: u16, started: Instant) -> impl FnOnce(u64, bool) + Unpin {
    let audit = app.audit.clone();
    let mut record = ctx.record(Event::Response);
    record.status = Some(status);
    move |bytes, complete| {
        record.bytes = Some(bytes);
        record.duration_us = Some(started.elapsed().as_micros() as u64);
        if !complete {
            record.reason = Some("response stream ended early or was cut".into());
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Err(e) = audit.append(record).await {
                    tracing::error!(error = %e, "could not write the response record");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_cookies_and_redirects_are_stripped() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "x-secret-hop"),
            ("x-secret-hop", "1"),
            ("set-cookie", "cpsession=abc"),
            ("location", "https://cpanel.internal:2083/cpsess123/"),
            ("transfer-encoding", "chunked"),
            ("content-type", "application/json"),
            ("x-keep", "1"),
        ] {
            h.append(k, v.parse().unwrap());
        }
        strip_headers(&mut h);
        let names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, vec!["content-type", "x-keep"]);
    }

    #[test]
    fn cpanel_status_is_read_from_uapi_bodies() {
        assert_eq!(
            cpanel_status(&Bytes::from_static(b"{\"status\":1,\"data\":[]}")),
            Some(1)
        );
        assert_eq!(cpanel_status(&Bytes::from_static(b"{\"cpanelresult\":{}}")), None);
        assert_eq!(cpanel_status(&Bytes::from_static(b"<html>")), None);
    }
}
