//! `cpgate check` and `cpgate explain`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use time::OffsetDateTime;

use crate::app::load_options;
use crate::call::Method;
use crate::classify::{classify, RawRequest};
use crate::config::Config;
use crate::policy::{Decision, DecisionRequest, PolicySet};

/// Validates the config and every policy; prints `FILE:LINE: message` per problem.
pub fn check(config_path: &Path) -> ExitCode {
    let config = match Config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let mut ok = true;
    let t = &config.tokens;
    if let Err(e) = crate::token::KeyRing::load(t.algorithm, &t.key_file, &t.key_id, &t.verify_keys) {
        eprintln!("{}:0: signing keys: {e}", config.path.display());
        ok = false;
    }
    match PolicySet::load_dir(&config.policies_dir, &load_options(&config)) {
        Ok(set) => {
            for w in set.warnings() {
                eprintln!("{}:{}: warning: {}", w.file.display(), w.line, w.message);
            }
            if ok {
                println!("ok: config and {} policies are valid", set.len());
            }
        }
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            ok = false;
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub config: super::ConfigArg,
    /// The developer id (policy file stem).
    #[arg(long)]
    pub developer: String,
    /// The request: 'METHOD /path?query'.
    pub request: String,
    /// The request body (form-encoded unless --content-type says otherwise).
    #[arg(long, default_value = "")]
    pub body: String,
    /// The body's Content-Type.
    #[arg(long)]
    pub content_type: Option<String>,
    /// The client address to evaluate source_ips against.
    #[arg(long, default_value = "127.0.0.1")]
    pub client_ip: IpAddr,
    /// A token scope to apply (space-separated call patterns).
    #[arg(long)]
    pub scope: Option<String>,
}

/// Prints `allow` or `deny`, the deciding rule and why; exit 0 for allow, 1 for deny.
pub fn explain(args: &ExplainArgs) -> ExitCode {
    match decide(args) {
        Ok((decision, call)) => {
            match decision {
                Decision::Allow { rule } => println!("allow\nrule: {rule}\ncall: {call}"),
                Decision::Deny { rule, why } => {
                    println!("deny");
                    if let Some(rule) = rule {
                        println!("rule: {rule}");
                    }
                    println!("call: {call}\nwhy: {why}");
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn decide(args: &ExplainArgs) -> anyhow::Result<(Decision, String)> {
    let config = Config::load_for_tools(&args.config.config)?;
    let set = PolicySet::load_dir(&config.policies_dir, &load_options(&config))
        .map_err(|errs| anyhow::anyhow!(errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")))?;
    let policy = set.get(&args.developer).ok_or_else(|| {
        anyhow::anyhow!(
            "no policy for developer {:?} in {}",
            args.developer,
            show(&config.policies_dir)
        )
    })?;
    let (method, target) = args
        .request
        .split_once(' ')
        .ok_or_else(|| anyhow::anyhow!("REQUEST must look like 'GET /execute/Module/function?x=1'"))?;
    let method = match method {
        "GET" => Method::Get,
        "POST" => Method::Post,
        other => anyhow::bail!("method {other:?}: only GET and POST are API calls"),
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let raw = RawRequest {
        method,
        path,
        query,
        content_type: args.content_type.as_deref(),
        body: args.body.as_bytes(),
    };
    let call = classify(&raw).map_err(|e| anyhow::anyhow!("{e}"))?;
    let scope = match &args.scope {
        None => None,
        Some(s) => Some(
            s.split_whitespace()
                .map(crate::call::CallPattern::parse_scope)
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let decision = policy.decide(&DecisionRequest {
        call: &call,
        method,
        client_ip: args.client_ip,
        scope: scope.as_deref(),
        now: OffsetDateTime::now_utc(),
    });
    Ok((decision, call.to_string()))
}

fn show(p: &Path) -> String {
    PathBuf::from(p).display().to_string()
}
