//! Key loading, generation and the JWK set.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::token::{generate_key, issue, KeyError, KeyRing, Verifier};

fn load(alg: Algorithm, key_file: &Path, verify: &[PathBuf]) -> Result<KeyRing, KeyError> {
    KeyRing::load(alg, key_file, KID, verify)
}

fn load_err(alg: Algorithm, key_file: &Path, verify: &[PathBuf]) -> String {
    match load(alg, key_file, verify) {
        Ok(_) => panic!("{alg} {} loaded", key_file.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn loads_private_key_for_issue_and_verify() {
    for alg in [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256] {
        let fx = Fixture::new(alg);
        assert!(fx.ring.can_sign());
        assert_eq!(fx.ring.algorithm(), alg);
        assert_eq!(fx.ring.kid(), KID);
        assert_eq!(fx.ring.kids().collect::<Vec<_>>(), [KID]);
    }
}

#[test]
fn loads_public_key_as_verify_only() {
    for alg in [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256] {
        let fx = Fixture::new(alg);
        let public = fx.file("public.pem", fx.public_pem.as_ref().unwrap().as_bytes());
        let ring = Arc::new(load(alg, &public, &[]).unwrap());
        assert!(!ring.can_sign());
        let dev = crate::principal::DeveloperId::parse("alice").unwrap();
        let err = issue(&ring, &rules(), &dev, std::time::Duration::from_secs(60), None, NOW).unwrap_err();
        assert_eq!(err, crate::token::IssueError::CannotSign);
        // Tokens signed by the private key verify with the public-only ring.
        let verifier = Verifier::new(ring, rules());
        assert!(verifier.verify(&fx.token_with(&claims()), NOW).is_ok(), "{alg}");
    }
}

#[test]
fn refuses_hmac_key_shorter_than_32_bytes() {
    let fx = Fixture::new(Algorithm::HS256);
    let short = fx.file("short.key", &[7u8; 31]);
    assert!(load_err(Algorithm::HS256, &short, &[]).contains("at least 32"));
    let empty = fx.file("empty.key", b"");
    assert!(load_err(Algorithm::HS256, &empty, &[]).contains("at least 32"));
    let exact = fx.file("exact.key", &[7u8; 32]);
    assert!(load(Algorithm::HS256, &exact, &[]).is_ok());
    // Verify secrets obey the same rule.
    let short_verify = fx.file("2026-10.key", &[7u8; 31]);
    assert!(load_err(Algorithm::HS256, &exact, &[short_verify]).contains("at least 32"));
}

#[test]
fn refuses_a_pem_key_as_hmac_secret() {
    // A public key PEM is long enough, public, and the classic confusion secret.
    let fx = Fixture::new(Algorithm::EdDSA);
    let public = fx.file("public.pem", fx.public_pem.as_ref().unwrap().as_bytes());
    assert!(load_err(Algorithm::HS256, &public, &[]).contains("not a PEM key"));
}

#[test]
fn refuses_keys_of_another_family() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, contents: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, contents).unwrap();
        p
    };
    let (ed_private, ed_public) = key_pair(&rcgen::PKCS_ED25519);
    let (ec_private, ec_public) = key_pair(&rcgen::PKCS_ECDSA_P256_SHA256);
    let (p384_private, p384_public) = key_pair(&rcgen::PKCS_ECDSA_P384_SHA384);
    let (rsa_private, rsa_public) = key_pair(&rcgen::PKCS_RSA_SHA256);
    let cases = [
        (Algorithm::EdDSA, vec![ec_private, ec_public, rsa_private, rsa_public]),
        (
            Algorithm::ES256,
            vec![
                ed_private,
                ed_public,
                rsa_private,
                rsa_public,
                p384_private,
                p384_public,
            ],
        ),
        (Algorithm::RS256, vec![ed_private, ed_public, ec_private, ec_public]),
    ];
    for (alg, pems) in cases {
        for (i, pem) in pems.iter().enumerate() {
            let path = write(&format!("k{i}.pem"), pem);
            load_err(alg, &path, &[]);
            // As a verify key, under a valid signing key of the right family.
            let (good, _) = key_pair(rcgen_alg(alg));
            let signing = write("signing.pem", good);
            if pem.contains("PUBLIC KEY") {
                let verify = write("2026-10.pub.pem", pem);
                load_err(alg, &signing, &[verify]);
            }
        }
    }
}

