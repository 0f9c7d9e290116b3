//! `cpgate serve` and `cpgate emulate`: start-up, signals, reload triggers.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio_rustls::TlsAcceptor;

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

/// A started gateway: its address and the task serving it.
pub struct Running {
    pub app: Arc<App>,
    pub addr: SocketAddr,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Starts serving `app` on `listener` (TLS per config), with reload on policy-folder changes.
pub async fn start(app: Arc<App>, listener: TcpListener) -> anyhow::Result<Running> {
    let server = &app.config.server;
    let tls = match &server.tls {
        Some(files) => {
            let config = crate::tls::server_config(&files.cert, &files.key, server.client_ca.as_deref())?;
            Some(TlsAcceptor::from(Arc::new(config)))
        }
        None => {
            tracing::warn!(
                "no tls_cert/tls_key configured: serving plain HTTP; use TLS for anything but loopback tests"
            );
            None
        }
    };
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tracing::info!(
        %addr,
        tls = tls.is_some(),
        policies = app.policies.load().len(),
        "cpgate listening"
    );
    watch_policies(app.clone());
    let task = tokio::spawn(crate::server::serve(app.clone(), listener, tls, async {
        let _ = rx.await;
    }));
    Ok(Running {
        app,
        addr,
        shutdown: tx,
        task,
    })
}

impl Running {
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
                    if let Err(e) = self.app.audit.reopen().await {
                        tracing::error!(error = %e, "could not reopen the audit log");
                    }
                }
            }
        }
        self.stop().await
    }

    /// Stops accepting, drains, and waits for the listener task.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(());
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
