//! Public keys: strict parsing of a DER SubjectPublicKeyInfo for the one algorithm configured,
//! and its JWK form.
//!
//! Owns: deciding whether a public key belongs to the configured algorithm (Ed25519; P-256 with an
//! uncompressed point; RSA of 2048 to 8192 bits) and turning it into a `DecodingKey`.
//! Never: accept a key of another family or curve, accept trailing bytes or non-minimal DER
//! lengths.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::DecodingKey;

use super::Algorithm;

const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_PRIME256V1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_NULL: u8 = 0x05;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;

/// A verified public key: its components, enough for a `DecodingKey` and a JWK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum PublicKey {
    /// The 32-byte Ed25519 public key.
    Ed25519 { x: Vec<u8> },
    /// The P-256 point coordinates, 32 bytes each.
    P256 { x: Vec<u8>, y: Vec<u8> },
    /// Modulus and exponent, big-endian without leading zeros; `der` is the PKCS#1 RSAPublicKey.
    Rsa { n: Vec<u8>, e: Vec<u8>, der: Vec<u8> },
}

impl PublicKey {
    /// Parses `spki` (DER) as a public key for `algorithm`; the error says what is wrong.
    pub(super) fn from_spki(algorithm: Algorithm, spki: &[u8]) -> Result<Self, &'static str> {
        let mut outer = Der::new(spki).sequence()?;
        let mut alg_id = outer.take(TAG_SEQUENCE)?;
        let key_bits = outer.take(TAG_BIT_STRING)?.rest();
        outer.end()?;
        let oid = alg_id.take(TAG_OID)?.rest();
        // A BIT STRING starts with its count of unused bits, which must be zero for a key.
        let key = match key_bits.split_first() {
            Some((0, key)) => key,
            _ => return Err("malformed public key bits"),
        };
        match algorithm {
            Algorithm::EdDSA => {
                if oid != OID_ED25519 {
                    return Err("not an Ed25519 public key (EdDSA is configured)");
                }
                alg_id.end()?;
                if key.len() != 32 {
                    return Err("Ed25519 public key must be 32 bytes");
                }
                Ok(PublicKey::Ed25519 { x: key.to_vec() })
            }
            Algorithm::ES256 => {
                if oid != OID_EC_PUBLIC_KEY {
                    return Err("not an EC public key (ES256 is configured)");
                }
                if alg_id.take(TAG_OID)?.rest() != OID_PRIME256V1 {
                    return Err("EC public key is not on P-256 (ES256 is configured)");
                }
                alg_id.end()?;
                match key.split_first() {
                    Some((4, xy)) if xy.len() == 64 => Ok(PublicKey::P256 {
                        x: xy[..32].to_vec(),
                        y: xy[32..].to_vec(),
                    }),
                    _ => Err("P-256 public key must be an uncompressed point"),
                }
            }
            Algorithm::RS256 => {
                if oid != OID_RSA_ENCRYPTION {
                    return Err("not an RSA public key (RS256 is configured)");
                }
                let null = alg_id.take(TAG_NULL)?;
                null.end()?;
                alg_id.end()?;
                let mut rsa = Der::new(key).sequence()?;
                let n = unsigned(rsa.take(TAG_INTEGER)?.rest())?;
                let e = unsigned(rsa.take(TAG_INTEGER)?.rest())?;
                rsa.end()?;
                let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
                if !(2048..=8192).contains(&bits) {
                    return Err("RSA key must have 2048 to 8192 bits");
                }
                if e.is_empty() || e.len() > 4 || e == [1] || e.last().is_some_and(|b| b & 1 == 0) {
                    return Err("RSA public exponent must be odd, at least 3 and at most 32 bits");
                }
                Ok(PublicKey::Rsa {
                    n: n.to_vec(),
                    e: e.to_vec(),
                    der: key.to_vec(),
                })
            }
            Algorithm::HS256 => Err("HS256 has no public keys"),
        }
    }

    /// The key in the form the verifier of `jsonwebtoken`'s aws-lc provider expects.
    pub(super) fn decoding_key(&self) -> DecodingKey {
        match self {
            PublicKey::Ed25519 { x } => DecodingKey::from_ed_der(x),
            PublicKey::P256 { x, y } => {
                let mut point = Vec::with_capacity(65);
                point.push(4);
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                DecodingKey::from_ec_der(&point)
            }
            PublicKey::Rsa { der, .. } => DecodingKey::from_rsa_der(der),
        }
    }

    /// The JWK (RFC 7517) of this key with `kid`, `alg` and `use: sig`.
    pub(super) fn jwk(&self, kid: &str) -> serde_json::Value {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        match self {
            PublicKey::Ed25519 { x } => serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "x": b64(x), "kid": kid, "alg": "EdDSA", "use": "sig",
            }),
            PublicKey::P256 { x, y } => serde_json::json!({
                "kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y), "kid": kid, "alg": "ES256", "use": "sig",
            }),
            PublicKey::Rsa { n, e, .. } => serde_json::json!({
                "kty": "RSA", "n": b64(n), "e": b64(e), "kid": kid, "alg": "RS256", "use": "sig",
            }),
        }
    }
}

/// A positive DER INTEGER's magnitude: one leading zero allowed only before a high bit.
fn unsigned(int: &[u8]) -> Result<&[u8], &'static str> {
    match int {
        [] => Err("empty integer"),
        [b, ..] if b & 0x80 != 0 => Err("negative integer"),
        [0, next, ..] if next & 0x80 == 0 => Err("non-minimal integer"),
        [0, rest @ ..] => Ok(rest),
        _ => Ok(int),
    }
}

/// A minimal DER reader: definite lengths, minimally encoded, at most 64 KiB.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self(bytes)
    }

    /// The whole input is exactly one SEQUENCE; returns a reader over its contents.
    fn sequence(mut self) -> Result<Der<'a>, &'static str> {
        let inner = self.take(TAG_SEQUENCE)?;
        self.end()?;
        Ok(inner)
    }

    /// Reads one element with `tag`, returns a reader over its contents.
    fn take(&mut self, tag: u8) -> Result<Der<'a>, &'static str> {
        let (&found, rest) = self.0.split_first().ok_or("truncated DER")?;
        if found != tag {
            return Err("unexpected DER element");
        }
        let (&first, rest) = rest.split_first().ok_or("truncated DER")?;
        let (len, rest) = match first {
            0..=0x7f => (usize::from(first), rest),
            0x81 => match rest {
                [l, rest @ ..] if *l >= 0x80 => (usize::from(*l), rest),
                _ => return Err("non-minimal DER length"),
            },
            0x82 => match rest {
                [h, l, rest @ ..] if *h != 0 => (usize::from(*h) << 8 | usize::from(*l), rest),
                _ => return Err("non-minimal DER length"),
            },
            _ => return Err("unsupported DER length"),
        };
        if rest.len() < len {
            return Err("truncated DER");
        }
        let (content, after) = rest.split_at(len);
        self.0 = after;
        Ok(Der(content))
    }

    fn rest(self) -> &'a [u8] {
        self.0
    }

    fn end(self) -> Result<(), &'static str> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err("trailing DER bytes")
        }
    }
}
