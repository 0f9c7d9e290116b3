//! The I/O under every client connection, between the socket and hyper.
//!
//! [`ConnIo`] stamps [`Activity`] for the idle timeout, shows every byte read to the framing
//! [`Tracker`] (so that a request hyper would normalise is refused, see `framing.rs`), and on
//! plain-TCP HTTP/1 connections ends hyper's run with an end-of-file once the connection is
//! idle: it has been quiet for a moment (`Shared::park`), every byte read belongs to a request
//! that has been answered in full, and the socket has nothing more to read. `server.rs` then takes the socket back and parks it without
//! hyper's read and write buffers (about 16 KiB per connection) until the client speaks again.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::framing::{Tracker, Violation};
use crate::idle::Activity;

/// What a connection's I/O and its service share.
#[derive(Debug, Default)]
pub struct Shared {
    /// Requests received whose response has not been handed back in full.
    pub in_flight: AtomicUsize,
    /// The first framing violation seen on the connection.
    pub violation: OnceLock<Violation>,
    /// Set by `server.rs` once the connection has been quiet for a moment: the next idle read
    /// ends hyper's run (only with [`ConnIo::park_when_idle`]).
    pub park: AtomicBool,
}

/// See the module docs.
pub struct ConnIo<T> {
    inner: T,
    activity: Activity,
    tracker: Tracker,
    shared: Arc<Shared>,
    /// End hyper's run with an end-of-file when idle (plain-TCP HTTP/1 only).
    park_when_idle: bool,
    /// Bytes hyper had read but not used when its run ended; handed back first.
    unread: Bytes,
    /// The client closed its side.
    peer_closed: bool,
    /// This I/O ended hyper's run with its end-of-file (the connection may be parked).
    parked: bool,
}

impl<T> ConnIo<T> {
    pub fn new(inner: T, activity: Activity, shared: Arc<Shared>, max_head: usize) -> Self {
        Self {
            inner,
            activity,
            tracker: Tracker::new(max_head),
            shared,
            park_when_idle: false,
            unread: Bytes::new(),
            peer_closed: false,
            parked: false,
        }
    }

    /// Ends each hyper run with an end-of-file once idle (see the module docs).
    pub fn park_when_idle(mut self) -> Self {
        self.park_when_idle = true;
        self
    }

    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    pub fn into_inner(self) -> T {
        self.inner
    }

    /// Gives back the bytes hyper read and did not use (normally none). They are copied: the
    /// `Bytes` hyper returns keeps its whole read buffer alive, even when empty.
    pub fn unread(&mut self, bytes: Bytes) {
        self.parked = false;
        self.unread = if bytes.is_empty() {
            Bytes::new()
        } else {
            Bytes::copy_from_slice(&bytes)
        };
    }

    /// True once the client closed its side: there is nothing to park.
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// True if hyper's last run ended because this I/O reported the connection idle, rather
    /// than by hyper's own decision to close (`Connection: close`, HTTP/1.0, an error).
    /// Cleared by [`ConnIo::unread`], which starts the next run.
    pub fn parked(&self) -> bool {
        self.parked
    }

