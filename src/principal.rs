//! Who is calling: the validated developer id and the authenticated principal.
//!
//! Invariant: a [`DeveloperId`] always matches `[a-z0-9][a-z0-9_.-]{0,63}`, so it is safe as a
//! file stem, a metric label and a map key.

use std::fmt;

use crate::call::CallPattern;

/// A developer id: the policy file stem, the token `sub`, the user name in `cpanel`/`Basic` auth.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeveloperId(String);

/// Why a string is not a developer id.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid developer id {0:?}: expected [a-z0-9][a-z0-9_.-]{{0,63}}")]
pub struct InvalidDeveloperId(pub String);

impl DeveloperId {
    pub fn parse(s: &str) -> Result<Self, InvalidDeveloperId> {
        let bytes = s.as_bytes();
        let first_ok = bytes
            .first()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let rest_ok = bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-'));
        if first_ok && rest_ok && bytes.len() <= 64 {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidDeveloperId(s.chars().take(80).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeveloperId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::borrow::Borrow<str> for DeveloperId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// An authenticated caller: the result of verifying a credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub developer: DeveloperId,
    pub jti: String,
    /// The token's `scope`, parsed; `None` when the token carries no scope (no narrowing).
    pub scope: Option<Vec<CallPattern>>,
    /// `iat` and `exp`, seconds since the Unix epoch.
    pub issued_at: u64,
    pub expires_at: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn developer_ids_follow_the_file_stem_rule() {
        for ok in ["alice", "a", "0dev", "team.a-b_c", &"a".repeat(64)] {
            assert!(DeveloperId::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Alice", "-a", ".a", "a/b", "a b", "ä", &"a".repeat(65), "../x"] {
            assert!(DeveloperId::parse(bad).is_err(), "{bad}");
        }
    }
}
