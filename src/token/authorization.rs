//! The `Authorization` header: `Bearer JWT`, `cpanel DEVELOPER:JWT`, `Basic base64(DEVELOPER:JWT)`.
//!
//! Owns: the syntax of the three forms. Never: echo any part of the value in an error, decode
//! base64 of a value longer than [`MAX_AUTHORIZATION_LEN`], trim or repair a value.
//!
//! Rules (RFC 9110 §11, narrowed): the scheme is case-insensitive and followed by exactly one
//! space; the value is visible ASCII only (no tabs, no second space, no obs-text); `Basic` is
//! strict standard base64 with padding (RFC 4648, canonical); the claimed developer must be a
//! valid developer id and the token non-empty. The token itself is checked by the verifier.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;

use super::{AuthError, MAX_TOKEN_LEN};
use crate::principal::{DeveloperId, Principal};

/// The longest `Authorization` value looked at (bytes): `Basic ` plus the base64 of a 64-byte
/// developer id, a colon and a [`MAX_TOKEN_LEN`] token. Checked before any decoding.
pub const MAX_AUTHORIZATION_LEN: usize = "Basic ".len() + 4 * (64 + 1 + MAX_TOKEN_LEN).div_ceil(3);

/// A credential as sent: the token and, for `cpanel DEV:JWT` and `Basic`, the claimed developer.
/// `Debug` shows the developer, never the token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential<'a> {
    /// The developer named in `cpanel DEV:JWT` or `Basic`; always a valid developer id.
    pub developer: Option<Cow<'a, str>>,
    /// The access token, not yet verified.
    pub token: Cow<'a, str>,
}

impl fmt::Debug for Credential<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("developer", &self.developer)
            .field("token", &"[redacted]")
            .finish()
    }
}

/// Parses one `Authorization` header value (`Bearer`, `cpanel DEV:JWT`, `Basic`).
///
/// An empty value is [`AuthError::Missing`]; anything else that is not exactly one of the three
/// forms is [`AuthError::Malformed`].
pub fn parse_authorization(value: &[u8]) -> Result<Credential<'_>, AuthError> {
    if value.is_empty() {
        return Err(AuthError::Missing);
    }
    if value.len() > MAX_AUTHORIZATION_LEN {
        return Err(AuthError::Malformed("authorization value too long"));
    }
    let Some(space) = value.iter().position(|&b| b == b' ') else {
        return Err(AuthError::Malformed("expected SCHEME CREDENTIALS"));
    };
    let (scheme, rest) = (&value[..space], &value[space + 1..]);
    // One space exactly, then visible ASCII only: no second space, tab, control or obs-text.
    if rest.is_empty() || !rest.iter().all(|b| b.is_ascii_graphic()) {
        return Err(AuthError::Malformed(
            "expected exactly one space and visible ASCII credentials",
        ));
    }
    // `rest` is visible ASCII, so it is valid UTF-8.
    let rest = std::str::from_utf8(rest).map_err(|_| AuthError::Malformed("credentials not ASCII"))?;
    if scheme.eq_ignore_ascii_case(b"bearer") {
        Ok(Credential {
            developer: None,
            token: Cow::Borrowed(rest),
        })
    } else if scheme.eq_ignore_ascii_case(b"cpanel") {
        let (developer, token) = split_user_token(rest)?;
        Ok(Credential {
            developer: Some(Cow::Borrowed(developer)),
            token: Cow::Borrowed(token),
        })
    } else if scheme.eq_ignore_ascii_case(b"basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .map_err(|_| AuthError::Malformed("Basic credentials are not canonical base64"))?;
        let decoded = String::from_utf8(decoded).map_err(|_| AuthError::Malformed("Basic credentials not UTF-8"))?;
        if !decoded.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(AuthError::Malformed("Basic credentials not visible ASCII"));
        }
        let (developer, token) = split_user_token(&decoded)?;
        Ok(Credential {
            developer: Some(Cow::Owned(developer.to_owned())),
            token: Cow::Owned(token.to_owned()),
        })
    } else {
        Err(AuthError::Malformed("unsupported authorization scheme"))
    }
}

/// Checks that the developer claimed in `cpanel DEV:JWT` or `Basic` is the token's `sub`.
/// A `Bearer` credential claims nothing and always passes.
pub fn check_claimed_developer(credential: &Credential<'_>, principal: &Principal) -> Result<(), AuthError> {
    match &credential.developer {
        Some(claimed) if claimed.as_ref() != principal.developer.as_str() => {
            Err(AuthError::Rejected("claimed developer is not the token subject"))
        }
        _ => Ok(()),
    }
}

/// `DEVELOPER:TOKEN`, split at the first colon (developer ids never contain one).
fn split_user_token(s: &str) -> Result<(&str, &str), AuthError> {
    let (developer, token) = s
        .split_once(':')
        .ok_or(AuthError::Malformed("expected DEVELOPER:TOKEN"))?;
    if developer.is_empty() {
        return Err(AuthError::Malformed("empty developer"));
    }
    if DeveloperId::parse(developer).is_err() {
        return Err(AuthError::Malformed("invalid developer id"));
    }
    if token.is_empty() {
        return Err(AuthError::Malformed("empty token"));
    }
    Ok((developer, token))
}
