//! `cpgate keys generate`: a fresh key pair (or HMAC secret) under a fresh `kid`.
//!
//! Owns: key file names and modes. Never: overwrite a file (every file is created exclusively),
//! leave a private key readable by others (mode 0600 from creation, no window), put key bytes in
//! an error.
//!
//! Files: `<kid>.pem` (PKCS#8 private key, 0600) and `<kid>.pub.pem` (SPKI public key, 0644);
//! HS256: `<kid>.key`, 32 raw random bytes (0600), used as-is by `KeyRing::load`. The `kid` is
//! `YYYY-MM-DD-xxxxxx` (UTC date, 6 random hex digits): no dots, so a verify key's file name
//! gives back its kid.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use rand::TryRngCore as _;
use zeroize::Zeroizing;

use super::{Algorithm, KeyError};

/// A key written by [`generate_key`].
#[derive(Clone, Debug)]
pub struct GeneratedKey {
    /// The new key's id (file stem): put it in `tokens.key_id`.
    pub kid: String,
    /// The private key (or HMAC secret) file, mode 0600.
    pub private_key: PathBuf,
    /// The public key file; `None` for HS256.
    pub public_key: Option<PathBuf>,
}

/// Writes a new private key (PKCS#8 PEM, mode 0600; HS256: 32 random bytes) and its public key
/// into `dir` (created with mode 0700 if missing), named by a fresh `kid` without dots.
/// EdDSA is Ed25519, ES256 is P-256, RS256 is a 3072-bit RSA key.
pub fn generate_key(algorithm: Algorithm, dir: &Path) -> Result<GeneratedKey, KeyError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| KeyError::new(dir, format!("cannot create folder: {}", e.kind())))?;
    let (private, public) = key_material(algorithm).map_err(|m| KeyError::new(dir, m))?;
    let date = time::OffsetDateTime::now_utc().date();
    let (year, month, day) = (date.year(), u8::from(date.month()), date.day());
    let mut random = [0u8; 3];
    rand::rngs::OsRng
        .try_fill_bytes(&mut random)
        .map_err(|_| KeyError::new(dir, "no randomness available"))?;
    let kid = format!("{year:04}-{month:02}-{day:02}-{}", hex::encode(random));
    let private_key = dir.join(match algorithm {
        Algorithm::HS256 => format!("{kid}.key"),
        _ => format!("{kid}.pem"),
    });
    write_new(&private_key, &private, 0o600)?;
    let public_key = match public {
        Some(public) => {
            let path = dir.join(format!("{kid}.pub.pem"));
            if let Err(e) = write_new(&path, public.as_bytes(), 0o644) {
                // Do not leave half a key pair behind; the private file is ours (created above).
                let _ = std::fs::remove_file(&private_key);
                return Err(e);
            }
            Some(path)
        }
        None => None,
    };
    Ok(GeneratedKey {
        kid,
        private_key,
        public_key,
    })
}

/// The private key file contents and, for asymmetric algorithms, the public key PEM.
fn key_material(algorithm: Algorithm) -> Result<(Zeroizing<Vec<u8>>, Option<String>), String> {
    let pair = match algorithm {
        Algorithm::HS256 => {
            let mut secret = Zeroizing::new(vec![0u8; 32]);
            rand::rngs::OsRng
                .try_fill_bytes(&mut secret)
                .map_err(|_| "no randomness available")?;
            return Ok((secret, None));
        }
        Algorithm::EdDSA => rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519),
        Algorithm::ES256 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        Algorithm::RS256 => rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_3072),
    }
    .map_err(|_| format!("cannot generate a {algorithm} key"))?;
    let private = Zeroizing::new(pair.serialize_pem().into_bytes());
    Ok((private, Some(pair.public_key_pem())))
}

/// Creates `path` exclusively with `mode` (never follows or replaces an existing file), writes
/// `contents` and syncs it.
pub(super) fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), KeyError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| KeyError::new(path, format!("cannot create: {}", e.kind())))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| KeyError::new(path, format!("cannot write: {}", e.kind())))
}