#[test]
fn refuses_private_key_in_verify_keys() {
    let fx = Fixture::new(Algorithm::EdDSA);
    let (other, _) = fresh_key_pair(&rcgen::PKCS_ED25519);
    let verify = fx.file("2026-10.pem", other.as_bytes());
    let err = load_err(Algorithm::EdDSA, &fx.dir.path().join("signing.pem"), &[verify]);
    assert!(err.contains("PUBLIC KEY"), "{err}");
}

#[test]
fn refuses_duplicate_or_invalid_kid() {
    let fx = Fixture::new(Algorithm::EdDSA);
    let signing = fx.dir.path().join("signing.pem");
    let (_, other_public) = fresh_key_pair(&rcgen::PKCS_ED25519);
    let same_kid = fx.file(&format!("{KID}.pub.pem"), other_public.as_bytes());
    assert!(load_err(Algorithm::EdDSA, &signing, &[same_kid]).contains("duplicate kid"));
    let dotfile = fx.file(".pub.pem", other_public.as_bytes());
    assert!(load_err(Algorithm::EdDSA, &signing, &[dotfile]).contains("kid"));
    for bad in ["", "a b", "../x", "a/b", &"k".repeat(65), "kid\n"] {
        assert!(KeyRing::load(Algorithm::EdDSA, &signing, bad, &[]).is_err(), "{bad:?}");
    }
}

#[test]
fn refuses_non_pkcs8_multiple_blocks_and_garbage() {
    let fx = Fixture::new(Algorithm::EdDSA);
    let private = String::from_utf8(fx.private.clone()).unwrap();
    let public = fx.public_pem.clone().unwrap();
    let relabel = |label: &str| private.replace("PRIVATE KEY", label);
    for (name, contents) in [
        ("sec1.pem", relabel("EC PRIVATE KEY")),
        ("pkcs1.pem", relabel("RSA PRIVATE KEY")),
        ("encrypted.pem", relabel("ENCRYPTED PRIVATE KEY")),
        ("two.pem", format!("{private}{public}")),
        ("garbage.pem", "not a key at all".into()),
        ("empty.pem", String::new()),
        ("broken.pem", private.replace('A', "!")),
    ] {
        let path = fx.file(name, contents.as_bytes());
        load_err(Algorithm::EdDSA, &path, &[]);
    }
    let missing = fx.dir.path().join("missing.pem");
    assert!(load_err(Algorithm::EdDSA, &missing, &[]).contains("cannot open"));
    let huge = fx.file("huge.pem", &vec![b'a'; 65 * 1024]);
    assert!(load_err(Algorithm::EdDSA, &huge, &[]).contains("64 KiB"));
}

#[test]
fn key_errors_name_the_file_never_the_key() {
    let fx = Fixture::new(Algorithm::EdDSA);
    let private = String::from_utf8(fx.private.clone()).unwrap();
    let body: String = private.lines().nth(1).unwrap().to_owned();
    // An Ed25519 key where ES256 is configured; an HMAC secret that is too short.
    let path = fx.file("wrong.pem", private.as_bytes());
    let err = load(Algorithm::ES256, &path, &[]).unwrap_err();
    assert_eq!(err.path, path);
    assert!(err.to_string().contains("wrong.pem"));
    assert!(!format!("{err} {err:?}").contains(&body[10..30]));
    let secret = fx.file("short.key", b"SECRETCANARY");
    let err = load(Algorithm::HS256, &secret, &[]).unwrap_err();
    assert!(!format!("{err} {err:?}").contains("SECRETCANARY"));
    // Debug of a ring shows no key material either.
    let shown = format!("{:?}", fx.ring);
    assert!(shown.contains("EdDSA") && !shown.contains(&body[10..30]), "{shown}");
}

