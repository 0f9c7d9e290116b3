//! Listeners: accept, cap concurrent connections, TLS, HTTP/1.1 + HTTP/2, timeouts, graceful
//! drain; the admin listener; reload on SIGHUP and on policy-folder changes.
//!
//! The public listener is served thread per core, like nginx: [`Workers`] runs `server.workers`
//! OS threads, each with its own single-threaded tokio runtime and its own accept loop on a
//! copy of the listening socket. A connection, and every task spawned while serving it (HTTP/2
//! streams, the upstream connection of `forward.rs`), stays on the thread that accepted it: no
//! work stealing, no wake-ups across threads on the request path.
//!
//! Every cheap-to-trigger limit (connection cap, TLS handshake and header timeouts) applies
//! before any token or policy work. Never: a panic on network input, a connection without a
//! deadline. Invariants: `max_connections` caps the connections of all threads together (one
//! semaphore); a connection is accepted only while its thread is not stopping.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::app::App;
use crate::connio::{ConnIo, Counted, InFlight, Shared};
use crate::idle::Activity;

/// How long in-flight requests get to finish after SIGTERM/SIGINT.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The threads serving the public listener, from [`Workers::spawn`] until
/// [`Workers::shutdown`]. Dropped without a shutdown, the threads stop at once, closing their
/// connections.
pub struct Workers {
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Turned true to stop accepting and to close connections once their requests are answered.
    stop: watch::Sender<bool>,
    /// Turned true once the drain is over: the threads then end, dropping what is left.
    end: watch::Sender<bool>,
    /// One permit per open connection, across all threads.
    slots: Arc<Semaphore>,
    max_connections: usize,
}

impl Workers {
    /// Serves `listener` (TLS per `tls`) on `app.config.server.workers` threads named
    /// `cpgate-worker-N`.
    pub fn spawn(
        app: Arc<App>,
        listener: std::net::TcpListener,
        tls: Option<Arc<ArcSwap<rustls::ServerConfig>>>,
    ) -> std::io::Result<Workers> {
        let server = &app.config.server;
        let (stop, _) = watch::channel(false);
        let (end, _) = watch::channel(false);
        let mut workers = Workers {
            threads: Vec::with_capacity(server.workers),
            stop,
            end,
            slots: Arc::new(Semaphore::new(server.max_connections)),
            max_connections: server.max_connections,
        };
        let builders = Arc::new(Builders {
            auto: http_builder(&app),
            h1: http1_builder(&app),
        });
        for index in 0..server.workers.max(1) {
            let copy = listener.try_clone()?;
            copy.set_nonblocking(true)?;
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            // Registered with this thread's runtime: this copy's readiness wakes only this thread.
            let copy = {
                let _entered = runtime.enter();
                TcpListener::from_std(copy)?
            };
            let worker = Worker {
                index,
                app: app.clone(),
                builders: builders.clone(),
                tls: tls.clone(),
                slots: workers.slots.clone(),
                stop: workers.stop.subscribe(),
                end: workers.end.subscribe(),
            };
            let thread = std::thread::Builder::new()
                .name(format!("cpgate-worker-{index}"))
                .spawn(move || {
                    crate::worker::set_index(index);
                    runtime.block_on(worker.run(copy));
                })?;
            workers.threads.push(thread);
        }
        Ok(workers)
    }

    /// Stops accepting on every thread (each closes its copy of the listening socket, so a
    /// connection attempt during the drain is refused at once instead of waiting, unaccepted,
    /// in the kernel's queue), gives in-flight connections [`DRAIN_TIMEOUT`] to finish, then
    /// ends the threads and waits for them.
    pub async fn shutdown(self) -> std::io::Result<()> {
        tracing::info!("shutting down: no new connections, draining in-flight requests");
        let _ = self.stop.send(true);
        let all = u32::try_from(self.max_connections).unwrap_or(u32::MAX);
        match tokio::time::timeout(DRAIN_TIMEOUT, self.slots.acquire_many(all)).await {
            Ok(_) => tracing::info!("drained"),
            Err(_) => tracing::warn!("drain timed out; closing remaining connections"),
        }
        let _ = self.end.send(true);
        let threads = self.threads;
        let panicked = tokio::task::spawn_blocking(move || {
            threads
                .into_iter()
                .map(std::thread::JoinHandle::join)
                .filter(Result::is_err)
                .count()
        })
        .await
        .map_err(std::io::Error::other)?;
        if panicked > 0 {
            return Err(std::io::Error::other(format!("{panicked} serving thread(s) panicked")));
        }
        Ok(())
    }
}

