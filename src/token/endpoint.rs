//! The public token routes: `POST /oauth/token` (OAuth 2.0 client credentials, RFC 6749 §4.4,
//! errors per §5.2) and `GET /.well-known/jwks.json`.
//!
//! Order for `/oauth/token`: method (405) -> head checks of `admit` -> no query string ->
//! form body (`application/x-www-form-urlencoded`, at most 16 KiB, no duplicated parameter) ->
//! `grant_type` -> client authentication (HTTP Basic or `client_id`/`client_secret`, exactly
//! one; throttled, off the async workers, see [`super::client_auth`]) -> policy enabled,
//! unexpired, client address inside `source_ips` -> `scope` (each pattern one the policy may
//! allow) -> issue -> `token_issued` audit record (fail closed: no record, no token).
//!
//! Never: put the client secret, a hash or the issued token into a log line, an audit record or
//! an error description; tell an unknown client from a wrong secret (same answer, same cost);
//! answer without `Cache-Control: no-store`.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use http::header::{
    HeaderValue, ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, PRAGMA, RETRY_AFTER, WWW_AUTHENTICATE,
};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::client_auth::{ClientAuthError, ClientKey};
use super::verify::parse_scope;
use super::{issue, IssueError, MAX_AUTHORIZATION_LEN};
use crate::admit::{admit, HeadLimits};
use crate::app::App;
use crate::audit::{Event, Record};
use crate::body::{full, Body};
use crate::call::Method;
use crate::policy::Policy;
use crate::principal::DeveloperId;

/// The token endpoint's path.
pub const TOKEN_PATH: &str = "/oauth/token";
/// The JWK set's path.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// The largest token request body read.
const MAX_FORM_LEN: usize = 16 * 1024;

/// A refusal of the token endpoint: the RFC 6749 §5.2 `error` code and the HTTP status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OAuthError {
    /// 400 `invalid_request` (or the status of a head check: 413, 431, 408).
    InvalidRequest(StatusCode, String),
    /// 401 `invalid_client`; the text is for logs only (the client always reads the same).
    InvalidClient(&'static str),
    /// 400 `unauthorized_client`: authenticated, but its policy is disabled, expired, or the
    /// client address is outside `source_ips`.
    UnauthorizedClient(String),
    /// 400 `unsupported_grant_type`.
    UnsupportedGrantType,
    /// 400 `invalid_scope`.
    InvalidScope(String),
    /// 429 after too many failed client authentications.
    Throttled(Duration),
    /// 503 `temporarily_unavailable`: no hashing slot, or the audit log is unavailable.
    Unavailable(&'static str),
    /// 405 for anything but POST.
    MethodNotAllowed,
}

impl OAuthError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            OAuthError::InvalidRequest(status, _) => *status,
            OAuthError::InvalidClient(_) => StatusCode::UNAUTHORIZED,
            OAuthError::UnauthorizedClient(_) | OAuthError::UnsupportedGrantType | OAuthError::InvalidScope(_) => {
                StatusCode::BAD_REQUEST
            }
            OAuthError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            OAuthError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            OAuthError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// The `error` value (RFC 6749 §5.2). §5.2 has no code for throttling; a 429 says
    /// `slow_down` (registered by RFC 8628 in the OAuth extensions error registry).
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(..) | OAuthError::MethodNotAllowed => "invalid_request",
            OAuthError::InvalidClient(_) => "invalid_client",
            OAuthError::UnauthorizedClient(_) => "unauthorized_client",
            OAuthError::UnsupportedGrantType => "unsupported_grant_type",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::Throttled(_) => "slow_down",
            OAuthError::Unavailable(_) => "temporarily_unavailable",
        }
    }

    /// The `error_description`: for people, never a secret.
    pub fn description(&self) -> String {
        match self {
            OAuthError::InvalidRequest(_, why) => why.clone(),
            OAuthError::InvalidClient(_) => "client authentication failed".into(),
            OAuthError::UnauthorizedClient(why) | OAuthError::InvalidScope(why) => why.clone(),
            OAuthError::UnsupportedGrantType => "only grant_type=client_credentials is supported".into(),
            OAuthError::Throttled(_) => "too many failed client authentications; retry later".into(),
            OAuthError::Unavailable(why) => (*why).into(),
            OAuthError::MethodNotAllowed => "use POST".into(),
        }
    }

    /// What logs and the audit `reason` say.
    fn detail(&self) -> String {
        match self {
            OAuthError::InvalidClient(why) => (*why).into(),
            other => other.description(),
        }
    }
}

