//! A full disk: calls are refused with 503 `audit_unavailable` and never forwarded; service
//! resumes once space returns.
//!
//! The audit folder is a small tmpfs (needs root or CAP_SYS_ADMIN; the test prints why and
//! skips when mounting is not permitted). A tmpfs was chosen over `RLIMIT_FSIZE` because a
//! file-size limit raises SIGXFSZ, whose default action kills the process: cpgate would have to
//! ignore that signal (which needs `unsafe` here, and `unsafe_code` is forbidden), and a real
//! full disk answers `ENOSPC`, which is what this test provokes.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{verify, Client, Setup, Upstream};

/// Unmounts on drop (also when the test fails).
struct Mount(PathBuf);

impl Mount {
    /// Mounts a tmpfs of `size` at `dir`, or says why not.
    fn tmpfs(dir: &Path, size: &str) -> Result<Mount, String> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if out.status.success() {
            Ok(Mount(dir.to_path_buf()))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes zeros until the file system refuses (ENOSPC).
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = [0u8; 4096];
    let mut total = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(28), "expected ENOSPC, got {e}");
                break;
            }
        }
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_refuses_with_503_forwards_nothing_and_resumes_when_space_returns() {
    let upstream = Upstream::start().await;
    let setup = Setup::new(&upstream, "always");
    let audit_dir = setup.files.audit.parent().unwrap().to_path_buf();
    std::fs::create_dir_all(&audit_dir).unwrap();
    let _mount = match Mount::tmpfs(&audit_dir, "256k") {
        Ok(m) => m,
        Err(why) => {
            eprintln!("SKIPPED full_disk test: cannot mount a tmpfs ({why}); run as root to include it");
            return;
        }
    };
    let proxy = setup.spawn().await;
    let mut client = Client::connect(setup.addr).await.unwrap();
    let call = |n: usize| format!("/execute/Email/list_pops?domain=example.com&marker=d{n}");
    let mut n = 0;
    let mut ok = 0;

    assert_eq!(
        client.send("GET", &call(n), &setup.bearer, "").await.unwrap().status,
        200
    );
    (n, ok) = (n + 1, ok + 1);

    let filler = audit_dir.join("filler");
    assert!(fill(&filler) > 0);
    // The audit file's last page may still have room for a few records; past that, every call
    // must be refused.
    let mut refused = 0;
    while refused < 5 {
        assert!(n < 40, "calls were still accepted on a full disk");
        let answer = client.send("GET", &call(n), &setup.bearer, "").await.unwrap();
        n += 1;
        if answer.status == 200 {
            assert_eq!(refused, 0, "a call was accepted after the first refusal");
            ok += 1;
            continue;
        }
        assert_eq!(answer.status, 503, "{}", String::from_utf8_lossy(&answer.body));
        assert_eq!(answer.code(), "audit_unavailable");
        refused += 1;
        assert_eq!(upstream.count(), ok, "a refused call reached cPanel");
    }

    std::fs::remove_file(&filler).unwrap();
    for _ in 0..3 {
        let answer = client.send("GET", &call(n), &setup.bearer, "").await.unwrap();
        n += 1;
        assert_eq!(answer.status, 200, "service did not resume once space returned");
        ok += 1;
    }
    assert_eq!(upstream.count(), ok);
    drop(client);
    proxy.stop().await;

    // The failed writes left nothing behind: the chain verifies, and the request records are
    // exactly the calls cPanel received.
    let (verified, out) = verify(std::slice::from_ref(&setup.files.audit));
    assert!(verified, "audit verify failed after ENOSPC: {out}");
    let received: std::collections::HashSet<String> = upstream.markers().into_iter().collect();
    assert_eq!(Setup::request_markers(&setup.files.audit), received);
    eprintln!("full disk: {ok} calls forwarded, {refused} refused with 503; {out}");
}
