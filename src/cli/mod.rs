//! The command line: one subcommand per contract §1 command. Output meant for scripts goes to
//! stdout, problems to stderr with a non-zero exit.

mod audit;
mod check;
mod demo;
mod keys;
mod probe;
mod revocation_watch;
pub mod serve;
mod token;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::Config;

/// cpgate: scoped, short-lived credentials for the cPanel API.
#[derive(Parser, Debug)]
#[command(name = "cpgate", version, about, long_about = None)]
pub struct Cli {
    /// Log output format (logs go to stderr; filter with RUST_LOG, e.g. RUST_LOG=cpgate=debug).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// `--config PATH`, shared by the commands that need the config.
#[derive(Args, Debug, Clone)]
pub struct ConfigArg {
    /// The config file.
    #[arg(long, default_value = "cpgate.toml")]
    pub config: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the proxy until SIGTERM/SIGINT (drains in-flight requests); SIGHUP reloads policies.
    #[command(after_help = "Example:\n  cpgate serve --config /etc/cpgate/cpgate.toml")]
    Serve(ConfigArg),
    /// Validate the config and every policy file; print problems as FILE:LINE: message.
    #[command(after_help = "Example:\n  cpgate check --config cpgate.toml && echo valid")]
    Check(ConfigArg),
    /// Dry run: would this request by this developer be allowed, and by which rule?
    #[command(
        after_help = "Examples:\n  cpgate explain --developer alice 'GET /execute/Email/add_pop?email=a@example.com'\n  \
        cpgate explain --developer dns 'POST /json-api/cpanel' --body 'cpanel_jsonapi_module=ZoneEdit&cpanel_jsonapi_func=fetchzones&cpanel_jsonapi_apiversion=2'"
    )]
    Explain(check::ExplainArgs),
    /// Access tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Audit log tools.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Run an emulated cPanel server (UAPI and API 2 with in-memory state) for demos and tests.
    #[command(
        after_help = "Example:\n  cpgate emulate --listen 127.0.0.1:2084 --user acctuser --token MASTERTOKEN123"
    )]
    Emulate(EmulateArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "Example:\n  cpgate completions bash > /etc/bash_completion.d/cpgate")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Health check for containers: GET a URL, exit 0 on 2xx.
    #[command(after_help = "Example:\n  cpgate probe http://127.0.0.1:9483/readyz")]
    Probe(probe::ProbeArgs),
    /// Start an emulated cPanel and cpgate on loopback, make allowed and denied calls, keep running.
    #[command(
        after_help = "Example:\n  cargo run --release -- demo     # then repeat the printed curl lines; Ctrl-C to stop"
    )]
    Demo,
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Print one signed access token for a developer on stdout.
    #[command(
        after_help = "Example:\n  cpgate token issue --developer alice --ttl 15m --scope 'Email::list_pops Email::add_pop'"
    )]
    Issue(keys::IssueArgs),
    /// Revoke one token (--jti) or every token of a developer issued until now (--developer);
    /// running servers enforce it within a second, and it survives restarts.
    #[command(
        after_help = "Examples:\n  cpgate token revoke --jti 0b7d6f3e-8c1a-4f3e-9a57-2f1c5e9d4b21\n  \
        cpgate token revoke --developer alice"
    )]
    Revoke(token::RevokeArgs),
    /// Make a client secret for POST /oauth/token: print it once, and print (or --write into the
    /// policy) its argon2id client_secret_hash.
    #[command(after_help = "Examples:\n  cpgate token secret --developer alice\n  \
        SECRET=$(cpgate token secret --developer alice --write)")]
    Secret(token::SecretArgs),
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Write a new private key (PKCS#8 PEM, mode 0600) and its public key; print the kid.
    #[command(after_help = "Example:\n  cpgate keys generate --dir keys --alg EdDSA")]
    Generate(keys::GenerateArgs),
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Verify the hash chain of audit files (oldest first); exit 1 on any break.
    #[command(after_help = "Example:\n  cpgate audit verify audit/audit.jsonl.1 audit/audit.jsonl")]
    Verify(audit::VerifyArgs),
    /// Print matching records as JSON lines (or a table with --table).
    #[command(
        after_help = "Example:\n  cpgate audit query audit/audit.jsonl --developer alice --decision deny --since 1h --table"
    )]
    Query(audit::QueryArgs),
}

#[derive(Args, Debug)]
pub struct EmulateArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:2084")]
    pub listen: SocketAddr,
    /// The cPanel account user name.
    #[arg(long)]
    pub user: String,
    /// The master API token the emulator accepts (or set CPGATE_EMULATE_TOKEN).
    #[arg(
        long,
        env = "CPGATE_EMULATE_TOKEN",
        hide_env_values = true,
        required_unless_present = "token_file"
    )]
    pub token: Option<String>,
    /// Read the master API token from this file instead (e.g. a Docker secret).
    #[arg(long, conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
}

impl EmulateArgs {
    fn token(&self) -> anyhow::Result<crate::secret::Secret> {
        let token = match (&self.token, &self.token_file) {
            (Some(t), _) => t.clone(),
            (None, Some(f)) => std::fs::read_to_string(f)
                .map_err(|e| anyhow::anyhow!("--token-file {}: {e}", f.display()))?
                .trim()
                .to_owned(),
            (None, None) => anyhow::bail!("give --token or --token-file"),
        };
        Ok(crate::secret::Secret::new(token))
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    // The demo prints its own story; only warnings and errors interleave with it by default.
    let default_level = if matches!(cli.command, Command::Demo) {
        "warn"
    } else {
        "info"
    };
    init_logging(cli.log_format, default_level);
    let result = match cli.command {
        Command::Serve(c) => runtime().and_then(|rt| rt.block_on(serve::serve(&c.config))),
        Command::Check(c) => return check::check(&c.config),
        Command::Explain(args) => return check::explain(&args),
        Command::Token(TokenCommand::Issue(args)) => keys::issue(&args),
        Command::Token(TokenCommand::Revoke(args)) => token::revoke(&args),
        Command::Token(TokenCommand::Secret(args)) => token::secret(&args),
        Command::Keys(KeysCommand::Generate(args)) => keys::generate(&args),
        Command::Audit(AuditCommand::Verify(args)) => return audit::verify_files(&args),
        Command::Audit(AuditCommand::Query(args)) => audit::query_files(&args),
        Command::Emulate(args) => args
            .token()
            .and_then(|token| runtime().and_then(|rt| rt.block_on(serve::emulate(args.listen, args.user, token)))),
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            use std::io::Write as _;
            // Render to memory first: clap_complete panics on a write error (e.g. a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "cpgate", &mut script);
            std::io::stdout().write_all(&script).map_err(anyhow::Error::from)
        }
        Command::Probe(args) => runtime().and_then(|rt| rt.block_on(probe::probe(&args))),
        Command::Demo => runtime().and_then(|rt| rt.block_on(demo::demo())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

fn load_config(path: &std::path::Path) -> anyhow::Result<Config> {
    Ok(Config::load(path)?)
}

/// The config for commands that never call cPanel: the master token is not read.
fn load_tools_config(path: &std::path::Path) -> anyhow::Result<Config> {
    Ok(Config::load_for_tools(path)?)
}

fn init_logging(format: LogFormat, default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
