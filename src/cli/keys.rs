//! `cpgate token issue` and `cpgate keys generate`.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;

use crate::app::token_rules;
use crate::config::parse_duration;
use crate::principal::DeveloperId;
use crate::token::{generate_key, issue as sign, Algorithm, KeyRing};

#[derive(Args, Debug)]
pub struct IssueArgs {
    #[command(flatten)]
    pub config: super::ConfigArg,
    /// The developer id (must have a policy file).
    #[arg(long)]
    pub developer: String,
    /// Lifetime, e.g. 15m (default: tokens.default_ttl, capped by the policy's max_token_ttl).
    #[arg(long)]
    pub ttl: Option<String>,
    /// Space-separated call patterns narrowing the policy, e.g. 'Email::list_pops api2:ZoneEdit::*'.
    #[arg(long)]
    pub scope: Option<String>,
}

/// Prints one signed token on stdout.
pub fn issue(args: &IssueArgs) -> anyhow::Result<()> {
    let config = super::load_tools_config(&args.config.config)?;
    let developer = DeveloperId::parse(&args.developer)?;
    let policies = crate::app::load_policies(&config).map_err(|e| anyhow::anyhow!("policies are invalid:\n{e}"))?;
    let policy = policies.get(developer.as_str()).ok_or_else(|| {
        anyhow::anyhow!("no policy for developer {developer}: tokens are only issued to known developers")
    })?;
    if !policy.enabled {
        anyhow::bail!("the policy of {developer} is disabled");
    }
    if policy.expires.is_some_and(|at| at <= time::OffsetDateTime::now_utc()) {
        anyhow::bail!("the policy of {developer} has expired");
    }
    if let Some(scope) = &args.scope {
        crate::token::check_scope(policy, scope).map_err(|e| anyhow::anyhow!("--scope: {e}"))?;
    }
    let max = policy
        .max_token_ttl
        .map_or(config.tokens.max_ttl, |m| m.min(config.tokens.max_ttl));
    let ttl = match &args.ttl {
        Some(t) => parse_duration(t).map_err(|e| anyhow::anyhow!("--ttl: {e}"))?,
        None => config.tokens.default_ttl.min(max),
    };
    if ttl > max {
        anyhow::bail!(
            "--ttl {} is above the allowed maximum {} for {developer}",
            humantime::format_duration(ttl),
            humantime::format_duration(max)
        );
    }
    let t = &config.tokens;
    let keys = KeyRing::load(t.algorithm, &t.key_file, &t.key_id, &t.verify_keys)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let mut rules = token_rules(&config);
    rules.max_ttl = max;
    let issued = sign(&keys, &rules, &developer, ttl, args.scope.as_deref(), now)?;
    println!("{}", issued.token);
    Ok(())
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Folder for the key files (created if missing).
    #[arg(long)]
    pub dir: PathBuf,
    /// Signature algorithm.
    #[arg(long, default_value = "EdDSA", value_parser = parse_alg)]
    pub alg: Algorithm,
}

fn parse_alg(s: &str) -> Result<Algorithm, String> {
    match s {
        "EdDSA" => Ok(Algorithm::EdDSA),
        "ES256" => Ok(Algorithm::ES256),
        "RS256" => Ok(Algorithm::RS256),
        "HS256" => Ok(Algorithm::HS256),
        other => Err(format!("{other:?} is not one of EdDSA, ES256, RS256, HS256")),
    }
}

/// Writes a new key pair; prints the kid on stdout and the files on stderr.
pub fn generate(args: &GenerateArgs) -> anyhow::Result<()> {
    let key = generate_key(args.alg, &args.dir)?;
    eprintln!("private key: {}", key.private_key.display());
    if let Some(public) = &key.public_key {
        eprintln!("public key:  {}", public.display());
    }
    println!("{}", key.kid);
    Ok(())
}
