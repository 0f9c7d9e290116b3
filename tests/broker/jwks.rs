//! `GET /.well-known/jwks.json`: a standard JWK set that an independent JWT library (PyJWT, in a
//! venv this test creates) uses to verify tokens from `/oauth/token`; 404 for HS256.

use std::path::{Path, PathBuf};
use std::process::Command;

use cpgate::token::Algorithm;

use crate::{send_from, Broker, ALICE_SECRET};

/// Verifies argv[2] (a token) with the JWK set in the file argv[1]; prints `sub jti kid`.
const VERIFY_PY: &str = r#"
import json, sys
import jwt
jwks = json.load(open(sys.argv[1]))
token = sys.argv[2]
kid = jwt.get_unverified_header(token)["kid"]
keys = {k.key_id: k for k in jwt.PyJWKSet.from_dict(jwks).keys}
key = keys[kid]
claims = jwt.decode(token, key.key, algorithms=[key.algorithm_name], audience="cpanel", issuer="cpgate",
                    options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]})
print(claims["sub"], claims["jti"], kid)
"#;

/// A venv with PyJWT and cryptography, made once per target folder; `None` when there is no
/// python3 at all (the only reason to skip).
fn pyjwt_python() -> Option<PathBuf> {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("SKIPPED jwks_verifies_tokens_with_pyjwt: python3 is not installed");
        return None;
    }
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pyjwt-venv");
    let python = venv.join("bin/python");
    let ready = Command::new(&python)
        .args(["-c", "import jwt, cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ready {
        let made = Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&venv)
            .status()
            .unwrap();
        assert!(made.success(), "python3 -m venv failed (is python3-venv installed?)");
        let pip = Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "pyjwt", "cryptography"])
            .status()
            .unwrap();
        assert!(pip.success(), "pip install pyjwt cryptography failed");
    }
    Some(python)
}

#[tokio::test]
async fn jwks_verifies_tokens_with_pyjwt() {
    let Some(python) = pyjwt_python() else { return };
    for algorithm in [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256] {
        let gw = Broker::start_with(algorithm).await;
        let answer = send_from([127, 0, 0, 1].into(), gw.addr, "GET", "/.well-known/jwks.json", &[], "").await;
        assert_eq!(answer.status, 200);
        let jwks = answer.json();
        let key = &jwks["keys"][0];
        assert_eq!(key["kid"], gw.app.keys().kid());
        assert_eq!(key["alg"], algorithm.as_str());
        assert_eq!(key["use"], "sig");
        assert!(key.get("d").is_none(), "no private part");

        let token = gw.oauth_token("alice", ALICE_SECRET, Some("Email::list_pops")).await;
        let file = gw.dir.join("jwks.json");
        std::fs::write(&file, &answer.body).unwrap();
        let out = Command::new(&python)
            .args(["-c", VERIFY_PY])
            .arg(&file)
            .arg(&token)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{algorithm}: PyJWT refused the token: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let jti = crate::decode(&token).1["jti"].as_str().unwrap().to_owned();
        assert_eq!(
            stdout.trim(),
            format!("alice {jti} {}", gw.app.keys().kid()),
            "{algorithm}"
        );
        gw.stop().await;
    }
}

#[tokio::test]
async fn hs256_has_no_jwks() {
    let gw = Broker::start_with(Algorithm::HS256).await;
    let answer = send_from([127, 0, 0, 1].into(), gw.addr, "GET", "/.well-known/jwks.json", &[], "").await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.json()["error"], "not_found");
    let post = send_from(
        [127, 0, 0, 1].into(),
        gw.addr,
        "POST",
        "/.well-known/jwks.json",
        &[],
        "",
    )
    .await;
    assert_eq!(post.status, 405);
}
