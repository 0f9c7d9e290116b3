//! Writes a throwaway test CA and a server certificate for `localhost` and `127.0.0.1` into a
//! folder: `cargo run --example make_test_certs -- certs/test`. For tests and local trials only.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "certs/test".into()));
    std::fs::create_dir_all(&dir)?;
    let (ca, chain, key) = cpgate::tls::test_ca_and_server(&["localhost", "127.0.0.1"])?;
    std::fs::write(dir.join("test-ca.pem"), ca)?;
    std::fs::write(dir.join("proxy.crt"), chain)?;
    std::fs::write(dir.join("proxy.key"), key)?;
    println!(
        "wrote {0}/test-ca.pem, {0}/proxy.crt, {0}/proxy.key (TEST ONLY)",
        dir.display()
    );
    Ok(())
}
