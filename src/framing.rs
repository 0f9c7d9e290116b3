//! A second look at the raw HTTP/1 byte stream of a connection, alongside hyper.
//!
//! hyper normalises two framing ambiguities before the application sees a request: it drops
//! `Content-Length` when `Transfer-Encoding` is present, and merges repeated identical
//! `Content-Length` fields. Both are what request smuggling is built from, and security.md §2
//! wants them refused with 400, so the [`Tracker`] reads every request head as it passes by,
//! counts those fields itself and reports a [`Violation`].
//!
//! To find the next head it follows each message's body framing exactly as hyper's decoder
//! does (a `Content-Length` count or the chunked coding with its trailers). That also tells
//! when every byte read so far belongs to a complete request — [`Tracker::at_boundary`] — which
//! is what lets an idle keep-alive connection be parked without hyper's buffers
//! (`crate::connio`).
//!
//! The tracker never decides framing for hyper: on anything it cannot follow (a malformed head
//! or chunk, an HTTP/2 preface, a head beyond the size cap) it stops following and stays off
//! for the rest of the connection, and hyper's own parser has the final word.

use memchr::memchr_iter;

/// A request head that hyper would accept but security.md §2 refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violation {
    ContentLengthWithTransferEncoding,
    RepeatedContentLength,
}

impl Violation {
    /// The reason given in the 400 refusal and the audit record.
    pub fn reason(self) -> &'static str {
        match self {
            Violation::ContentLengthWithTransferEncoding => "both Content-Length and Transfer-Encoding",
            Violation::RepeatedContentLength => "more than one Content-Length header",
        }
    }
}

/// Where in the byte stream the tracker is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Between messages or inside a head (the head's bytes so far are in `Tracker::head`).
    Head,
    /// Inside a `Content-Length` body: bytes left.
    Body(u64),
    /// Inside a chunked body.
    Chunked(Chunk),
    /// Not following any more (see the module docs).
    Off,
}

/// The chunked decoder's states, as hyper's `ChunkedState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    Start,
    Size(u64),
    SizeLws(u64),
    Extension(u64),
    SizeLf(u64),
    Data(u64),
    DataCr,
    DataLf,
    EndCr,
    Trailer,
    TrailerLf,
    EndLf,
}

/// Follows one connection's request stream. See the module docs.
#[derive(Debug)]
pub struct Tracker {
    state: State,
    /// The bytes of a head that arrived over more than one read; empty otherwise.
    head: Vec<u8>,
    /// A head longer than this is left to hyper (which answers 431).
    max_head: usize,
    violation: Option<Violation>,
}

impl Tracker {
    pub fn new(max_head: usize) -> Self {
        Self {
            state: State::Head,
            head: Vec::new(),
            max_head,
            violation: None,
        }
    }

    /// The first violation seen on this connection, if any.
    pub fn violation(&self) -> Option<Violation> {
        self.violation
    }

    /// True when every byte seen so far belongs to a complete request (leading empty lines
    /// excepted, as hyper skips them too).
    pub fn at_boundary(&self) -> bool {
        self.state == State::Head && self.head.is_empty()
    }

