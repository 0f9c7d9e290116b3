//! The emulated cPanel server (`cpgate emulate`): UAPI and API 2 on cPanel's wire rules, with
//! in-memory state, for demos, docker-compose and tests.
//!
//! Shares only the wire model (`classify`) with the proxy. Answers 401 to a wrong master token.
//! STUB: owned by the emulator work; signatures are the contract with the rest of the crate.

use std::future::Future;

use tokio::net::TcpListener;

use crate::secret::Secret;

/// Serves the emulator on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    user: String,
    token: Secret,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let _ = (listener, user, token);
    shutdown.await;
    Ok(())
}
