//! The hash chain: what links one record line to the next.
//!
//! Owns: the line hash (SHA-256 of the line without its newline), the genesis `prev` (64 zeros),
//! the chain [`Head`], and reading `seq`/`prev` back out of a stored line.
//! Never: trusts a line it did not parse; hashes anything but the exact stored bytes.
//! Invariants: record `seq` n+1 carries `prev` = hash(line of record n); the first record ever
//! has `seq` 1 and `prev` = 64 zeros.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

/// `prev` of the very first record.
pub const GENESIS: [u8; 32] = [0; 32];

/// The last record of a chain: its `seq` and the hash of its line. `seq` 0 means no record yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub hash: [u8; 32],
}

impl Head {
    /// The head before the first record: `seq` 0, hash = 64 zeros.
    pub const fn genesis() -> Self {
        Self { seq: 0, hash: GENESIS }
    }

    /// The hash in lower-case hex.
    pub fn hex(&self) -> String {
        hex::encode(self.hash)
    }
}

/// SHA-256 of one line (without its newline).
pub fn line_hash(line: &[u8]) -> [u8; 32] {
    Sha256::digest(line).into()
}

/// Lower-case hex of 32 bytes, appended to `buf`.
pub(crate) fn push_hex(buf: &mut Vec<u8>, bytes: &[u8; 32]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        buf.push(HEX[usize::from(b >> 4)]);
        buf.push(HEX[usize::from(b & 0xf)]);
    }
}

/// What a stored line says about its place in the chain.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Link {
    /// A record: its `seq` and `prev`.
    Record { seq: u64, prev: [u8; 32] },
    /// Not JSON at all (a torn write, zeros left by a crash, garbage).
    NotJson(String),
    /// JSON, but not an audit record (no `seq`/`prev`, or of the wrong type).
    NotRecord(String),
}

#[derive(serde::Deserialize)]
struct ChainFields<'a> {
    seq: u64,
    #[serde(borrow)]
    prev: Cow<'a, str>,
}

/// Parses `seq` and `prev` out of one line (without newline).
pub(crate) fn link(line: &[u8]) -> Link {
    match serde_json::from_slice::<ChainFields<'_>>(line) {
        Ok(fields) => {
            let mut prev = [0u8; 32];
            let lower = fields.prev.bytes().all(|b| !b.is_ascii_uppercase());
            match hex::decode_to_slice(fields.prev.as_bytes(), &mut prev) {
                Ok(()) if lower => Link::Record { seq: fields.seq, prev },
                _ => Link::NotRecord("prev is not 64 lower-case hex digits".into()),
            }
        }
        Err(e) if e.classify() == serde_json::error::Category::Data => Link::NotRecord(e.to_string()),
        Err(e) => Link::NotJson(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_read_back_from_lines() {
        let line = format!(
            "{{\"ts\":\"x\",\"seq\":5,\"prev\":\"{}\",\"event\":\"request\"}}",
            "0a".repeat(32)
        );
        assert_eq!(
            link(line.as_bytes()),
            Link::Record {
                seq: 5,
                prev: [0x0a; 32]
            }
        );
        assert!(matches!(link(b"{\"ts\":\"x\",\"se"), Link::NotJson(_)));
        assert!(matches!(link(b"\0\0\0"), Link::NotJson(_)));
        assert!(matches!(link(b"{\"a\":1}"), Link::NotRecord(_)));
        assert!(matches!(link(b"{\"seq\":1,\"prev\":\"00\"}"), Link::NotRecord(_)));
        let upper = format!("{{\"seq\":1,\"prev\":\"{}\"}}", "AB".repeat(32));
        assert!(matches!(link(upper.as_bytes()), Link::NotRecord(_)));
    }

    #[test]
    fn head_hex_is_lower_case() {
        let head = Head {
            seq: 1,
            hash: line_hash(b"abc"),
        };
        assert_eq!(
            head.hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut buf = Vec::new();
        push_hex(&mut buf, &head.hash);
        assert_eq!(buf, head.hex().into_bytes());
        assert_eq!(Head::genesis().hex(), "0".repeat(64));
    }
}
