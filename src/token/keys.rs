//! The key ring: the signing key and every accepted verification key, by `kid`.
//!
//! Owns: reading `key_file` and `verify_keys`, checking that each key belongs to the configured
//! algorithm, and the `kid -> key` map. Never: put key bytes into an error or `Debug` output,
//! treat a `kid` as anything but a map key, accept an HMAC secret under 32 bytes or one that is
//! a PEM file (the classic "public key as HMAC secret" confusion).
//!
//! Invariants: every key in the ring is for [`KeyRing::algorithm`]; a private `key_file` passed a
//! sign-then-verify self-test with the public key derived from it; `kid`s are unique and match
//! `[A-Za-z0-9_.-]{1,64}`.

use std::collections::HashMap;
use std::fmt;
use std::io::Read as _;
use std::path::Path;

use jsonwebtoken::{DecodingKey, EncodingKey};
use rcgen::PublicKeyData as _;
use rustls_pki_types::pem::{PemObject as _, SectionKind};
use rustls_pki_types::PrivatePkcs8KeyDer;
use zeroize::Zeroizing;

use super::spki::PublicKey;
use super::{Algorithm, KeyError};

/// The shortest HMAC secret accepted (bytes).
pub const MIN_HMAC_KEY_LEN: usize = 32;

/// The largest key file read (bytes); anything bigger is not a key.
const MAX_KEY_FILE_LEN: u64 = 64 * 1024;

/// The signing key and every accepted verification key, by `kid`.
pub struct KeyRing {
    algorithm: Algorithm,
    kid: String,
    signing: Option<EncodingKey>,
    verifying: HashMap<String, DecodingKey>,
    /// Asymmetric public keys in load order (the signing key's first), for the JWK set.
    public: Vec<(String, PublicKey)>,
}

impl KeyRing {
    /// Loads `key_file` (kid `key_id`) and every `verify_keys` file (kid = file name up to its
    /// first dot).
    ///
    /// EdDSA, ES256, RS256: `key_file` is a PKCS#8 `PRIVATE KEY` PEM (issue and verify) or a
    /// `PUBLIC KEY` PEM (verify only); `verify_keys` are `PUBLIC KEY` PEMs. HS256: `key_file` and
    /// `verify_keys` are secrets used as raw bytes, at least 32 of them, else an error.
    pub fn load(
        algorithm: Algorithm,
        key_file: &Path,
        key_id: &str,
        verify_keys: &[std::path::PathBuf],
    ) -> Result<Self, KeyError> {
        check_kid(key_id).map_err(|m| KeyError::new(key_file, format!("key_id: {m}")))?;
        let mut ring = KeyRing {
            algorithm,
            kid: key_id.to_owned(),
            signing: None,
            verifying: HashMap::new(),
            public: Vec::new(),
        };
        if algorithm == Algorithm::HS256 {
            let secret = read_hmac_secret(key_file)?;
            ring.signing = Some(EncodingKey::from_secret(&secret));
            ring.insert(key_file, key_id, DecodingKey::from_secret(&secret), None)?;
            for path in verify_keys {
                let kid = kid_from_file_name(path)?;
                let secret = read_hmac_secret(path)?;
                ring.insert(path, kid, DecodingKey::from_secret(&secret), None)?;
            }
            return Ok(ring);
        }
        let (kind, der) = read_pem(key_file)?;
        let public = match kind {
            SectionKind::PrivateKey => {
                let (signing, public) = load_private(algorithm, &der).map_err(|m| KeyError::new(key_file, m))?;
                ring.signing = Some(signing);
                public
            }
            SectionKind::PublicKey => PublicKey::from_spki(algorithm, &der).map_err(|m| KeyError::new(key_file, m))?,
            _ => {
                return Err(KeyError::new(
                    key_file,
                    "expected a PKCS#8 PRIVATE KEY or a PUBLIC KEY PEM",
                ))
            }
        };
        ring.insert(key_file, key_id, public.decoding_key(), Some(public))?;
        for path in verify_keys {
            let kid = kid_from_file_name(path)?;
            let (kind, der) = read_pem(path)?;
            if kind != SectionKind::PublicKey {
                return Err(KeyError::new(path, "verify_keys must be PUBLIC KEY PEM files"));
            }
            let public = PublicKey::from_spki(algorithm, &der).map_err(|m| KeyError::new(path, m))?;
            ring.insert(path, kid, public.decoding_key(), Some(public))?;
        }
        Ok(ring)
    }

