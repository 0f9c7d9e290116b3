//! Idle-connection detection: the last time a connection did I/O (stamped by `connio::ConnIo`),
//! and a future that resolves once it has had no I/O and no request in flight for a while.
//!
//! hyper's own `header_read_timeout` covers a slow request head; this covers keep-alive
//! connections that just sit there, over HTTP/1 and HTTP/2 alike.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

/// The last time a connection did I/O, shared between the I/O wrapper and its watchdog.
#[derive(Clone, Debug)]
pub struct Activity {
    origin: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Activity {
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn touch(&self) {
        let now = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(now, Ordering::Relaxed);
    }

    /// The last time the connection did I/O.
    pub fn last(&self) -> Instant {
        self.origin + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }

    /// Resolves once there was no I/O for `idle` while `in_flight` was zero.
    pub async fn idle_for(&self, idle: Duration, in_flight: &AtomicUsize) {
        loop {
            let deadline = self.last() + idle;
            tokio::time::sleep_until(deadline).await;
            if in_flight.load(Ordering::Acquire) == 0 && self.last() + idle <= Instant::now() {
                return;
            }
            if in_flight.load(Ordering::Acquire) > 0 {
                // A request is waiting on cPanel; look again later.
                self.touch();
            }
        }
    }
}

impl Default for Activity {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_resolves_only_after_the_quiet_period() {
        let activity = Activity::new();
        activity.touch();
        let in_flight = AtomicUsize::new(0);
        let started = tokio::time::Instant::now();
        activity.idle_for(Duration::from_secs(60), &in_flight).await;
        assert!(started.elapsed() >= Duration::from_secs(60));
    }
}