/// One serving thread: its accept loop, and the connections it accepted.
struct Worker {
    index: usize,
    app: Arc<App>,
    builders: Arc<Builders>,
    tls: Option<Arc<ArcSwap<rustls::ServerConfig>>>,
    slots: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
    end: watch::Receiver<bool>,
}

impl Worker {
    /// Accepts until stopped, then keeps the thread's connections running until the end.
    async fn run(mut self, listener: TcpListener) {
        let accepted_here = self.app.metrics.worker_connections(self.index);
        loop {
            tokio::select! {
                // Stopped, or the `Workers` handle was dropped.
                _ = self.stop.changed() => break,
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
                    let Ok(permit) = self.slots.clone().try_acquire_owned() else {
                        tracing::debug!(%peer, "connection refused: max_connections reached");
                        drop(stream);
                        continue;
                    };
                    accepted_here.inc();
                    let conn = Connection {
                        app: self.app.clone(),
                        builders: self.builders.clone(),
                        tls: self.tls.clone(),
                        stop: self.stop.clone(),
                    };
                    // A task of this thread's runtime: the connection never leaves the thread.
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
        drop(listener);
        let _ = self.end.wait_for(|ended| *ended).await;
    }
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
        .max_buf_size(max_head(s))
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

/// The largest request head hyper buffers (it needs at least 8 KiB), and so the largest the
/// framing tracker follows.
fn max_head(s: &crate::config::ServerConfig) -> usize {
    s.max_header_bytes.max(8192)
}

/// The HTTP/1 builder of plain-TCP connections, with the same limits as [`http_builder`].
fn http1_builder(app: &App) -> http1::Builder {
    let s = &app.config.server;
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(s.header_timeout)
        .max_buf_size(max_head(s))
        .max_headers(s.max_headers);
    builder
}

/// The connection builders, shared by every connection of a listener.
struct Builders {
    /// HTTP/1 + HTTP/2: TLS connections and plain-TCP HTTP/2.
    auto: Builder<TokioExecutor>,
    /// Plain-TCP HTTP/1, run by run.
    h1: http1::Builder,
}

struct Connection {
    app: Arc<App>,
    builders: Arc<Builders>,
    /// The current TLS config (swapped whole on SIGHUP; a connection keeps the one it began with).
    tls: Option<Arc<ArcSwap<rustls::ServerConfig>>>,
    stop: watch::Receiver<bool>,
}

impl Connection {
    async fn run(self, stream: TcpStream, peer: SocketAddr) {
        let _ = stream.set_nodelay(true);
        let activity = Activity::new();
        let shared = Arc::new(Shared::default());
        // The TLS and HTTP/2 paths are boxed: a task's future is as large as its largest
        // path, and the plain HTTP/1 path is the one that sits parked by the thousand.
        match self.tls.clone() {
            None => self.serve_plain(stream, peer, activity, shared).await,
            Some(config) => Box::pin(self.serve_tls(config, stream, peer, activity, shared)).await,
        }
    }

    async fn serve_tls(
        self,
        config: Arc<ArcSwap<rustls::ServerConfig>>,
        stream: TcpStream,
        peer: SocketAddr,
        activity: Activity,
        shared: Arc<Shared>,
    ) {
        let max_head = max_head(&self.app.config.server);
        let acceptor = TlsAcceptor::from(config.load_full());
        let handshake = tokio::time::timeout(self.app.config.server.header_timeout, acceptor.accept(stream)).await;
        match handshake {
            Ok(Ok(tls)) => {
                let io = ConnIo::new(tls, activity.clone(), shared.clone(), max_head);
                self.serve_io(io, peer, activity, shared).await;
            }
            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
        }
    }

    /// Plain TCP: HTTP/1 in runs of hyper. A run ends (`ConnIo`) once the connection has been
    /// quiet for [`PARK_AFTER`] with every request answered; between runs the socket is parked
    /// with none of hyper's buffers until the client sends again. A client that opens with the
    /// HTTP/2 preface is served by the auto builder.
    async fn serve_plain(mut self, stream: TcpStream, peer: SocketAddr, activity: Activity, shared: Arc<Shared>) {
        let max_head = max_head(&self.app.config.server);
        let idle = self.app.config.server.idle_timeout;
        let mut io = ConnIo::new(stream, activity.clone(), shared.clone(), max_head).park_when_idle();
        let mut first = true;
        loop {
            // Parked: waits for the client's next bytes (peeked, not read) or the idle timeout.
            let mut head = [0u8; PREFACE.len()];
            let metrics = &self.app.metrics;
            let parked = !first;
            if parked {
                metrics.connection_parked(true);
            }
            let peeked = tokio::select! {
                peeked = io.get_ref().peek(&mut head) => Some(peeked),
                () = tokio::time::sleep_until(activity.last() + idle) => {
                    tracing::debug!(%peer, "closing idle connection");
                    None
                }
                _ = self.stop.changed() => None,
            };
            if parked {
                metrics.connection_parked(false);
            }
            let n = match peeked {
                Some(Ok(n)) if n > 0 => n,
                _ => return,
            };
            if first && (PREFACE.starts_with(&head[..n]) || head[..n].starts_with(PREFACE)) {
                // HTTP/2 with prior knowledge (or too few bytes to tell): the auto builder.
                let io = ConnIo::new(io.into_inner(), activity.clone(), shared.clone(), max_head);
                return Box::pin(self.serve_io(io, peer, activity, shared)).await;
            }
            first = false;
            // Boxed: hyper's state and the run's timers exist only for the run, never in the
            // parked task.
            match Box::pin(self.run_h1(io, peer, &activity, &shared)).await {
                Some(back) => io = back,
                None => return,
            }
        }
    }

    /// One run of hyper over a plain-TCP HTTP/1 connection; gives the socket back if the
    /// connection may be parked, `None` if it is finished.
    async fn run_h1(
        &mut self,
        io: ConnIo<TcpStream>,
        peer: SocketAddr,
        activity: &Activity,
        shared: &Arc<Shared>,
    ) -> Option<ConnIo<TcpStream>> {
        let idle = self.app.config.server.idle_timeout;
        let service = service(self.app.clone(), peer, shared.clone());
        let mut conn = self.builders.h1.serve_connection(TokioIo::new(io), service);
        let mut closing = *self.stop.borrow();
        if closing {
            Pin::new(&mut conn).graceful_shutdown();
        }
        shared.park.store(false, Ordering::Release);
        let mut parking = false;
        let ended = loop {
            tokio::select! {
                result = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => break result,
                // Quiet for a moment: end the run at the next idle read (`ConnIo`). A busy
                // connection keeps its run, and hyper's buffers, between requests.
                () = activity.idle_for(PARK_AFTER, &shared.in_flight), if !parking => {
                    shared.park.store(true, Ordering::Release);
                    parking = true;
                }
                _ = self.stop.changed(), if !closing => {
                    Pin::new(&mut conn).graceful_shutdown();
                    closing = true;
                }
                () = activity.idle_for(idle, &shared.in_flight), if !closing => {
                    tracing::debug!(%peer, "closing idle connection");
                    Pin::new(&mut conn).graceful_shutdown();
                    closing = true;
                }
            }
        };
        if let Err(e) = ended {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
            return None;
        }
        let parts = conn.into_parts();
        let mut io = parts.io.into_inner();
        // Only a run that `ConnIo` ended as idle may be parked; hyper ends one by itself when
        // the connection must close (`Connection: close`, HTTP/1.0, a framing refusal).
        if closing || !io.parked() || io.peer_closed() || shared.violation.get().is_some() {
            return None;
        }
        io.unread(parts.read_buf);
        Some(io)
    }

    async fn serve_io<I>(mut self, io: ConnIo<I>, peer: SocketAddr, activity: Activity, shared: Arc<Shared>)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let service = service(self.app.clone(), peer, shared.clone());
        let idle = self.app.config.server.idle_timeout;
        let conn = self.builders.auto.serve_connection(TokioIo::new(io), service);
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
                () = activity.idle_for(idle, &shared.in_flight), if !closing => {
                    tracing::debug!(%peer, "closing idle connection");
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

/// A response in the making (boxed: hyper's `poll_without_shutdown` needs an `Unpin` future).
type Answer = Pin<Box<dyn Future<Output = Result<Response<Counted>, Infallible>> + Send>>;

/// The service of one connection: the pipeline, with the connection's framing violation (if
/// any) attached to the request and each response counted in flight until sent.
fn service(
    app: Arc<App>,
    peer: SocketAddr,
    shared: Arc<Shared>,
) -> impl hyper::service::Service<Request<Incoming>, Response = Response<Counted>, Error = Infallible, Future = Answer> + Clone
{
    service_fn(move |mut req: Request<Incoming>| {
        let app = app.clone();
        let in_flight = InFlight::enter(shared.clone());
        if let Some(v) = shared.violation.get() {
            req.extensions_mut().insert(*v);
        }
        Box::pin(async move {
            let response = crate::pipeline::handle(app, req, peer).await;
            Ok::<_, Infallible>(response.map(|body| Counted::new(body, in_flight)))
        }) as Answer
    })
}

/// How long a plain-TCP HTTP/1 connection must be quiet before it is parked.
const PARK_AFTER: Duration = Duration::from_millis(250);

/// The start of the HTTP/2 connection preface (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0";
