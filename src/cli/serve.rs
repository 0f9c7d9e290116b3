//! `cpgate serve` and `cpgate emulate`: start-up, signals, reload triggers.
//!
//! SIGHUP reloads policies, signing/verification keys and revocations, and reopens the audit
//! log. The policy folder (notify) and the revocation file (inotify on the file and its
//! folder's new entries, see `revocation_watch`, plus a 1 s poll of the file's metadata as a
//! safety net) are also watched, so a `cpgate token revoke` is in force within a second.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

use super::revocation_watch::RevocationWatch;
use crate::app::App;
use crate::secret::Secret;

/// Runs the gateway until SIGTERM/SIGINT.
pub async fn serve(config_path: &Path) -> anyhow::Result<()> {
    harden_process();
    // Handlers first: once the port accepts connections, SIGTERM drains and SIGHUP reopens
    // (the default actions would kill the process without the final audit sync).
    let signals = Signals::install()?;
    let config = super::load_config(config_path)?;
    let app = Arc::new(App::build(config).await?);
    let listener = TcpListener::bind(app.config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", app.config.server.listen))?;
    let running = start(app, listener).await?;
    running.serve_until_signalled(signals).await
}

/// SIGTERM, SIGINT and SIGHUP streams, installed before the gateway starts.
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Replaces the default actions of SIGTERM, SIGINT and SIGHUP.
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }
}

/// How often the audit chain head is logged (for anchoring it elsewhere).
pub const HEAD_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// A started gateway: its address, and the task that stops and drains its serving threads.
pub struct Running {
    pub app: Arc<App>,
    pub addr: SocketAddr,
    /// The admin listener (`/healthz`, `/readyz`, `/metrics`).
    pub admin_addr: SocketAddr,
    shutdown: tokio::sync::oneshot::Sender<()>,
    admin_shutdown: tokio::sync::oneshot::Sender<()>,
    tls: Option<Arc<ArcSwap<rustls::ServerConfig>>>,
    /// Waits for `shutdown`, then drains and joins the serving threads (`server::Workers`).
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The revocation watcher; stopped with the server so a stopped gateway writes nothing more.
    revocation_watch: tokio::task::JoinHandle<()>,
    /// The shared-store revocation follower (Redis store only); stopped with the server.
    shared_revocations: Option<tokio::task::JoinHandle<()>>,
}

/// Starts serving `app` on `listener` (TLS per config), with reload on policy-folder changes.
pub async fn start(app: Arc<App>, listener: TcpListener) -> anyhow::Result<Running> {
    let server = &app.config.server;
    let tls = match &server.tls {
        Some(files) => {
            let config = crate::tls::server_config(&files.cert, &files.key, server.client_ca.as_deref())?;
            Some(Arc::new(ArcSwap::from_pointee(config)))
        }
        None => {
            tracing::warn!(
                "no tls_cert/tls_key configured: serving plain HTTP; use TLS for anything but loopback tests"
            );
            None
        }
    };
    let addr = listener.local_addr()?;
    let workers = crate::server::Workers::spawn(app.clone(), listener.into_std()?, tls.clone())
        .context("cannot start the serving threads")?;
    let admin = TcpListener::bind(server.admin_listen)
        .await
        .with_context(|| format!("cannot listen on admin_listen {}", server.admin_listen))?;
    let admin_addr = admin.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (admin_tx, admin_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(crate::admin::serve(app.clone(), admin, async {
        let _ = admin_rx.await;
    }));
    tracing::info!(
        %addr,
        %admin_addr,
        tls = tls.is_some(),
        workers = server.workers,
        policies = app.policies.load().len(),
        "cpgate listening"
    );
    watch_policies(app.clone());
    let revocation_watch = watch_revocations(app.clone());
    let shared_revocations = app.follow_shared_revocations();
    // The serving threads run on their own; this task only waits for the stop and drains.
    let task = tokio::spawn(async move {
        let _ = rx.await;
        workers.shutdown().await
    });
    Ok(Running {
        app,
        addr,
        admin_addr,
        shutdown: tx,
        admin_shutdown: admin_tx,
        task,
        tls,
        revocation_watch,
        shared_revocations,
    })
}

impl Running {
    /// Re-reads the certificate and key (SIGHUP, after renewal). New connections use them;
    /// on error the current ones stay in force.
    pub fn reload_tls(&self) -> anyhow::Result<()> {
        let (Some(swap), Some(files)) = (&self.tls, &self.app.config.server.tls) else {
            return Ok(());
        };
        let server = &self.app.config.server;
        let config = crate::tls::server_config(&files.cert, &files.key, server.client_ca.as_deref())?;
        swap.store(Arc::new(config));
        Ok(())
    }

    /// Serves until SIGTERM/SIGINT, reloading policies on SIGHUP.
    pub async fn wait_for_signals(self) -> anyhow::Result<()> {
        let signals = Signals::install()?;
        self.serve_until_signalled(signals).await
    }

    /// [`Running::wait_for_signals`] with handlers installed earlier; logs the audit chain head
    /// every [`HEAD_LOG_INTERVAL`].
    pub async fn serve_until_signalled(self, signals: Signals) -> anyhow::Result<()> {
        let Signals {
            mut term,
            mut int,
            mut hup,
        } = signals;
        let mut head_tick = tokio::time::interval(HEAD_LOG_INTERVAL);
        head_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = head_tick.tick() => log_audit_head(&self.app),
                _ = hup.recv() => {
                    reload(&self.app, "SIGHUP").await;
                    reload_keys(&self.app, "SIGHUP");
                    reload_revocations(&self.app, "SIGHUP").await;
                    if let Err(e) = self.app.audit.reopen().await {
                        tracing::error!(error = %e, "could not reopen the audit log");
                    }
                    match self.reload_tls() {
                        Ok(()) => tracing::info!("TLS certificate reloaded"),
                        Err(e) => tracing::error!(error = %e, "TLS reload failed; the current certificate stays in force"),
                    }
                }
            }
        }
        self.stop().await
    }

    /// Stops accepting, drains, and waits for the serving threads to end.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(());
        let _ = self.admin_shutdown.send(());
        self.revocation_watch.abort();
        if let Some(task) = &self.shared_revocations {
            task.abort();
        }
        self.task.await.context("server task failed")??;
        self.app.audit.sync().await?;
        Ok(())
    }
}

