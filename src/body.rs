//! Response bodies: the one boxed body type, and the streaming guard that cuts a response the
//! moment the master token appears in it.
//!
//! Invariant: no byte of a chunk that completes a match of the master token is ever yielded.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use memchr::memmem::Finder;

/// Errors inside bodies (boxed: client disconnects, upstream resets, the token guard).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every response cpgate sends.
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// A complete body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}

/// True if `haystack` contains `needle` (non-empty).
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    // The length check first: most response headers are shorter than the master token, and
    // building a searcher costs more than the search.
    !needle.is_empty() && haystack.len() >= needle.len() && Finder::new(needle).find(haystack).is_some()
}

/// The master token was found in an upstream body: the stream is cut.
#[derive(Debug, thiserror::Error)]
#[error("upstream response contained the master credential; connection cut")]
pub struct SecretInBody;

/// Wraps an upstream body, scanning it for `secret` and holding back the last
/// `secret.len() - 1` bytes until the next chunk shows they do not start the secret, so not even
/// a prefix of it is ever yielded. On a match it yields [`SecretInBody`] and stops.
/// Calls `on_end(bytes, ok)` once when the body ends, fails or is dropped.
pub struct Guarded<B, F: FnOnce(u64, bool)> {
    inner: Pin<Box<B>>,
    finder: Finder<'static>,
    /// Bytes received but not yet yielded (a possible start of the secret).
    held: Vec<u8>,
    bytes: u64,
    done: bool,
    on_end: Option<F>,
}

impl<B, F: FnOnce(u64, bool)> Guarded<B, F> {
    pub fn new(inner: B, secret: &[u8], on_end: F) -> Self {
        Self {
            inner: Box::pin(inner),
            finder: Finder::new(secret).into_owned(),
            held: Vec::new(),
            bytes: 0,
            done: false,
            on_end: Some(on_end),
        }
    }

    fn finish(&mut self, ok: bool) {
        self.done = true;
        if let Some(f) = self.on_end.take() {
            f(self.bytes, ok);
        }
    }

    /// Appends `chunk` to the held bytes; returns what can be yielded now, or `None` on a match.
    fn admit(&mut self, chunk: &[u8]) -> Option<Bytes> {
        self.held.extend_from_slice(chunk);
        if self.finder.find(&self.held).is_some() {
            return None;
        }
        let keep = self.finder.needle().len().saturating_sub(1);
        let split = self.held.len().saturating_sub(keep);
        let rest = self.held.split_off(split);
        let ready = std::mem::replace(&mut self.held, rest);
        self.bytes += ready.len() as u64;
        Some(Bytes::from(ready))
    }

    /// At the end of the stream: whatever is still held, then the end.
    fn flush(&mut self) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.held.is_empty() {
            self.finish(true);
            return Poll::Ready(None);
        }
        let rest = std::mem::take(&mut self.held);
        self.bytes += rest.len() as u64;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(rest)))))
    }
}

impl<B, F> HttpBody for Guarded<B, F>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
    F: FnOnce(u64, bool) + Unpin,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            return match this.inner.as_mut().poll_frame(cx) {
                Poll::Pending => Poll::Pending,
                // Trailers are not relayed: cPanel sends none, and they could carry anything.
                Poll::Ready(None) => this.flush(),
                Poll::Ready(Some(Err(e))) => {
                    this.finish(false);
                    Poll::Ready(Some(Err(e.into())))
                }
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Err(_trailers) => this.flush(),
                    Ok(data) => match this.admit(&data) {
                        None => {
                            this.finish(false);
                            Poll::Ready(Some(Err(Box::new(SecretInBody))))
                        }
                        Some(ready) if ready.is_empty() => continue,
                        Some(ready) => Poll::Ready(Some(Ok(Frame::data(ready)))),
                    },
                },
            };
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B, F: FnOnce(u64, bool)> Drop for Guarded<B, F> {
    fn drop(&mut self) {
        self.finish(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;
    use http_body_util::StreamBody;
    use std::sync::{Arc, Mutex};

    fn chunks(parts: &[&'static str]) -> impl HttpBody<Data = Bytes, Error = BoxError> {
        let frames: Vec<Result<Frame<Bytes>, BoxError>> = parts
            .iter()
            .map(|p| Ok(Frame::data(Bytes::from_static(p.as_bytes()))))
            .collect();
        StreamBody::new(stream::iter(frames))
    }

    #[tokio::test]
    async fn master_token_split_across_chunks_cuts_the_stream() {
        let ended = Arc::new(Mutex::new(None));
        let seen = ended.clone();
        let body = Guarded::new(
            chunks(&["{\"a\":\"MASTER", "TOKEN\"}"]),
            b"MASTERTOKEN",
            move |n, ok| {
                *seen.lock().unwrap() = Some((n, ok));
            },
        );
        let result = body.collect().await;
        assert!(result.is_err());
        assert_eq!(
            *ended.lock().unwrap(),
            Some((2, false)),
            "not even a prefix of the token was yielded"
        );
    }

    #[tokio::test]
    async fn clean_bodies_pass_unchanged_and_report_their_size() {
        let ended = Arc::new(Mutex::new(None));
        let seen = ended.clone();
        let body = Guarded::new(chunks(&["{\"status\":", "1}"]), b"MASTERTOKEN", move |n, ok| {
            *seen.lock().unwrap() = Some((n, ok));
        });
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"{\"status\":1}");
        assert_eq!(*ended.lock().unwrap(), Some((12, true)));
    }
}