/// Handles `/oauth/token`; never fails (errors become RFC 6749 §5.2 responses).
pub async fn token(app: &App, req: Request<Incoming>, client_ip: IpAddr, request_id: &str) -> Response<Body> {
    let mut developer = None;
    match grant(app, req, client_ip, &mut developer).await {
        Ok((response, record)) => {
            let mut record = record;
            record.request_id = Some(request_id.to_owned());
            record.client_ip = Some(client_ip);
            if let Err(e) = app.audit.append(record).await {
                tracing::error!(request_id, error = %e, "audit write failed; token withheld");
                let err = OAuthError::Unavailable("the audit log is unavailable; no token was issued");
                return refuse(app, &err, client_ip, request_id, developer).await;
            }
            app.metrics.token_issued();
            response
        }
        Err(err) => refuse(app, &err, client_ip, request_id, developer).await,
    }
}

/// Handles `/.well-known/jwks.json`: the public keys, or 404 for HS256 (its keys are secret).
pub fn jwks(app: &App, method: &http::Method) -> Response<Body> {
    if method != http::Method::GET {
        let mut r = json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &error_body("invalid_request", "use GET"),
        );
        r.headers_mut().insert(ALLOW, HeaderValue::from_static("GET"));
        return r;
    }
    let keys = app.keys();
    if !keys.algorithm().is_asymmetric() {
        let body = error_body("not_found", "HS256 keys are secret: there is no public JWK set");
        return json_response(StatusCode::NOT_FOUND, &body);
    }
    let mut r = json_response(StatusCode::OK, &keys.jwks());
    // Short: relying parties refetch on an unknown kid anyway, and a rotation is seen soon.
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
    r.headers_mut().remove(PRAGMA);
    r
}

/// Checks a requested scope against a policy: valid syntax, and every pattern one the policy
/// may allow. Used by the endpoint and `cpgate token issue`.
pub fn check_scope(policy: &Policy, scope: &str) -> Result<(), String> {
    let patterns = parse_scope(scope).map_err(str::to_owned)?;
    match patterns.iter().position(|p| !policy.may_allow(p)) {
        Some(i) => Err(format!("scope entry {} names calls the policy never allows", i + 1)),
        None => Ok(()),
    }
}

/// The parameters of a token request.
#[derive(Default)]
struct Form {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<Zeroizing<String>>,
    scope: Option<String>,
}