    fn idle(&self) -> bool {
        self.park_when_idle
            && self.shared.park.load(Ordering::Acquire)
            && self.unread.is_empty()
            && self.tracker.at_boundary()
            && self.shared.in_flight.load(Ordering::Acquire) == 0
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ConnIo<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.unread.is_empty() {
            // Already shown to the tracker when first read.
            let n = this.unread.len().min(buf.remaining());
            buf.put_slice(&this.unread[..n]);
            this.unread.advance(n);
            return Poll::Ready(Ok(()));
        }
        let idle = this.idle();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            // Nothing to read and nothing owed: an end-of-file ends hyper's run cleanly.
            Poll::Pending if idle => {
                this.parked = true;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Ok(())) => {
                let new = &buf.filled()[before..];
                if new.is_empty() {
                    this.peer_closed = true;
                } else {
                    this.activity.touch();
                    this.tracker.feed(new);
                    if let Some(v) = this.tracker.violation() {
                        let _ = this.shared.violation.set(v);
                    }
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ConnIo<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Counts a request in flight on its connection until dropped: held by the response body, so
/// a response counts until hyper has taken its last byte.
#[derive(Debug)]
pub struct InFlight(Arc<Shared>);

impl InFlight {
    pub fn enter(shared: Arc<Shared>) -> Self {
        shared.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(shared)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted in flight until hyper drops it.
pub struct Counted {
    inner: crate::body::Body,
    _in_flight: InFlight,
}

impl Counted {
    pub fn new(inner: crate::body::Body, in_flight: InFlight) -> Self {
        Self {
            inner,
            _in_flight: in_flight,
        }
    }
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = crate::body::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    fn parked_io() -> (ConnIo<DuplexStream>, DuplexStream, Arc<Shared>) {
        let (server, client) = tokio::io::duplex(4096);
        let shared = Arc::new(Shared::default());
        let io = ConnIo::new(server, Activity::new(), shared.clone(), 8192).park_when_idle();
        shared.park.store(true, Ordering::Release);
        (io, client, shared)
    }

    /// One read that must not wait: `Some(n)` bytes (0 = end of file), `None` if it would wait.
    fn read_now(io: &mut ConnIo<DuplexStream>) -> Option<usize> {
        let mut buf = [0u8; 256];
        io.read(&mut buf).now_or_never().map(|r| r.unwrap_or(0))
    }

    #[tokio::test]
    async fn idle_at_a_message_boundary_reads_as_end_of_file() {
        let (mut io, mut client, _) = parked_io();
        client.write_all(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
        assert!(matches!(read_now(&mut io), Some(n) if n > 0));
        assert_eq!(
            read_now(&mut io),
            Some(0),
            "answered and nothing more to read: end of run"
        );
        assert!(!io.peer_closed(), "the client is still there");
    }

    #[tokio::test]
    async fn a_partial_head_or_body_is_never_taken_for_idle() {
        let (mut io, mut client, _) = parked_io();
        client.write_all(b"GET /a HTTP/1.1\r\nHost:").await.unwrap();
        assert!(matches!(read_now(&mut io), Some(n) if n > 0));
        assert_eq!(read_now(&mut io), None, "mid-head: wait for the rest");
        client
            .write_all(b" a\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 5\r\n\r\nab")
            .await
            .unwrap();
        assert!(matches!(read_now(&mut io), Some(n) if n > 0));
        assert_eq!(read_now(&mut io), None, "mid-body: wait for the rest");
    }

    #[tokio::test]
    async fn a_request_in_flight_is_never_idle() {
        let (mut io, mut client, shared) = parked_io();
        client.write_all(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
        assert!(matches!(read_now(&mut io), Some(n) if n > 0));
        let answering = InFlight::enter(shared.clone());
        assert_eq!(read_now(&mut io), None, "the response is still owed");
        drop(answering);
        assert_eq!(read_now(&mut io), Some(0));
    }

    #[tokio::test]
    async fn unread_bytes_are_handed_back_first_and_a_closed_peer_is_seen() {
        let (mut io, client, _) = parked_io();
        io.unread(Bytes::from_static(b"\r\n"));
        assert_eq!(read_now(&mut io), Some(2));
        drop(client);
        assert_eq!(read_now(&mut io), Some(0));
        assert!(io.peer_closed());
        assert!(!io.parked(), "a real end-of-file is not a park");
    }

    #[tokio::test]
    async fn a_busy_connection_is_not_parked_until_it_has_been_quiet() {
        let (mut io, mut client, shared) = parked_io();
        shared.park.store(false, Ordering::Release);
        client.write_all(b"GET /a HTTP/1.1\r\n\r\n").await.unwrap();
        assert!(matches!(read_now(&mut io), Some(n) if n > 0));
        assert_eq!(read_now(&mut io), None, "the next request may come at once");
        shared.park.store(true, Ordering::Release);
        assert_eq!(read_now(&mut io), Some(0));
    }

    #[tokio::test]
    async fn without_parking_idle_reads_wait() {
        let (server, mut client) = tokio::io::duplex(4096);
        let mut io = ConnIo::new(server, Activity::new(), Arc::new(Shared::default()), 8192);
        client.write_all(b"GET /a HTTP/1.1\r\n\r\n").await.unwrap();
        assert!(matches!(read_now(&mut io), Some(n) if n > 0));
        assert_eq!(read_now(&mut io), None);
    }

    #[tokio::test]
    async fn a_framing_violation_is_shared_with_the_service() {
        let (mut io, mut client, shared) = parked_io();
        client
            .write_all(b"POST /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx")
            .await
            .unwrap();
        assert!(matches!(read_now(&mut io), Some(n) if n > 0));
        assert_eq!(shared.violation.get(), Some(&Violation::RepeatedContentLength));
    }
}