/// Logs the audit chain head (`seq`, hash of the last record's line) so it can be anchored.
fn log_audit_head(app: &App) {
    let (seq, hash) = app.audit.head();
    tracing::info!(audit_seq = seq, audit_head = %hash, write_errors = app.audit.write_errors(), "audit chain head");
}

async fn reload(app: &App, trigger: &str) {
    match app.reload_policies().await {
        Ok(n) => tracing::info!(trigger, policies = n, "policies reloaded"),
        Err(e) => tracing::error!(trigger, errors = %e, "policy reload failed; the previous policies stay in force"),
    }
}

fn reload_keys(app: &App, trigger: &str) {
    match app.reload_keys() {
        Ok(kids) => tracing::info!(trigger, signing_kid = %app.keys().kid(), accepted = ?kids, "keys reloaded"),
        Err(e) => tracing::error!(trigger, error = %e, "key reload failed; the previous keys stay in force"),
    }
}

async fn reload_revocations(app: &App, trigger: &str) {
    match app.reload_revocations().await {
        Ok(0) => tracing::debug!(trigger, "revocations reloaded; nothing new"),
        Ok(n) => tracing::info!(trigger, new = n, "revocations reloaded"),
        Err(e) => tracing::error!(trigger, error = %e, "revocation reload failed; the revocations in force stay"),
    }
}

/// Reloads revocations when the revocation file changes: an inotify watch on the file and on
/// its folder's new entries ([`RevocationWatch`]; not on the folder's writes, which include
/// every audit write), and a 1 s check of its metadata in case the watch is unavailable or
/// misses an event.
fn watch_revocations(app: Arc<App>) -> tokio::task::JoinHandle<()> {
    let path = app.config.tokens.revocations.clone();
    let mut watch = match RevocationWatch::new(&path) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the revocation file; checking it every second");
            None
        }
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut seen = file_stamp(&path);
        // Anything revoked between start-up and the first stamp is picked up here.
        reload_revocations(&app, "start").await;
        loop {
            let event = async {
                match watch.as_mut() {
                    Some(w) => w.changed().await,
                    None => std::future::pending().await,
                }
            };
            let broken = tokio::select! {
                got = event => got.err(),
                _ = tick.tick() => None,
            };
            if let Some(e) = broken {
                tracing::warn!(error = %e, "revocation file watch failed; checking it every second");
                watch = None;
            }
            let stamp = file_stamp(&path);
            if stamp != seen {
                seen = stamp;
                reload_revocations(&app, "revocation file changed").await;
            }
        }
    })
}

/// What identifies a version of a file without reading it: inode, length, modification time.
fn file_stamp(path: &Path) -> Option<(u64, u64, std::time::SystemTime)> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.ino(), meta.len(), meta.modified().ok()?))
}

/// Reloads when the policy folder changes (debounced), from a notify watcher.
fn watch_policies(app: Arc<App>) {
    use notify::Watcher as _;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    let handler = move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = tx.try_send(());
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => return tracing::warn!(error = %e, "cannot watch the policy folder; reload with SIGHUP"),
    };
    if let Err(e) = watcher.watch(&app.config.policies_dir, notify::RecursiveMode::NonRecursive) {
        return tracing::warn!(error = %e, "cannot watch the policy folder; reload with SIGHUP");
    }
    tokio::spawn(async move {
        let _watcher = watcher;
        while rx.recv().await.is_some() {
            // Let an editor or `cp` finish writing before reading the folder.
            tokio::time::sleep(Duration::from_millis(300)).await;
            while rx.try_recv().is_ok() {}
            reload(&app, "policy folder changed").await;
        }
    });
}

/// Core dumps could contain the master token: disable them.
pub fn harden_process() {
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        tracing::warn!(error = %e, "could not disable core dumps (PR_SET_DUMPABLE)");
    }
    if let Err(e) = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0) {
        tracing::warn!(error = %e, "could not set RLIMIT_CORE to 0");
    }
}

/// `cpgate emulate`: the emulated cPanel until Ctrl-C / SIGTERM.
pub async fn emulate(listen: SocketAddr, user: String, token: Secret) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    println!("cpanel emulator listening on http://{}", listener.local_addr()?);
    let mut term = signal(SignalKind::terminate())?;
    crate::emulate::serve(listener, user, token, async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    })
    .await?;
    Ok(())
}