async fn grant(
    app: &App,
    req: Request<Incoming>,
    client_ip: IpAddr,
    developer: &mut Option<String>,
) -> Result<(Response<Body>, Record), OAuthError> {
    if req.method() != http::Method::POST {
        return Err(OAuthError::MethodNotAllowed);
    }
    let (parts, body) = req.into_parts();
    let server = &app.config.server;
    let limits = HeadLimits {
        max_headers: server.max_headers,
        max_header_bytes: server.max_header_bytes,
        max_body: server.max_body.min(MAX_FORM_LEN),
        own_authority: None,
    };
    admit(&parts.method, &parts.uri, parts.version, &parts.headers, &limits)
        .map_err(|e| OAuthError::InvalidRequest(e.status(), e.message()))?;
    if parts.uri.query().is_some() {
        return Err(invalid("parameters belong in the form body, not the query string"));
    }
    let is_form = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(invalid("Content-Type must be application/x-www-form-urlencoded"));
    }
    let body = read_form(body, server.body_timeout).await?;
    let form = parse_form(&body)?;

    match form.grant_type.as_deref() {
        None => return Err(invalid("grant_type is required")),
        Some("client_credentials") => {}
        Some(_) => return Err(OAuthError::UnsupportedGrantType),
    }
    let (client_id, secret) = client_credentials(&parts.headers, form.client_id, form.client_secret)?;
    let policies = app.policies.load();
    let policy = DeveloperId::parse(&client_id)
        .ok()
        .and_then(|id| policies.get(id.as_str()).cloned());
    let key = match &policy {
        Some(p) => ClientKey::Known(p.developer.to_string()),
        None => ClientKey::Unknown,
    };
    let hash = policy.as_ref().and_then(|p| p.client_secret_hash.as_deref());
    app.client_auth
        .verify(&key, client_ip, hash, secret)
        .await
        .map_err(|e| match e {
            ClientAuthError::Invalid if policy.is_none() => OAuthError::InvalidClient("unknown client id"),
            ClientAuthError::Invalid if hash.is_none() => {
                OAuthError::InvalidClient("the policy has no client_secret_hash")
            }
            ClientAuthError::Invalid => OAuthError::InvalidClient("wrong client secret"),
            ClientAuthError::Throttled(wait) => OAuthError::Throttled(wait),
            ClientAuthError::Busy => OAuthError::Unavailable("the token endpoint is busy; retry shortly"),
        })?;
    let Some(policy) = policy else {
        return Err(OAuthError::InvalidClient("unknown client id"));
    };
    *developer = Some(policy.developer.to_string());

    check_policy(&policy, client_ip)?;
    if let Some(scope) = &form.scope {
        check_scope(&policy, scope).map_err(OAuthError::InvalidScope)?;
    }
    let config = &app.config.tokens;
    let max = policy.max_token_ttl.map_or(config.max_ttl, |m| m.min(config.max_ttl));
    let ttl = config.default_ttl.min(max);
    let mut rules = crate::app::token_rules(&app.config);
    rules.max_ttl = max;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let issued =
        issue(&app.keys(), &rules, &policy.developer, ttl, form.scope.as_deref(), now).map_err(|e| match e {
            IssueError::InvalidScope(why) => OAuthError::InvalidScope(why),
            IssueError::TooLong => OAuthError::InvalidScope("scope too long".into()),
            IssueError::CannotSign => OAuthError::UnauthorizedClient("this gateway only verifies tokens".into()),
            other => OAuthError::Unavailable(match other {
                IssueError::Signing(_) => "signing failed",
                _ => "the token could not be issued",
            }),
        })?;

    let mut body = serde_json::json!({
        "access_token": issued.token,
        "token_type": "Bearer",
        "expires_in": ttl.as_secs(),
    });
    if let Some(scope) = &form.scope {
        body["scope"] = scope.as_str().into();
    }
    let expires = OffsetDateTime::from_unix_timestamp(i64::try_from(issued.expires_at).unwrap_or(i64::MAX))
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default();
    let record = Record {
        event: Some(Event::TokenIssued),
        developer: Some(policy.developer.to_string()),
        jti: Some(issued.jti.clone()),
        method: Some(Method::Post),
        decision: Some("allow"),
        reason: Some(match &form.scope {
            Some(scope) => format!("expires {expires}; scope {scope}"),
            None => format!("expires {expires}; scope (whole policy)"),
        }),
        status: Some(200),
        ..Record::default()
    };
    tracing::info!(developer = %policy.developer, jti = %issued.jti, ttl_secs = ttl.as_secs(), "token issued");
    Ok((json_response(StatusCode::OK, &body), record))
}

/// Disabled, expired, or outside `source_ips`: authenticated, but no token.
fn check_policy(policy: &Policy, client_ip: IpAddr) -> Result<(), OAuthError> {
    if !policy.enabled {
        return Err(OAuthError::UnauthorizedClient("the client is disabled".into()));
    }
    if policy.expires.is_some_and(|at| at <= OffsetDateTime::now_utc()) {
        return Err(OAuthError::UnauthorizedClient("the client's policy has expired".into()));
    }
    let ip = client_ip.to_canonical();
    if let Some(nets) = &policy.source_ips {
        if !nets.iter().any(|n| n.contains(&ip)) {
            return Err(OAuthError::UnauthorizedClient(
                "the client address is outside the policy's source_ips".into(),
            ));
        }
    }
    Ok(())
}

/// The client id and secret from exactly one method: HTTP Basic (RFC 6749 §2.3.1: both parts
/// form-urlencoded) or the form fields.
fn client_credentials(
    headers: &HeaderMap,
    form_id: Option<String>,
    form_secret: Option<Zeroizing<String>>,
) -> Result<(String, Zeroizing<String>), OAuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let header = values.next();
    if values.next().is_some() {
        return Err(invalid("more than one Authorization header"));
    }
    match (header, form_id, form_secret) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(invalid(
            "use exactly one client authentication method (HTTP Basic or form fields)",
        )),
        (Some(value), None, None) => basic_credentials(value.as_bytes()),
        (None, Some(id), Some(secret)) => Ok((id, secret)),
        (None, Some(_), None) => Err(OAuthError::InvalidClient("client_secret missing")),
        (None, None, _) => Err(OAuthError::InvalidClient("no client authentication")),
    }
}

