//! The one mapping from client-visible outcomes to HTTP responses (contract §5).
//!
//! Every refusal cpgate makes is a [`ProxyError`] variant; [`ProxyError::status`],
//! [`ProxyError::code`] and [`refusal`] are exhaustive matches with no `_` arm, so a new variant
//! forces a decision. Messages are for people and leak nothing (no upstream URL, user, token).

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{Response, StatusCode};

use crate::body::{full, Body};

/// A request cpgate refuses or cannot complete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyError {
    /// No, malformed, expired, revoked or badly signed credential. The text is for logs only.
    Unauthenticated(String),
    /// The policy denies the call; the text is the policy's reason (logs, audit).
    Forbidden(String),
    NotAnApiCall(String),
    BadRequest(String),
    /// The header section is too large or has too many fields.
    HeadersTooLarge,
    TooLarge,
    /// The client did not send its body in time.
    RequestTimeout,
    RateLimited {
        retry_after: Duration,
    },
    AuditUnavailable,
    /// The shared rate-limit store could not decide and `on_store_error = "deny"`.
    StoreUnavailable,
    /// Unreachable, TLS failure, bad response; the text is for logs only.
    UpstreamError(String),
    UpstreamAuthFailed,
    MethodNotAllowed,
    UpstreamTimeout,
}

impl ProxyError {
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ProxyError::Forbidden(_) | ProxyError::NotAnApiCall(_) => StatusCode::FORBIDDEN,
            ProxyError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ProxyError::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ProxyError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ProxyError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ProxyError::AuditUnavailable | ProxyError::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::UpstreamError(_) | ProxyError::UpstreamAuthFailed => StatusCode::BAD_GATEWAY,
            ProxyError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ProxyError::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The stable code scripts read (`metadata.cpgate.code`).
    pub fn code(&self) -> &'static str {
        match self {
            ProxyError::Unauthenticated(_) => "unauthenticated",
            ProxyError::Forbidden(_) => "forbidden",
            ProxyError::NotAnApiCall(_) => "not_an_api_call",
            ProxyError::BadRequest(_) => "bad_request",
            ProxyError::HeadersTooLarge => "headers_too_large",
            ProxyError::TooLarge => "too_large",
            ProxyError::RequestTimeout => "request_timeout",
            ProxyError::RateLimited { .. } => "rate_limited",
            ProxyError::AuditUnavailable => "audit_unavailable",
            ProxyError::StoreUnavailable => "store_unavailable",
            ProxyError::UpstreamError(_) => "upstream_error",
            ProxyError::UpstreamAuthFailed => "upstream_auth_failed",
            ProxyError::MethodNotAllowed => "method_not_allowed",
            ProxyError::UpstreamTimeout => "upstream_timeout",
        }
    }

    /// The message shown to the client: specific where that helps, never a secret or an
    /// upstream detail.
    pub fn message(&self) -> String {
        match self {
            ProxyError::Unauthenticated(_) => {
                "Authentication failed: missing, invalid, expired or revoked credential.".into()
            }
            ProxyError::Forbidden(_) => "Access denied: your policy does not allow this call.".into(),
            ProxyError::NotAnApiCall(why) => format!("Not a UAPI or API 2 call: {why}"),
            ProxyError::BadRequest(why) => format!("Bad request: {why}"),
            ProxyError::HeadersTooLarge => "Request header fields too large.".into(),
            ProxyError::TooLarge => "Request body too large.".into(),
            ProxyError::RequestTimeout => "Request body not received in time.".into(),
            ProxyError::RateLimited { retry_after } => {
                format!("Rate limit exceeded: retry in {} s.", retry_after_secs(*retry_after))
            }
            ProxyError::AuditUnavailable => "The audit log is unavailable; the call was not forwarded.".into(),
            ProxyError::StoreUnavailable => {
                "The shared rate-limit store is unavailable; the call was not forwarded. Retry shortly.".into()
            }
            ProxyError::UpstreamError(_) => "The cPanel server could not be reached or answered badly.".into(),
            ProxyError::UpstreamAuthFailed => {
                "The cPanel server refused the gateway's credential; calls are paused. Contact the account owner."
                    .into()
            }
            ProxyError::MethodNotAllowed => "Only GET and POST are allowed.".into(),
            ProxyError::UpstreamTimeout => "The cPanel server did not answer in time.".into(),
        }
    }

    /// What to write in logs and the audit `reason` (never the token or the master credential).
    pub fn detail(&self) -> String {
        match self {
            ProxyError::Unauthenticated(d)
            | ProxyError::Forbidden(d)
            | ProxyError::NotAnApiCall(d)
            | ProxyError::BadRequest(d)
            | ProxyError::UpstreamError(d) => d.clone(),
            ProxyError::HeadersTooLarge
            | ProxyError::TooLarge
            | ProxyError::RequestTimeout
            | ProxyError::RateLimited { .. }
            | ProxyError::AuditUnavailable
            | ProxyError::StoreUnavailable
            | ProxyError::UpstreamAuthFailed
            | ProxyError::MethodNotAllowed
            | ProxyError::UpstreamTimeout => self.message(),
        }
    }
}

/// Which of cPanel's body shapes a refusal takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape<'a> {
    /// UAPI: everything but exactly `/json-api/cpanel`.
    Uapi,
    /// API 2 on `/json-api/cpanel`, with the module and function when known.
    Api2 { module: &'a str, func: &'a str },
}

