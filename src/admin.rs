//! The admin listener (`server.admin_listen`, loopback by default): `GET /healthz`,
//! `GET /readyz`, `GET /metrics`. Never on the public listener; never shows a secret.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::app::App;
use crate::body::{full, Body};
use crate::config::{OnStoreError, RedisUrl};
use crate::metrics::Scrape;

/// Serves the admin routes on `listener` until `shutdown` resolves.
pub async fn serve(app: Arc<App>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let app = app.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let app = app.clone();
                        async move { Ok::<_, std::convert::Infallible>(route(&app, &req)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(std::time::Duration::from_secs(10))
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
}

fn route(app: &App, req: &Request<Incoming>) -> Response<Body> {
    if req.method() != http::Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".into());
    }
    match req.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n".into()),
        "/readyz" => readyz(app),
        "/metrics" => {
            let (seq, head) = app.audit.head();
            let scrape = Scrape {
                audit_write_errors: app.audit.write_errors(),
                audit_seq: seq,
                audit_head: &head,
                circuits: app
                    .upstreams
                    .iter()
                    .map(|(name, u)| (name.as_str(), u.circuit_open()))
                    .collect(),
            };
            let mut response = text(StatusCode::OK, app.metrics.render(&scrape));
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            );
            response
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    }
}

/// Ready when the last policy reload and the last audit write succeeded, no upstream circuit is
/// open, and (with the Redis store and `on_store_error = "deny"`) the store answers; the body
/// lists each check. With `on_store_error = "local"` an unreachable store leaves the instance
/// ready but degraded (first line `ready (degraded)`): it serves, with per-instance limits.
fn readyz(app: &App) -> Response<Body> {
    let policies = app.policies.load().len();
    let audit_ok = app.metrics.audit_ok();
    let open: Vec<&str> = app
        .upstreams
        .iter()
        .filter(|(_, u)| u.circuit_open())
        .map(|(name, _)| name.as_str())
        .collect();
    let policies_ok = app.metrics.policies_ok();
    let store = store_check(
        app.store.as_deref().map(|s| (s.url(), s.is_down())),
        app.config.rate_limit.on_store_error,
    );
    let ready = audit_ok && policies_ok && open.is_empty() && store.ready;
    let body = format!(
        "{}\npolicies: {policies} loaded{}\naudit: {}\nupstream circuits open: {}\nstore: {}\n",
        match (ready, store.degraded) {
            (false, _) => "not ready",
            (true, true) => "ready (degraded)",
            (true, false) => "ready",
        },
        if policies_ok {
            ""
        } else {
            "; the last reload failed (previous set in force)"
        },
        if audit_ok { "ok" } else { "last write failed" },
        if open.is_empty() {
            "none".to_owned()
        } else {
            open.join(", ")
        },
        store.line,
    );
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    text(status, body)
}

/// The `store:` line of `/readyz` and what it means for readiness.
#[derive(Debug, PartialEq, Eq)]
struct StoreCheck {
    ready: bool,
    degraded: bool,
    line: String,
}

/// `redis`: the store's URL (shown without its password) and whether it is down, as the last
/// store operation found it (requests, and the revocation check every second, keep that
/// fresh); `None` for the memory store. `/readyz` never contacts Redis itself, so a balancer's
/// probes add no load to Redis and never wait on it.
fn store_check(redis: Option<(&RedisUrl, bool)>, on_error: OnStoreError) -> StoreCheck {
    let Some((url, down)) = redis else {
        return StoreCheck {
            ready: true,
            degraded: false,
            line: "memory (limits per instance)".into(),
        };
    };
    match (down, on_error) {
        (false, _) => StoreCheck {
            ready: true,
            degraded: false,
            line: format!("{url} ok (shared limits and revocations)"),
        },
        (true, OnStoreError::Local) => StoreCheck {
            ready: true,
            degraded: true,
            line: format!(
                "{url} unreachable; serving with this instance's own limits (on_store_error = \"local\") \
                 and its last synced revocations"
            ),
        },
        (true, OnStoreError::Deny) => StoreCheck {
            ready: false,
            degraded: true,
            line: format!(
                "{url} unreachable; calls are refused with 503 store_unavailable (on_store_error = \"deny\")"
            ),
        },
    }
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(full(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_line_and_readiness_follow_on_store_error() {
        let url = RedisUrl::parse("redis://:hunter2@cache.internal:6379/0").unwrap();
        let memory = store_check(None, OnStoreError::Deny);
        assert_eq!((memory.ready, memory.degraded), (true, false));
        let up = store_check(Some((&url, false)), OnStoreError::Deny);
        assert_eq!((up.ready, up.degraded), (true, false));
        assert_eq!(
            up.line,
            "redis://***@cache.internal:6379/0 ok (shared limits and revocations)"
        );
        let local = store_check(Some((&url, true)), OnStoreError::Local);
        assert_eq!((local.ready, local.degraded), (true, true));
        assert!(local
            .line
            .contains("unreachable; serving with this instance's own limits"));
        let deny = store_check(Some((&url, true)), OnStoreError::Deny);
        assert_eq!((deny.ready, deny.degraded), (false, true));
        assert!(deny.line.contains("refused with 503 store_unavailable"));
        for check in [up, local, deny] {
            assert!(!check.line.contains("hunter2"), "{}", check.line);
        }
    }
}