#[test]
fn generate_key_writes_private_0600_and_public_and_loads() {
    for alg in [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256, Algorithm::HS256] {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("new/keys");
        let generated = generate_key(alg, &keys).unwrap();
        // kid: YYYY-MM-DD-xxxxxx, no dot.
        let kid = &generated.kid;
        assert_eq!(kid.len(), 17, "{kid}");
        assert!(!kid.contains('.'));
        assert!(kid[11..].bytes().all(|b| b.is_ascii_hexdigit()), "{kid}");
        assert!(kid.starts_with("20"), "{kid}");
        let mode = std::fs::metadata(&generated.private_key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{alg}");
        let dir_mode = std::fs::metadata(&keys).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode & 0o077, 0, "{alg}: new folder private");
        let ring = KeyRing::load(alg, &generated.private_key, kid, &[]).unwrap();
        assert!(ring.can_sign());
        match alg {
            Algorithm::HS256 => {
                assert!(generated.public_key.is_none());
                assert_eq!(std::fs::read(&generated.private_key).unwrap().len(), 32);
                assert_eq!(
                    generated.private_key.file_name().unwrap(),
                    format!("{kid}.key").as_str()
                );
            }
            _ => {
                let public = generated.public_key.clone().unwrap();
                assert_eq!(public.file_name().unwrap(), format!("{kid}.pub.pem").as_str());
                assert_eq!(
                    generated.private_key.file_name().unwrap(),
                    format!("{kid}.pem").as_str()
                );
                assert!(std::fs::read_to_string(&generated.private_key)
                    .unwrap()
                    .contains("BEGIN PRIVATE KEY"));
                // The public file is a verify key whose kid is its file name up to the first dot.
                let verify_only = KeyRing::load(alg, &public, kid, &[]).unwrap();
                assert!(!verify_only.can_sign());
                let other = tempfile::tempdir().unwrap();
                let rotated = generate_key(alg, other.path()).unwrap();
                let ring = KeyRing::load(alg, &rotated.private_key, &rotated.kid, &[public]).unwrap();
                let mut kids: Vec<_> = ring.kids().collect();
                kids.sort_unstable();
                let mut expected = vec![kid.as_str(), rotated.kid.as_str()];
                expected.sort_unstable();
                assert_eq!(kids, expected);
            }
        }
    }
}

#[test]
fn generate_key_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let existing = dir.path().join("taken.pem");
    std::fs::write(&existing, b"precious").unwrap();
    let err = crate::token::generate::write_new(&existing, b"new key", 0o600).unwrap_err();
    assert!(err.to_string().contains("cannot create"));
    assert_eq!(std::fs::read(&existing).unwrap(), b"precious");
    // A symlink planted at the target is not followed either.
    let target = dir.path().join("target");
    let link = dir.path().join("link.pem");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert!(crate::token::generate::write_new(&link, b"new key", 0o600).is_err());
    assert!(!target.exists());
    // Two generations in one folder get two kids.
    let a = generate_key(Algorithm::EdDSA, dir.path()).unwrap();
    let b = generate_key(Algorithm::EdDSA, dir.path()).unwrap();
    assert_ne!(a.kid, b.kid);
}

#[test]
fn jwks_lists_public_keys_and_never_secrets() {
    for alg in [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256] {
        let fx = Fixture::new(alg);
        let (_, old_public) = fresh_key_pair(rcgen_alg(alg));
        let old = fx.file("2026-10.pub.pem", old_public.as_bytes());
        let ring = KeyRing::load(alg, &fx.dir.path().join("signing.pem"), KID, &[old]).unwrap();
        let jwks = ring.jwks();
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0]["kid"], KID);
        assert_eq!(keys[1]["kid"], "2026-10");
        assert_eq!(keys[0]["alg"], alg.as_str());
        assert!(keys.iter().all(|k| k.get("d").is_none() && k["use"] == "sig"));
        // The published JWK really verifies tokens of the signing key.
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(keys[0].clone()).unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let token = fx.token_with(&claims());
        let mut validation = jsonwebtoken::Validation::new(alg.jwt());
        validation.validate_exp = false;
        validation.validate_aud = false;
        assert!(
            jsonwebtoken::decode::<serde::de::IgnoredAny>(&token, &key, &validation).is_ok(),
            "{alg}"
        );
    }
    let fx = Fixture::new(Algorithm::HS256);
    assert_eq!(fx.ring.jwks(), serde_json::json!({ "keys": [] }));
}