    /// The configured algorithm; every key in the ring is for it.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The `kid` written into issued tokens (`tokens.key_id`).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// True when `key_file` was a private key (or an HMAC secret): tokens can be issued.
    pub fn can_sign(&self) -> bool {
        self.signing.is_some()
    }

    /// Every accepted `kid`, in no particular order.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.verifying.keys().map(String::as_str)
    }

    /// The public verification keys as a JWK set (`{"keys":[...]}`) for
    /// `/.well-known/jwks.json`; empty for HS256, whose keys are secret.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<_> = self.public.iter().map(|(kid, key)| key.jwk(kid)).collect();
        serde_json::json!({ "keys": keys })
    }

    pub(super) fn decoding_key(&self, kid: &str) -> Option<&DecodingKey> {
        self.verifying.get(kid)
    }

    pub(super) fn signing_key(&self) -> Option<&EncodingKey> {
        self.signing.as_ref()
    }

    fn insert(&mut self, path: &Path, kid: &str, key: DecodingKey, public: Option<PublicKey>) -> Result<(), KeyError> {
        if self.verifying.contains_key(kid) {
            return Err(KeyError::new(path, format!("duplicate kid {kid:?}")));
        }
        self.verifying.insert(kid.to_owned(), key);
        if let Some(public) = public {
            self.public.push((kid.to_owned(), public));
        }
        Ok(())
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<_> = self.kids().collect();
        kids.sort_unstable();
        f.debug_struct("KeyRing")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .field("can_sign", &self.can_sign())
            .field("kids", &kids)
            .finish_non_exhaustive()
    }
}

/// Parses a PKCS#8 private key for `algorithm`, derives its public key, and proves the pair
/// works by signing and verifying a test message.
fn load_private(algorithm: Algorithm, pkcs8: &[u8]) -> Result<(EncodingKey, PublicKey), String> {
    let rcgen_alg = match algorithm {
        Algorithm::EdDSA => &rcgen::PKCS_ED25519,
        Algorithm::ES256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        Algorithm::RS256 => &rcgen::PKCS_RSA_SHA256,
        Algorithm::HS256 => return Err("HS256 takes a raw secret, not a PEM key".into()),
    };
    let pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&PrivatePkcs8KeyDer::from(pkcs8), rcgen_alg)
        .map_err(|_| format!("not a usable {algorithm} private key"))?;
    let public = PublicKey::from_spki(algorithm, &pair.subject_public_key_info())?;
    let signing = match algorithm {
        Algorithm::EdDSA => EncodingKey::from_ed_der(pkcs8),
        Algorithm::ES256 => EncodingKey::from_ec_der(pkcs8),
        Algorithm::RS256 => EncodingKey::from_rsa_der(&rsa_pkcs1_from_pkcs8(pkcs8)?),
        Algorithm::HS256 => return Err("HS256 takes a raw secret, not a PEM key".into()),
    };
    self_test(algorithm, &signing, &public.decoding_key())?;
    Ok((signing, public))
}

/// `jsonwebtoken`'s aws-lc RSA signer wants the PKCS#1 RSAPrivateKey inside the PKCS#8 wrapper.
fn rsa_pkcs1_from_pkcs8(pkcs8: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
    // PrivateKeyInfo ::= SEQUENCE { version INTEGER, algorithm AlgorithmIdentifier,
    //                               privateKey OCTET STRING (the PKCS#1 RSAPrivateKey) }
    pkcs8_private_key_octets(pkcs8)
        .map(|octets| Zeroizing::new(octets.to_vec()))
        .ok_or_else(|| "malformed PKCS#8 RSA private key".into())
}

