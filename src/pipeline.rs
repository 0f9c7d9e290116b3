//! The request path, as plain async steps in one direction (see the crate docs):
//! admit -> authenticate -> read body -> classify -> authorize -> rate_limit -> audit -> forward
//! -> respond. The token broker's own routes (`POST /oauth/token`, `GET /.well-known/jwks.json`)
//! branch off before step 1 and answer in OAuth/JOSE shapes (see `token::endpoint`).
//!
//! Never: forward anything not rebuilt from the authorized call, forward before the `request`
//! record reached the kernel, let an error escape as anything but a cPanel-shaped response.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{HeaderValue, AUTHORIZATION, CONNECTION, CONTENT_TYPE};
use http::{Request, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use time::OffsetDateTime;

use crate::admit::{admit, HeadLimits};
use crate::app::App;
use crate::audit::{Event, Record};
use crate::body::Body;
use crate::call::{CpanelCall, Method};
use crate::classify::{classify, ClassifyError, RawRequest};
use crate::error::{refusal, ProxyError, Shape};
use crate::framing::Violation;
use crate::policy::{Decision, DecisionRequest, Policy};
use crate::principal::Principal;
use crate::ratelimit::Refusal;
use crate::respond::relay;
use crate::token::parse_authorization;

/// What is known about a request so far, for its audit records, logs and refusal shape.
#[derive(Default)]
pub struct Ctx {
    pub request_id: String,
    pub client_ip: Option<IpAddr>,
    pub method: Option<Method>,
    pub api2_path: bool,
    pub principal: Option<Arc<Principal>>,
    pub call: Option<CpanelCall>,
    pub rule: Option<String>,
    /// The call was sent to cPanel.
    pub forwarded: bool,
}

impl Ctx {
    /// A record of `event` carrying everything known about the request.
    pub fn record(&self, event: Event) -> Record {
        Record {
            event: Some(event),
            request_id: Some(self.request_id.clone()),
            developer: self.principal.as_ref().map(|p| p.developer.to_string()),
            jti: self.principal.as_ref().map(|p| p.jti.clone()),
            client_ip: self.client_ip,
            method: self.method,
            api: self.call.as_ref().map(|c| c.api),
            call: self.call.clone(),
            rule: self.rule.clone(),
            ..Record::default()
        }
    }

    fn shape(&self) -> Shape<'_> {
        if !self.api2_path {
            return Shape::Uapi;
        }
        match &self.call {
            Some(c) => Shape::Api2 {
                module: &c.module,
                func: &c.function,
            },
            None => Shape::Api2 { module: "", func: "" },
        }
    }
}