    /// Takes the next bytes read from the client.
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            data = match self.state {
                State::Off => return,
                State::Head => self.head_bytes(data),
                State::Body(left) => {
                    let n = left.min(data.len() as u64);
                    self.state = if n == left { State::Head } else { State::Body(left - n) };
                    // n <= data.len(), so the cast is lossless.
                    &data[n as usize..]
                }
                State::Chunked(chunk) => self.chunk_bytes(chunk, data),
            };
        }
    }

    fn head_bytes<'d>(&mut self, data: &'d [u8]) -> &'d [u8] {
        let data = if self.head.is_empty() {
            let start = data
                .iter()
                .position(|&b| b != b'\r' && b != b'\n')
                .unwrap_or(data.len());
            let data = &data[start..];
            if let Some(end) = head_end(data, 0) {
                self.analyse(&data[..end]);
                return &data[end..];
            }
            data
        } else {
            data
        };
        if data.is_empty() {
            return data;
        }
        let from = self.head.len().saturating_sub(2);
        self.head.extend_from_slice(data);
        match head_end(&self.head, from) {
            Some(end) => {
                let rest = self.head.len() - end;
                let head = std::mem::take(&mut self.head);
                self.analyse(&head[..end]);
                &data[data.len() - rest..]
            }
            None => {
                if self.head.len() > self.max_head {
                    self.off();
                }
                &[]
            }
        }
    }

    /// Reads a complete head and sets the body state that follows it.
    fn analyse(&mut self, head: &[u8]) {
        if head.len() > self.max_head {
            return self.off();
        }
        let mut lines = head.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        let Some(request_line) = lines.next() else {
            return self.off();
        };
        let http11 = match request_line.rsplit(|&b| b == b' ').next() {
            Some(b"HTTP/1.1") => true,
            Some(b"HTTP/1.0") => false,
            _ => return self.off(),
        };
        let (mut cl_fields, mut te_fields) = (0usize, 0usize);
        let (mut length, mut chunked) = (None, false);
        for line in lines {
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
            if name.eq_ignore_ascii_case(b"content-length") {
                cl_fields += 1;
                length = parse_length(value);
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                te_fields += 1;
                chunked = last_coding_is_chunked(value);
            }
        }
        let violation = if cl_fields > 0 && te_fields > 0 {
            Some(Violation::ContentLengthWithTransferEncoding)
        } else if cl_fields > 1 {
            Some(Violation::RepeatedContentLength)
        } else {
            None
        };
        if let Some(v) = violation {
            self.violation.get_or_insert(v);
            return self.off();
        }
        self.state = match (te_fields, length) {
            (0, _) if cl_fields == 0 => State::Head,
            (0, Some(0)) => State::Head,
            (0, Some(n)) => State::Body(n),
            // hyper refuses these itself: an invalid length, TE on HTTP/1.0, TE not ending in chunked.
            (0, None) => return self.off(),
            _ if !http11 || !chunked => return self.off(),
            _ => State::Chunked(Chunk::Start),
        };
    }

    fn chunk_bytes<'d>(&mut self, mut chunk: Chunk, data: &'d [u8]) -> &'d [u8] {
        let mut i = 0;
        while i < data.len() {
            if let Chunk::Data(left) = chunk {
                let n = left.min((data.len() - i) as u64);
                // n <= data.len() - i, so the cast is lossless.
                i += n as usize;
                chunk = if n == left {
                    Chunk::DataCr
                } else {
                    Chunk::Data(left - n)
                };
                continue;
            }
            let b = data[i];
            i += 1;
            let next = match (chunk, b) {
                (Chunk::Start, _) => hex(b).map(|d| Chunk::Size(u64::from(d))),
                (Chunk::Size(n), _) if hex(b).is_some() => hex(b)
                    .and_then(|d| n.checked_mul(16)?.checked_add(u64::from(d)))
                    .map(Chunk::Size),
                (Chunk::Size(n) | Chunk::SizeLws(n), b'\t' | b' ') => Some(Chunk::SizeLws(n)),
                (Chunk::Size(n) | Chunk::SizeLws(n) | Chunk::Extension(n), b';') => Some(Chunk::Extension(n)),
                (Chunk::Size(n) | Chunk::SizeLws(n) | Chunk::Extension(n), b'\r') => Some(Chunk::SizeLf(n)),
                (Chunk::Extension(_), b'\n') => None,
                (Chunk::Extension(n), _) => Some(Chunk::Extension(n)),
                (Chunk::SizeLf(0), b'\n') => Some(Chunk::EndCr),
                (Chunk::SizeLf(n), b'\n') => Some(Chunk::Data(n)),
                (Chunk::DataCr, b'\r') => Some(Chunk::DataLf),
                (Chunk::DataLf, b'\n') => Some(Chunk::Start),
                (Chunk::EndCr, b'\r') => Some(Chunk::EndLf),
                (Chunk::Trailer, b'\r') => Some(Chunk::TrailerLf),
                (Chunk::EndCr | Chunk::Trailer, _) => Some(Chunk::Trailer),
                (Chunk::TrailerLf, b'\n') => Some(Chunk::EndCr),
                (Chunk::EndLf, b'\n') => {
                    self.state = State::Head;
                    return &data[i..];
                }
                _ => None,
            };
            match next {
                Some(c) => chunk = c,
                None => {
                    self.off();
                    return &[];
                }
            }
        }
        self.state = State::Chunked(chunk);
        &[]
    }

    fn off(&mut self) {
        self.state = State::Off;
        self.head = Vec::new();
    }
}

/// The index just past the empty line that ends a head, searching line ends from `from`.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    memchr_iter(b'\n', &buf[from..]).map(|i| i + from).find_map(|i| {
        let rest = &buf[i + 1..];
        if rest.starts_with(b"\n") {
            Some(i + 2)
        } else if rest.starts_with(b"\r\n") {
            Some(i + 3)
        } else {
            None
        }
    })
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &v[start..end]
}

/// A `Content-Length` value as hyper reads one: digits only.
fn parse_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter()
        .try_fold(0u64, |n, &d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))
}

fn last_coding_is_chunked(v: &[u8]) -> bool {
    v.rsplit(|&b| b == b',')
        .next()
        .map(trim)
        .is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"))
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests;