/// The one function that turns a refusal into a response.
pub fn refusal(err: &ProxyError, shape: Shape<'_>, request_id: &str) -> Response<Body> {
    let message = err.message();
    let cpgate = serde_json::json!({ "code": err.code(), "request_id": request_id });
    let body = match shape {
        Shape::Uapi => serde_json::json!({
            "data": null,
            "errors": [message],
            "messages": null,
            "metadata": { "cpgate": cpgate },
            "status": 0,
            "warnings": null,
        }),
        Shape::Api2 { module, func } => serde_json::json!({
            "cpanelresult": {
                "apiversion": 2,
                "module": module,
                "func": func,
                "data": [],
                "error": message,
                "event": { "result": 0 },
                "cpgate": cpgate,
            }
        }),
    };
    let mut response = Response::new(full(Bytes::from(body.to_string())));
    *response.status_mut() = err.status();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    match err {
        ProxyError::Unauthenticated(_) => {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"cpgate\""));
        }
        ProxyError::RateLimited { retry_after } => {
            headers.insert(RETRY_AFTER, HeaderValue::from(retry_after_secs(*retry_after)));
        }
        ProxyError::StoreUnavailable => {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        ProxyError::Forbidden(_)
        | ProxyError::NotAnApiCall(_)
        | ProxyError::BadRequest(_)
        | ProxyError::HeadersTooLarge
        | ProxyError::TooLarge
        | ProxyError::RequestTimeout
        | ProxyError::AuditUnavailable
        | ProxyError::UpstreamError(_)
        | ProxyError::UpstreamAuthFailed
        | ProxyError::MethodNotAllowed
        | ProxyError::UpstreamTimeout => {}
    }
    if matches!(err, ProxyError::MethodNotAllowed) {
        headers.insert(http::header::ALLOW, HeaderValue::from_static("GET, POST"));
    }
    response
}

/// Whole seconds, rounded up, at least 1.
fn retry_after_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0 || d.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_json(r: Response<Body>) -> serde_json::Value {
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn every_refusal_maps_to_contract_status_and_code() {
        let table: Vec<(ProxyError, u16, &str)> = vec![
            (ProxyError::Unauthenticated("x".into()), 401, "unauthenticated"),
            (ProxyError::Forbidden("x".into()), 403, "forbidden"),
            (ProxyError::NotAnApiCall("x".into()), 403, "not_an_api_call"),
            (ProxyError::BadRequest("x".into()), 400, "bad_request"),
            (ProxyError::TooLarge, 413, "too_large"),
            (
                ProxyError::RateLimited {
                    retry_after: Duration::from_millis(1500),
                },
                429,
                "rate_limited",
            ),
            (ProxyError::AuditUnavailable, 503, "audit_unavailable"),
            (ProxyError::StoreUnavailable, 503, "store_unavailable"),
            (ProxyError::UpstreamError("x".into()), 502, "upstream_error"),
            (ProxyError::UpstreamAuthFailed, 502, "upstream_auth_failed"),
            (ProxyError::MethodNotAllowed, 405, "method_not_allowed"),
            (ProxyError::UpstreamTimeout, 504, "upstream_timeout"),
        ];
        for (err, status, code) in table {
            let r = refusal(&err, Shape::Uapi, "rid-1");
            assert_eq!(r.status().as_u16(), status, "{err:?}");
            let v = body_json(r).await;
            assert_eq!(v["metadata"]["cpgate"]["code"], code);
            assert_eq!(v["metadata"]["cpgate"]["request_id"], "rid-1");
            assert_eq!(v["status"], 0);
            assert!(v["data"].is_null() && v["messages"].is_null() && v["warnings"].is_null());
            assert!(v["errors"][0].is_string());
        }
    }

    #[tokio::test]
    async fn api2_refusals_use_cpanelresult_shape() {
        let r = refusal(
            &ProxyError::Forbidden("no".into()),
            Shape::Api2 {
                module: "ZoneEdit",
                func: "fetchzones",
            },
            "rid-2",
        );
        let v = body_json(r).await;
        let c = &v["cpanelresult"];
        assert_eq!(c["apiversion"], 2);
        assert_eq!(c["module"], "ZoneEdit");
        assert_eq!(c["func"], "fetchzones");
        assert_eq!(c["data"], serde_json::json!([]));
        assert_eq!(c["event"]["result"], 0);
        assert_eq!(c["cpgate"]["code"], "forbidden");
        assert!(c["error"].is_string());
    }

    #[test]
    fn unauthenticated_and_rate_limited_carry_their_headers() {
        let r = refusal(&ProxyError::Unauthenticated("x".into()), Shape::Uapi, "r");
        assert!(r.headers()[WWW_AUTHENTICATE].to_str().unwrap().starts_with("Bearer"));
        let r = refusal(
            &ProxyError::RateLimited {
                retry_after: Duration::from_millis(1500),
            },
            Shape::Uapi,
            "r",
        );
        assert_eq!(r.headers()[RETRY_AFTER], "2");
        let r = refusal(&ProxyError::MethodNotAllowed, Shape::Uapi, "r");
        assert_eq!(r.headers()[http::header::ALLOW], "GET, POST");
    }
}
