//! Listeners: accept, cap concurrent connections, TLS, HTTP/1.1 + HTTP/2, timeouts, graceful
//! drain; the admin listener; reload on SIGHUP and on policy-folder changes.
//!
//! Every cheap-to-trigger limit (connection cap, TLS handshake and header timeouts) applies
//! before any token or policy work. Never: a panic on network input, a connection without a
//! deadline.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::app::App;
use crate::idle::{Activity, IdleIo};

/// How long in-flight requests get to finish after SIGTERM/SIGINT.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the public listener until `shutdown` resolves, then drains in-flight connections.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    tls: Option<Arc<ArcSwap<rustls::ServerConfig>>>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let server = &app.config.server;
    let max = server.max_connections;
    let slots = Arc::new(Semaphore::new(max));
    let (stop_tx, stop_rx) = watch::channel(false);
    let builder = http_builder(&app);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // EMFILE and friends: back off briefly instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    tracing::debug!(%peer, "connection refused: max_connections reached");
                    drop(stream);
                    continue;
                };
                let conn = Connection { app: app.clone(), builder: builder.clone(), tls: tls.clone(), stop: stop_rx.clone() };
                tokio::spawn(async move {
                    conn.app.metrics.connection_opened();
                    let app = conn.app.clone();
                    conn.run(stream, peer).await;
                    app.metrics.connection_closed();
                    drop(permit);
                });
            }
        }
    }
    // Close the listening socket now: a connection attempt during the drain is refused at
    // once instead of waiting, unaccepted, in the kernel's queue.
    drop(listener);
    tracing::info!("shutting down: no new connections, draining in-flight requests");
    let _ = stop_tx.send(true);
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    match tokio::time::timeout(DRAIN_TIMEOUT, slots.acquire_many(all)).await {
        Ok(_) => tracing::info!("drained"),
        Err(_) => tracing::warn!("drain timed out; closing remaining connections"),
    }
    Ok(())
}

/// The HTTP/1 + HTTP/2 connection builder with every limit and timeout of `[server]` (public
/// so that the fuzz harness serves byte streams with exactly these settings).
pub fn http_builder(app: &App) -> Builder<TokioExecutor> {
    let s = &app.config.server;
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(s.header_timeout)
        .max_buf_size(s.max_header_bytes.max(8192))
        .max_headers(s.max_headers);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(s.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(64)
        .max_pending_accept_reset_streams(20)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    builder
}

struct Connection {
    app: Arc<App>,
    builder: Builder<TokioExecutor>,
    /// The current TLS config (swapped whole on SIGHUP; a connection keeps the one it began with).
    tls: Option<Arc<ArcSwap<rustls::ServerConfig>>>,
    stop: watch::Receiver<bool>,
}

impl Connection {
    async fn run(self, stream: TcpStream, peer: SocketAddr) {
        let _ = stream.set_nodelay(true);
        let activity = Activity::new();
        let server = &self.app.config.server;
        match &self.tls {
            None => {
                self.serve_io(IdleIo::new(stream, activity.clone()), peer, activity)
                    .await
            }
            Some(config) => {
                let acceptor = TlsAcceptor::from(config.load_full());
                let handshake = tokio::time::timeout(server.header_timeout, acceptor.accept(stream)).await;
                match handshake {
                    Ok(Ok(tls)) => self.serve_io(IdleIo::new(tls, activity.clone()), peer, activity).await,
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            }
        }
    }

    async fn serve_io<I>(mut self, io: I, peer: SocketAddr, activity: Activity)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let app = self.app.clone();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let counter = in_flight.clone();
        let service = service_fn(move |req| {
            let app = app.clone();
            let guard = InFlight::enter(counter.clone());
            async move {
                let response = crate::pipeline::handle(app, req, peer).await;
                drop(guard);
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        let idle = self.app.config.server.idle_timeout;
        let conn = self.builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(conn);
        let mut closing = false;
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    break;
                }
                _ = self.stop.changed(), if !closing => {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
                () = activity.idle_for(idle, &in_flight), if !closing => {
                    tracing::debug!(%peer, "closing idle connection");
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

/// Counts a request in flight on its connection until dropped.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(counter: Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::AcqRel);
        Self(counter)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
