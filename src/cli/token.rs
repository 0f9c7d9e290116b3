//! `cpgate token revoke` and `cpgate token secret`.
//!
//! `revoke` appends one line to the revocation file (fsync'ed, under a lock; expired entries are
//! compacted away); running servers pick it up within a second and audit it. With the Redis
//! store it also adds the entry to the shared set and announces it, so that every instance
//! refuses the token within a second; if Redis cannot be reached the command fails (the file
//! entry stands, and the local server shares it once Redis is back). The CLI never writes into
//! a server's audit file (contract §6).
//!
//! `secret` makes a client secret for `POST /oauth/token`, prints it once, and prints (or, with
//! `--write`, puts into the policy file) its argon2id `client_secret_hash`. `--write` replaces
//! the file atomically (temporary file + rename), changes only the `client_secret_hash` line,
//! and refuses to write a file the policy loader would reject. Never: print the hash of a secret
//! anywhere but stdout, or the secret anywhere but stdout once.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{ArgGroup, Args};

use crate::app::{load_options, now_unix, revocation_lifetime};
use crate::config::StoreKind;
use crate::policy::Policy;
use crate::principal::DeveloperId;
use crate::token::revocation::{self, Revocation, Target};
use crate::token::shared_revocations::push_blocking;
use crate::token::{generate_client_secret, hash_client_secret};

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("target").required(true).args(["jti", "developer"])))]
pub struct RevokeArgs {
    #[command(flatten)]
    pub config: super::ConfigArg,
    /// Revoke the token with this jti.
    #[arg(long)]
    pub jti: Option<String>,
    /// Revoke every token of this developer issued before now.
    #[arg(long)]
    pub developer: Option<String>,
}

