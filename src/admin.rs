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

/// Ready when policies are loaded, the last audit write succeeded and no upstream circuit is
/// open; the body lists each check.
fn readyz(app: &App) -> Response<Body> {
    let policies = app.policies.load().len();
    let audit_ok = app.metrics.audit_ok();
    let open: Vec<&str> = app
        .upstreams
        .iter()
        .filter(|(_, u)| u.circuit_open())
        .map(|(name, _)| name.as_str())
        .collect();
    let ready = audit_ok && open.is_empty();
    let body = format!(
        "{}\npolicies: {policies} loaded\naudit: {}\nupstream circuits open: {}\n",
        if ready { "ready" } else { "not ready" },
        if audit_ok { "ok" } else { "last write failed" },
        if open.is_empty() {
            "none".to_owned()
        } else {
            open.join(", ")
        },
    );
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    text(status, body)
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