/// Handles one request end to end; never fails (errors become responses).
pub async fn handle(app: Arc<App>, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    let started = Instant::now();
    let mut ctx = Ctx {
        request_id: new_request_id(),
        client_ip: Some(peer.ip().to_canonical()),
        api2_path: req.uri().path() == "/json-api/cpanel",
        ..Ctx::default()
    };
    // A head that hyper normalised but security.md §2 refuses (`framing.rs`): refused before
    // anything else, and the connection closes after the answer.
    let mut response = if let Some(violation) = req.extensions().get::<Violation>().copied() {
        let mut response = refuse(&app, &ctx, &ProxyError::BadRequest(violation.reason().to_owned())).await;
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        response
    } else {
        // The broker's routes answer in OAuth/JOSE shapes, not cPanel's, so they branch off first.
        match req.uri().path() {
            crate::token::endpoint::TOKEN_PATH => {
                crate::token::endpoint::token(&app, req, peer.ip().to_canonical(), &ctx.request_id).await
            }
            crate::token::endpoint::JWKS_PATH => crate::token::endpoint::jwks(&app, req.method()),
            _ => match run(&app, req, &mut ctx, started).await {
                Ok(response) => response,
                Err(err) => refuse(&app, &ctx, &err).await,
            },
        }
    };
    if let Ok(v) = HeaderValue::from_str(&ctx.request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    let call = ctx.call.as_ref().map(CpanelCall::name);
    app.metrics.observe(&crate::metrics::Observed {
        developer: ctx.principal.as_ref().map(|p| p.developer.as_str()),
        api: ctx.call.as_ref().map(|c| c.api.as_str()),
        call: call.as_deref(),
        allowed: ctx.forwarded,
        status: response.status().as_u16(),
        duration: started.elapsed(),
    });
    response
}

async fn run(app: &App, req: Request<Incoming>, ctx: &mut Ctx, started: Instant) -> Result<Response<Body>, ProxyError> {
    let (parts, body) = req.into_parts();
    let server = &app.config.server;
    let limits = HeadLimits {
        max_headers: server.max_headers,
        max_header_bytes: server.max_header_bytes,
        max_body: server.max_body,
        own_authority: own_authority(server.public_base_url.as_deref()),
    };
    let head = admit(&parts.method, &parts.uri, parts.version, &parts.headers, &limits)?;
    ctx.method = Some(head.method);

    let (principal, policy) = authenticate(app, &parts.headers, now_unix())?;
    ctx.principal = Some(principal);

    let body = read_body(body, server.max_body, server.body_timeout).await?;
    let content_type = parts.headers.get(CONTENT_TYPE).map(|v| v.to_str()).transpose();
    let content_type = content_type.map_err(|_| ProxyError::BadRequest("Content-Type is not ASCII".into()))?;
    let raw = RawRequest {
        method: head.method,
        path: head.path,
        query: head.query,
        content_type,
        body: &body,
    };
    let call = classify(&raw).map_err(|e| match e {
        ClassifyError::BadRequest(why) => ProxyError::BadRequest(why),
        ClassifyError::NotAnApiCall(why) => ProxyError::NotAnApiCall(why),
    })?;
    ctx.call = Some(call);
    let (Some(principal), Some(call)) = (ctx.principal.as_ref(), ctx.call.as_ref()) else {
        return Err(ProxyError::BadRequest("internal: request context lost".into()));
    };

    let decision = policy.decide(&DecisionRequest {
        call,
        method: head.method,
        client_ip: ctx.client_ip.unwrap_or(peer_unknown()),
        scope: principal.scope.as_deref(),
        now: OffsetDateTime::now_utc(),
    });
    match decision {
        Decision::Allow { rule } => ctx.rule = Some(rule.to_string()),
        Decision::Deny { rule, why } => {
            ctx.rule = rule.map(|r| r.to_string());
            return Err(ProxyError::Forbidden(why));
        }
    }

    match app.limiter.check(&principal.developer, app.limit_for(&policy)).await {
        Ok(()) => {}
        Err(Refusal::Limited(retry_after)) => {
            app.metrics.rate_limited(principal.developer.as_str());
            return Err(ProxyError::RateLimited { retry_after });
        }
        Err(Refusal::StoreUnavailable) => return Err(ProxyError::StoreUnavailable),
    }

    let upstream = app
        .upstreams
        .get(&policy.account)
        .ok_or_else(|| ProxyError::UpstreamError(format!("no upstream named {:?}", policy.account)))?;
    let rebuilt = crate::rebuild::rebuild(call, head.method, upstream.user());

    let mut request_record = ctx.record(Event::Request);
    request_record.decision = Some("allow");
    let audited = app.audit.append(request_record).await;
    app.metrics.audit_result(audited.is_ok());
    if let Err(e) = audited {
        tracing::error!(request_id = %ctx.request_id, error = %e, "audit write failed; call refused");
        return Err(ProxyError::AuditUnavailable);
    }

    let forwarded_for = ctx.client_ip.map(|ip| ip.to_string()).unwrap_or_default();
    let idempotent = head.method == Method::Get && is_read_call(call);
    ctx.forwarded = true;
    let sent = Instant::now();
    let response = upstream
        .forward(&rebuilt, head.method, &parts.headers, &forwarded_for, idempotent)
        .await;
    app.metrics.upstream_time(sent.elapsed());
    relay(app, ctx, upstream, response, started).await
}

/// Step 2: the credential -> a principal with a known, usable policy.
/// The signature and claims check goes through the verifier's cache; revocation, the claimed
/// developer and the policy are checked on every call, so they take effect at once.
fn authenticate(app: &App, headers: &http::HeaderMap, now: u64) -> Result<(Arc<Principal>, Arc<Policy>), ProxyError> {
    let unauth = |why: String| ProxyError::Unauthenticated(why);
    let value = headers
        .get(AUTHORIZATION)
        .ok_or_else(|| unauth("no Authorization header".into()))?;
    let credential = parse_authorization(value.as_bytes()).map_err(|e| unauth(e.to_string()))?;
    let principal = app
        .verifier
        .load()
        .verify_cached(&credential.token, now)
        .map_err(|e| unauth(e.to_string()))?;
    if app.revocations.load().is_revoked(&principal) {
        return Err(unauth("token revoked".into()));
    }
    if let Some(claimed) = &credential.developer {
        if claimed.as_ref() != principal.developer.as_str() {
            return Err(unauth("the user name does not match the token's subject".into()));
        }
    }
    let policy = app
        .policies
        .load()
        .get(principal.developer.as_str())
        .cloned()
        .ok_or_else(|| unauth(format!("no policy for developer {}", principal.developer)))?;
    if let Some(max) = policy.max_token_ttl {
        if principal.expires_at.saturating_sub(principal.issued_at) > max.as_secs() {
            return Err(unauth("token lifetime exceeds the developer's max_token_ttl".into()));
        }
    }
    Ok((principal, policy))
}

/// Reads the whole body within `max` bytes and `timeout`.
async fn read_body(body: Incoming, max: usize, timeout: std::time::Duration) -> Result<Bytes, ProxyError> {
    match tokio::time::timeout(timeout, Limited::new(body, max).collect()).await {
        Err(_) => Err(ProxyError::RequestTimeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(ProxyError::TooLarge),
        Ok(Err(_)) => Err(ProxyError::BadRequest("the request body could not be read".into())),
    }
}

/// Writes the `denied` record (400-429) and builds the refusal.
async fn refuse(app: &App, ctx: &Ctx, err: &ProxyError) -> Response<Body> {
    let status = err.status().as_u16();
    tracing::info!(
        request_id = %ctx.request_id,
        developer = ctx.principal.as_ref().map(|p| p.developer.as_str()).unwrap_or("-"),
        call = %ctx.call.as_ref().map(ToString::to_string).unwrap_or_else(|| "-".into()),
        code = err.code(),
        status,
        reason = %err.detail(),
        "request refused"
    );
    // A call refused for want of the rate-limit store was refused before anything was
    // forwarded, like a 429: it gets its `denied` record too.
    if (400..=429).contains(&status) || *err == ProxyError::StoreUnavailable {
        let mut record = ctx.record(Event::Denied);
        record.decision = Some("deny");
        record.code = Some(err.code());
        record.status = Some(status);
        record.reason = Some(err.detail());
        if let Err(e) = app.audit.append(record).await {
            tracing::error!(request_id = %ctx.request_id, error = %e, "could not write the denied record");
        }
    }
    refusal(err, ctx.shape(), &ctx.request_id)
}

/// Refuses with `err` after the `request` record was written: records a `response` with the code.
pub async fn upstream_failure(app: &App, ctx: &Ctx, err: ProxyError, started: Instant) -> Response<Body> {
    tracing::warn!(request_id = %ctx.request_id, code = err.code(), reason = %err.detail(), "upstream failure");
    let mut record = ctx.record(Event::Response);
    record.status = Some(err.status().as_u16());
    record.code = Some(err.code());
    record.reason = Some(err.detail());
    record.duration_us = Some(started.elapsed().as_micros() as u64);
    if let Err(e) = app.audit.append(record).await {
        tracing::error!(request_id = %ctx.request_id, error = %e, "could not write the response record");
    }
    refusal(&err, ctx.shape(), &ctx.request_id)
}

/// Reads that are safe to retry on a connection failure.
fn is_read_call(call: &CpanelCall) -> bool {
    const READ_PREFIXES: &[&str] = &[
        "list",
        "get",
        "fetch",
        "show",
        "domains_data",
        "single_domain_data",
        "count",
    ];
    !call.is_batch() && READ_PREFIXES.iter().any(|p| call.function.starts_with(p))
}

/// A UUID v4 in simple form (32 lowercase hex digits) from the thread's CSPRNG: no system call
/// per request, unlike `Uuid::new_v4` (which asks the kernel for every id).
fn new_request_id() -> String {
    let uuid = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    let mut buf = [0u8; uuid::fmt::Simple::LENGTH];
    uuid.simple().encode_lower(&mut buf).to_owned()
}

fn own_authority(public_base_url: Option<&str>) -> Option<&str> {
    let rest = public_base_url?.split_once("://")?.1;
    Some(rest.split('/').next().unwrap_or(rest))
}

fn peer_unknown() -> IpAddr {
    IpAddr::from([0, 0, 0, 0])
}

fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
