//! `serve` (the HTTP server) and `key` (its API keys).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use contactdb::Role;

use crate::commands::{open_existing, open_for_write, open_workspace};
use crate::util::{create_output, eprint_line};

/// `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (loopback by default).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Most bytes of a request body; larger bodies get 413.
    #[arg(long, value_name = "BYTES", default_value_t = contactdb_server::MAX_BODY_DEFAULT)]
    pub max_body: usize,
    /// Most requests per minute per API key (more get 429 with Retry-After);
    /// unlimited when not given.
    #[arg(long, value_name = "N")]
    pub rate_limit: Option<u32>,
    /// Also deliver triggered change events to this webhook (see `feed deliver`).
    #[arg(long, value_name = "URL")]
    pub deliver: Option<String>,
    /// How delivered events are signed and tracked.
    #[command(flatten)]
    pub hook: HookArgs,
}

/// How webhook deliveries are signed and tracked.
#[derive(Debug, Args)]
pub struct HookArgs {
    /// The HMAC-SHA256 key of the signature header (default: the environment
    /// variable CONTACTDB_WEBHOOK_SECRET).
    #[arg(long, value_name = "SECRET")]
    pub secret: Option<String>,
    /// The feed consumer that records what the webhook accepted.
    #[arg(long, value_name = "NAME", default_value = "webhook")]
    pub consumer: String,
}

impl HookArgs {
    /// The webhook at `url`.
    pub fn webhook(&self, url: &str) -> anyhow::Result<contactdb_server::deliver::Webhook> {
        let secret = match &self.secret {
            Some(s) => s.clone(),
            None => std::env::var("CONTACTDB_WEBHOOK_SECRET").map_err(|_| {
                anyhow::anyhow!(
                    "a webhook needs a signing secret: --secret or CONTACTDB_WEBHOOK_SECRET"
                )
            })?,
        };
        Ok(contactdb_server::deliver::Webhook {
            url: url.to_owned(),
            secret: secret.into_bytes(),
            consumer: self.consumer.clone(),
            timeout: std::time::Duration::from_secs(30),
        })
    }
}

/// `key`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an API key for the workspace; prints its token once (only a hash is kept).
    Create(KeyCreateArgs),
    /// Print the workspace's keys (never their tokens) as JSON Lines.
    List,
    /// Revoke a key by its id.
    Revoke(KeyIdArg),
}

/// A key's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// Read job states.
    Read,
    /// Send bulk requests and jobs.
    Write,
    /// Everything.
    Manage,
}

/// `key create`.
#[derive(Debug, Args)]
pub struct KeyCreateArgs {
    /// What the key may do.
    #[arg(long, value_enum)]
    pub role: RoleArg,
}

/// A key id.
#[derive(Debug, Args)]
pub struct KeyIdArg {
    /// The key's id (from `key list`).
    pub id: String,
}

/// Runs `key`.
pub fn key(db_path: &Path, workspace: &str, cmd: &KeyCommand) -> anyhow::Result<ExitCode> {
    let mut out = create_output(None)?;
    match cmd {
        KeyCommand::Create(a) => {
            let db = open_for_write(db_path)?;
            let ws = open_workspace(&db, workspace)?;
            let role = match a.role {
                RoleArg::Read => Role::Read,
                RoleArg::Write => Role::Write,
                RoleArg::Manage => Role::Manage,
            };
            let (info, token) = ws.create_key(role)?;
            eprint_line(&format!(
                "created key {} ({:?}) for workspace {}; the token below is shown only now",
                info.id, info.role, info.workspace
            ));
            std::io::Write::write_all(&mut out, format!("{token}\n").as_bytes())?;
        }
        KeyCommand::List => {
            let db = open_existing(db_path)?;
            let ws = open_workspace(&db, workspace)?;
            for k in ws.keys()? {
                serde_json::to_writer(&mut out, &k)?;
                std::io::Write::write_all(&mut out, b"\n")?;
            }
        }
        KeyCommand::Revoke(a) => {
            let db = open_for_write(db_path)?;
            let ws = open_workspace(&db, workspace)?;
            if !ws.revoke_key(&a.id)? {
                anyhow::bail!("no live key {:?} in workspace {workspace:?}", a.id);
            }
            eprint_line(&format!("revoked key {}", a.id));
        }
    }
    std::io::Write::flush(&mut out)?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `serve` until SIGTERM or Ctrl-C.
pub fn serve(db_path: &Path, args: &ServeArgs) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let db = open_for_write(db_path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the server's runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        eprint_line(&format!(
            "listening on http://{addr} ({})",
            crate::util::shown(db_path)
        ));
        let config = contactdb_server::Config {
            max_body: args.max_body,
            webhook: args
                .deliver
                .as_deref()
                .map(|u| args.hook.webhook(u))
                .transpose()?,
            ..contactdb_server::Config::default()
        };
        contactdb_server::serve(db, listener, config, contactdb_server::termination()).await?;
        eprint_line("stopped");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