/// Appends the revocation durably; running servers enforce it within a second.
pub fn revoke(args: &RevokeArgs) -> anyhow::Result<()> {
    let config = super::load_tools_config(&args.config.config)?;
    let target = match (&args.jti, &args.developer) {
        (Some(jti), None) => {
            revocation::check_jti(jti).map_err(|e| anyhow::anyhow!("--jti: {e}"))?;
            Target::Jti(jti.clone())
        }
        (None, Some(dev)) => Target::Developer(DeveloperId::parse(dev)?),
        _ => anyhow::bail!("give exactly one of --jti and --developer"),
    };
    let now = now_unix();
    let entry = Revocation {
        target: target.clone(),
        revoked_at: now,
    };
    let path = &config.tokens.revocations;
    let dropped = revocation::append(path, &entry, now, revocation_lifetime(&config))?;
    match &target {
        Target::Jti(jti) => eprintln!("revoked token {jti}"),
        Target::Developer(dev) => eprintln!("revoked every token of {dev} issued until now"),
    }
    if dropped > 0 {
        eprintln!("compacted {}: {dropped} expired entries removed", path.display());
    }
    if let StoreKind::Redis(url) = &config.rate_limit.store {
        push_blocking(url, std::slice::from_ref(&entry), revocation_lifetime(&config)).map_err(|e| {
            anyhow::anyhow!(
                "the revocation is in {} but could not be shared through {url}: {e}; other instances \
                 will get it when this host's server reaches Redis, or rerun this command",
                path.display()
            )
        })?;
        eprintln!("shared through {url}: every instance refuses it within a second");
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct SecretArgs {
    #[command(flatten)]
    pub config: super::ConfigArg,
    /// The developer (client id) the secret is for.
    #[arg(long)]
    pub developer: String,
    /// Put the client_secret_hash line into policies/DEVELOPER.toml (replacing any old one).
    #[arg(long)]
    pub write: bool,
}

/// Prints a new client secret (once) and its hash line, or writes the hash into the policy.
pub fn secret(args: &SecretArgs) -> anyhow::Result<()> {
    let developer = DeveloperId::parse(&args.developer)?;
    let secret = generate_client_secret().map_err(|e| anyhow::anyhow!(e))?;
    let hash = hash_client_secret(&secret).map_err(|e| anyhow::anyhow!(e))?;
    let line = format!("client_secret_hash = \"{hash}\"");
    let mut out = std::io::stdout().lock();
    if args.write {
        let config = super::load_tools_config(&args.config.config)?;
        let file = config.policies_dir.join(format!("{developer}.toml"));
        write_hash_line(&file, &line, &load_options(&config))?;
        writeln!(out, "{}", secret.as_str())?;
        eprintln!(
            "wrote client_secret_hash into {}; running servers use it after their policy reload \
             (folder watch or SIGHUP). The secret above is shown once: give it to {developer} now.",
            file.display()
        );
    } else {
        writeln!(out, "{}", secret.as_str())?;
        writeln!(out, "{line}")?;
        eprintln!(
            "line 1: the client secret for {developer} (shown once); line 2: put it into \
             policies/{developer}.toml (or rerun with --write)."
        );
    }
    Ok(())
}

/// Replaces (or inserts, after the last top-level line before the first table) the
/// `client_secret_hash` line of a policy file; everything else stays byte for byte. The result
/// must load as a policy, or nothing is written.
fn write_hash_line(file: &Path, line: &str, opts: &crate::policy::LoadOptions) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("{}: cannot read the policy (create it first)", file.display()))?;
    let updated = with_hash_line(&text, line);
    Policy::from_toml(file, &updated, opts).map_err(|errors| {
        let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!(
            "the updated policy would be invalid; nothing written:\n{}",
            list.join("\n")
        )
    })?;
    let dir: PathBuf = file.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("policy");
    // A leading dot: the policy loader (and its folder watch) ignore the temporary file.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .tempfile_in(&dir)
        .with_context(|| format!("{}: cannot create a temporary file", dir.display()))?;
    tmp.write_all(updated.as_bytes())?;
    if let Ok(meta) = std::fs::metadata(file) {
        let mode = meta.permissions().mode() & 0o7777;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(file)
        .map_err(|e| anyhow::anyhow!("{}: cannot replace: {}", file.display(), e.error))?;
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The policy text with `line` as its `client_secret_hash`.
fn with_hash_line(text: &str, line: &str) -> String {
    let mut pieces: Vec<&str> = text.split_inclusive('\n').collect();
    let first_table = pieces
        .iter()
        .position(|l| l.trim_start().starts_with('['))
        .unwrap_or(pieces.len());
    let existing = pieces[..first_table].iter().position(|l| {
        let l = l.trim_start();
        l.strip_prefix("client_secret_hash")
            .is_some_and(|rest| rest.trim_start().starts_with('='))
    });
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let owned = format!("{line}{newline}");
    match existing {
        Some(i) => {
            let ending = if pieces[i].ends_with("\r\n") {
                "\r\n"
            } else if pieces[i].ends_with('\n') {
                "\n"
            } else {
                ""
            };
            let replaced = format!("{line}{ending}");
            let mut out = String::with_capacity(text.len() + line.len());
            for (j, piece) in pieces.iter().enumerate() {
                out.push_str(if j == i { &replaced } else { piece });
            }
            out
        }
        None => {
            // After the last key line of the top level, so comments above the first table stay
            // with it; at the very top when the top level has no keys.
            let at = pieces[..first_table]
                .iter()
                .rposition(|l| {
                    let t = l.trim();
                    !t.is_empty() && !t.starts_with('#')
                })
                .map_or(0, |i| i + 1);
            let mut out = String::with_capacity(text.len() + owned.len() + 1);
            for piece in &pieces[..at] {
                out.push_str(piece);
            }
            if at > 0 && !out.ends_with('\n') {
                out.push_str(newline);
            }
            out.push_str(&owned);
            pieces.drain(..at);
            for piece in pieces {
                out.push_str(piece);
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_hash_line;

    const LINE: &str = "client_secret_hash = \"$argon2id$new\"";

    #[test]
    fn an_existing_hash_line_is_replaced_and_nothing_else_changes() {
        let text =
            "# alice\ndescription = \"x\"\n  client_secret_hash = \"$argon2id$old\"\r\n\n[[allow]]\ncalls = [\"A::b\"]";
        let want =
            "# alice\ndescription = \"x\"\nclient_secret_hash = \"$argon2id$new\"\r\n\n[[allow]]\ncalls = [\"A::b\"]";
        assert_eq!(with_hash_line(text, LINE), want);
    }

    #[test]
    fn a_missing_hash_line_goes_after_the_top_level_keys_before_table_comments() {
        let text =
            "description = \"x\"\nsource_ips = [\n  \"10.0.0.0/8\",\n]\n\n# mail\n[[allow]]\ncalls = [\"A::b\"]\n";
        let want = "description = \"x\"\nsource_ips = [\n  \"10.0.0.0/8\",\n]\nclient_secret_hash = \"$argon2id$new\"\n\n# mail\n[[allow]]\ncalls = [\"A::b\"]\n";
        assert_eq!(with_hash_line(text, LINE), want);
    }

    #[test]
    fn without_top_level_keys_the_line_goes_first() {
        let text = "# c\n[[allow]]\ncalls = [\"A::b\"]\n";
        assert_eq!(with_hash_line(text, LINE), format!("{LINE}\n{text}"));
    }

    #[test]
    fn a_hash_line_inside_a_table_is_not_touched() {
        let text = "[[allow]]\ncalls = [\"A::b\"]\n# client_secret_hash = \"no\"\n";
        assert_eq!(with_hash_line(text, LINE), format!("{LINE}\n{text}"));
    }
}
