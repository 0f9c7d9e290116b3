//! The floor of cpgate's stack: a bare hyper reverse proxy that does no checks at all. It swaps
//! `Authorization` for the master header and forwards the request as it came, with the same
//! serving model as `cpgate serve` (one current-thread runtime per thread, each accepting on a
//! copy of the listener, each with its own pooled hyper-util client, HTTP/1.1 keep-alive).
//!
//! Not a product: a yardstick for `docs/performance.md`. Whatever this reaches against nginx in
//! the side-by-side harness is the most any gateway built on hyper + tokio can reach on that
//! machine; cpgate's own checks, audit and rebuild come on top.
//!
//!     cargo run --release --example bare_proxy -- 127.0.0.1:29095 127.0.0.1:29080 2
//!     (listen address, upstream address, threads)

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

type Upstream = Client<HttpConnector, Full<Bytes>>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, upstream, threads] = args.as_slice() else {
        return Err("usage: bare_proxy LISTEN_ADDR UPSTREAM_ADDR THREADS".into());
    };
    let listen: SocketAddr = listen.parse()?;
    let upstream: SocketAddr = upstream.parse()?;
    let threads: usize = threads.parse()?;
    let listener = std::net::TcpListener::bind(listen)?;
    listener.set_nonblocking(true)?;
    let mut handles = Vec::new();
    for _ in 0..threads {
        let listener = listener.try_clone()?;
        handles.push(std::thread::spawn(move || serve(listener, upstream)));
    }
    for handle in handles {
        handle.join().map_err(|_| "serving thread panicked")??;
    }
    Ok(())
}

fn serve(listener: std::net::TcpListener, upstream: SocketAddr) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        let client: Upstream = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(256)
            .build(http);
        let master = HeaderValue::from_static("cpanel masteruser:MASTERTOKEN123");
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let (client, master) = (client.clone(), master.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req| forward(req, client.clone(), master.clone(), upstream));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

async fn forward(
    req: Request<Incoming>,
    client: Upstream,
    master: HeaderValue,
    upstream: SocketAddr,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let (mut parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let Ok(uri) = format!("http://{upstream}{path}").parse::<Uri>() else {
        return Ok(status(StatusCode::BAD_REQUEST));
    };
    parts.uri = uri;
    parts.headers.insert(AUTHORIZATION, master);
    let Ok(answer) = client.request(Request::from_parts(parts, Full::new(body))).await else {
        return Ok(status(StatusCode::BAD_GATEWAY));
    };
    let (parts, body) = answer.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Response::from_parts(parts, Full::new(body)))
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = code;
    response
}