fn basic_credentials(value: &[u8]) -> Result<(String, Zeroizing<String>), OAuthError> {
    if value.len() > MAX_AUTHORIZATION_LEN {
        return Err(OAuthError::InvalidClient("Authorization value too long"));
    }
    let (scheme, encoded) = match value.iter().position(|&b| b == b' ') {
        Some(i) => (&value[..i], &value[i + 1..]),
        None => return Err(OAuthError::InvalidClient("malformed Authorization value")),
    };
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return Err(OAuthError::InvalidClient(
            "only HTTP Basic client authentication is supported",
        ));
    }
    let decoded = Zeroizing::new(
        STANDARD
            .decode(encoded)
            .map_err(|_| OAuthError::InvalidClient("malformed Basic credentials"))?,
    );
    let colon = decoded
        .iter()
        .position(|&b| b == b':')
        .ok_or(OAuthError::InvalidClient("malformed Basic credentials"))?;
    let id = form_decode(&decoded[..colon]);
    let secret = Zeroizing::new(form_decode(&decoded[colon + 1..]));
    Ok((id, secret))
}

/// `application/x-www-form-urlencoded` decoding of one value (`+` is a space).
fn form_decode(bytes: &[u8]) -> String {
    let plus_as_space: Zeroizing<Vec<u8>> =
        Zeroizing::new(bytes.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect());
    percent_encoding::percent_decode(&plus_as_space)
        .decode_utf8_lossy()
        .into_owned()
}

async fn read_form(body: Incoming, timeout: Duration) -> Result<Zeroizing<Vec<u8>>, OAuthError> {
    match tokio::time::timeout(timeout, Limited::new(body, MAX_FORM_LEN).collect()).await {
        Err(_) => Err(OAuthError::InvalidRequest(
            StatusCode::REQUEST_TIMEOUT,
            "request body not received in time".into(),
        )),
        Ok(Ok(collected)) => Ok(Zeroizing::new(collected.to_bytes().to_vec())),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(OAuthError::InvalidRequest(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large".into(),
        )),
        Ok(Err(_)) => Err(invalid("the request body could not be read")),
    }
}

/// The known parameters; unknown ones are ignored (RFC 6749 §3.2), repeated ones refused.
fn parse_form(body: &[u8]) -> Result<Form, OAuthError> {
    let mut form = Form::default();
    for (name, value) in form_urlencoded::parse(body) {
        let repeated = match name.as_ref() {
            "grant_type" => form.grant_type.replace(value.into_owned()).is_some(),
            "client_id" => form.client_id.replace(value.into_owned()).is_some(),
            "client_secret" => form.client_secret.replace(Zeroizing::new(value.into_owned())).is_some(),
            "scope" => form.scope.replace(value.into_owned()).is_some(),
            _ => false,
        };
        if repeated {
            return Err(invalid(&format!("parameter {name} is repeated")));
        }
    }
    Ok(form)
}

fn invalid(why: &str) -> OAuthError {
    OAuthError::InvalidRequest(StatusCode::BAD_REQUEST, why.to_owned())
}

/// Logs, writes the `denied` record, and answers per RFC 6749 §5.2.
async fn refuse(
    app: &App,
    err: &OAuthError,
    client_ip: IpAddr,
    request_id: &str,
    developer: Option<String>,
) -> Response<Body> {
    let status = err.status();
    app.metrics.token_failed();
    tracing::info!(request_id, code = err.code(), status = status.as_u16(), reason = %err.detail(), "token request refused");
    let record = Record {
        event: Some(Event::Denied),
        request_id: Some(request_id.to_owned()),
        developer,
        client_ip: Some(client_ip),
        method: Some(Method::Post),
        decision: Some("deny"),
        reason: Some(err.detail()),
        code: Some(err.code()),
        status: Some(status.as_u16()),
        ..Record::default()
    };
    if let Err(e) = app.audit.append(record).await {
        tracing::error!(request_id, error = %e, "could not write the denied record");
    }
    let mut response = json_response(status, &error_body(err.code(), &err.description()));
    let headers = response.headers_mut();
    match err {
        OAuthError::InvalidClient(_) => {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"cpgate\""));
        }
        OAuthError::Throttled(wait) => {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0 || wait.is_zero());
            headers.insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        OAuthError::Unavailable(_) => {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        OAuthError::MethodNotAllowed => {
            headers.insert(ALLOW, HeaderValue::from_static("POST"));
        }
        OAuthError::InvalidRequest(..)
        | OAuthError::UnauthorizedClient(_)
        | OAuthError::UnsupportedGrantType
        | OAuthError::InvalidScope(_) => {}
    }
    response
}

fn error_body(code: &str, description: &str) -> serde_json::Value {
    serde_json::json!({ "error": code, "error_description": description })
}

/// A JSON answer with `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(full(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json;charset=UTF-8"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