/// The `privateKey` OCTET STRING of a PKCS#8 PrivateKeyInfo (short walk, no key bytes copied).
fn pkcs8_private_key_octets(der: &[u8]) -> Option<&[u8]> {
    fn element(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = bytes.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = match first {
            0..=0x7f => (usize::from(first), rest),
            0x81 => (usize::from(*rest.first()?), rest.get(1..)?),
            0x82 => (
                usize::from(*rest.first()?) << 8 | usize::from(*rest.get(1)?),
                rest.get(2..)?,
            ),
            _ => return None,
        };
        let content = rest.get(..len)?;
        Some((tag, content, rest.get(len..)?))
    }
    let (0x30, info, _) = element(der)? else { return None };
    let (0x02, _, rest) = element(info)? else { return None };
    let (0x30, _, rest) = element(rest)? else { return None };
    let (0x04, octets, _) = element(rest)? else { return None };
    Some(octets)
}

fn self_test(algorithm: Algorithm, signing: &EncodingKey, verifying: &DecodingKey) -> Result<(), String> {
    const MESSAGE: &[u8] = b"cpgate key self-test";
    let failed = || format!("the {algorithm} private key does not verify with its own public key");
    let signature = jsonwebtoken::crypto::sign(MESSAGE, signing, algorithm.jwt()).map_err(|_| failed())?;
    match jsonwebtoken::crypto::verify(&signature, MESSAGE, verifying, algorithm.jwt()) {
        Ok(true) => Ok(()),
        _ => Err(failed()),
    }
}

/// Reads a file of at most [`MAX_KEY_FILE_LEN`] bytes into zeroized memory.
fn read_limited(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let file = std::fs::File::open(path).map_err(|e| KeyError::new(path, format!("cannot open: {}", e.kind())))?;
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_KEY_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| KeyError::new(path, format!("cannot read: {}", e.kind())))?;
    if bytes.len() as u64 > MAX_KEY_FILE_LEN {
        return Err(KeyError::new(path, "larger than 64 KiB: not a key file"));
    }
    Ok(bytes)
}

/// Reads exactly one PEM block; returns its kind and DER contents.
fn read_pem(path: &Path) -> Result<(SectionKind, Zeroizing<Vec<u8>>), KeyError> {
    let bytes = read_limited(path)?;
    let mut sections = <(SectionKind, Vec<u8>)>::pem_slice_iter(&bytes);
    let (kind, der) = match sections.next() {
        Some(Ok((kind, der))) => (kind, Zeroizing::new(der)),
        Some(Err(_)) => return Err(KeyError::new(path, "not a valid PEM file")),
        None => {
            return Err(KeyError::new(
                path,
                "no PEM key found (expected an unencrypted PKCS#8 PRIVATE KEY or a PUBLIC KEY)",
            ))
        }
    };
    if sections.next().is_some() {
        return Err(KeyError::new(path, "more than one PEM block: expected exactly one key"));
    }
    Ok((kind, der))
}

fn read_hmac_secret(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let secret = read_limited(path)?;
    if secret.starts_with(b"-----BEGIN") {
        return Err(KeyError::new(
            path,
            "HS256 needs a file of random bytes, not a PEM key (never use a public key as an HMAC secret)",
        ));
    }
    if secret.len() < MIN_HMAC_KEY_LEN {
        return Err(KeyError::new(
            path,
            format!(
                "HS256 secret is {} bytes; at least {MIN_HMAC_KEY_LEN} are required",
                secret.len()
            ),
        ));
    }
    Ok(secret)
}

/// The kid of a verification key file: its name up to the first dot.
fn kid_from_file_name(path: &Path) -> Result<&str, KeyError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| KeyError::new(path, "file name is not UTF-8"))?;
    let kid = name.split('.').next().unwrap_or_default();
    check_kid(kid).map_err(|m| KeyError::new(path, format!("kid from file name: {m}")))?;
    Ok(kid)
}

/// A `kid` is `[A-Za-z0-9_.-]{1,64}`.
pub(super) fn check_kid(kid: &str) -> Result<(), &'static str> {
    let valid = !kid.is_empty()
        && kid.len() <= 64
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if valid {
        Ok(())
    } else {
        Err("a kid must be 1 to 64 characters of [A-Za-z0-9_.-]")
    }
}
