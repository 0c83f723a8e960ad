use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use portcullis::config::{self, Config};
use portcullis::server::{self, Overrides};
use portcullis::{backup, healthcheck};
use portcullis_client::Exit;

/// Portcullis: a self-hosted identity provider with passkeys and Conditional Access.
#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about,
    propagate_version = true,
    after_help = "Exit codes: 0 done; 1 the server refused (its message is printed), could not be reached, \
or a check found something (healthcheck, check-config --strict, policy analyze); 2 usage: the command line, \
a file it names or the local credentials."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the server (migrates the database, and on first start creates the tenant).
    Serve(ServerArgs),
    /// Bring the database schema up to date, then exit.
    Migrate(ServerArgs),
    /// Print the resolved configuration with secrets redacted, then exit. Warns on standard
    /// error when a production-looking configuration misses a setting it needs.
    CheckConfig {
        #[command(flatten)]
        args: ServerArgs,
        /// Exit 1 when there is a warning
        #[arg(long)]
        strict: bool,
    },
    /// Copy a running server's SQLite database, with the key that seals its signing keys, into
    /// one file only its owner can read (PostgreSQL: use pg_dump, see README)
    Backup {
        /// The backup file to write (never overwritten)
        #[arg(value_name = "FILE")]
        file: PathBuf,
        #[command(flatten)]
        args: ServerArgs,
    },
    /// Make a new data folder from a backup; start it with `serve --data-dir DIR`
    Restore {
        /// A file `portcullis backup` wrote
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The new data folder (must not exist, or be empty)
        #[arg(long, value_name = "DIR", required = true)]
        data_dir: PathBuf,
    },
    /// Ask the local server's /readyz whether it is ready: exit 0 if so, 1 if not (for
    /// container health checks)
    Healthcheck {
        #[command(flatten)]
        args: ServerArgs,
        /// host:port to ask [default: the listen address, 0.0.0.0 read as 127.0.0.1]
        #[arg(long, value_name = "HOST:PORT")]
        address: Option<String>,
        /// Seconds to wait for the answer
        #[arg(long, value_name = "SECONDS", default_value_t = 5)]
        timeout: u64,
    },
    /// Token signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    #[command(flatten)]
    Admin(portcullis_client::cli::AdminCommand),
    /// Offline Conditional Access tools (no server or database): what-if, lint.
    Policy {
        #[command(subcommand)]
        command: portcullis_policy_tools::PolicyCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Make the next signing key. It is published at once and signs after
    /// `signing_key_prepublish_hours` (so clients that cache the key set have it by then);
    /// tokens already issued stay valid until they expire.
    Rotate {
        #[command(flatten)]
        args: ServerArgs,
        /// Retire the key in use now and sign with the new one at once (a key that may have
        /// leaked). Clients that cached the key set cannot verify new tokens until they fetch it
        /// again.
        #[arg(long)]
        immediately: bool,
    },
}

/// Settings given as flags win over `PORTCULLIS_*` environment variables, which win over the
/// config file.
#[derive(Args, Default)]
struct ServerArgs {
    /// A TOML config file.
    #[arg(long, env = "PORTCULLIS_CONFIG")]
    config: Option<PathBuf>,
    /// Folder for the embedded database, secret key and bootstrap.json [default: ./portcullis-data]
    #[arg(long)]
    data_dir: Option<String>,
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long)]
    listen: Option<String>,
    /// Address people and applications use to reach this server [default: http://localhost:8080]
    #[arg(long)]
    public_url: Option<String>,
    /// sqlite://… or postgres://… [default: SQLite in the data folder]
    #[arg(long)]
    database_url: Option<String>,
    /// human or json
    #[arg(long)]
    log_format: Option<String>,
    /// A tracing filter such as info or portcullis=debug
    #[arg(long)]
    log_level: Option<String>,
}

impl ServerArgs {
    fn resolve(&self) -> anyhow::Result<Config> {
        let mut flags: BTreeMap<&'static str, String> = BTreeMap::new();
        for (key, value) in [
            ("data_dir", &self.data_dir),
            ("listen", &self.listen),
            ("public_url", &self.public_url),
            ("database_url", &self.database_url),
            ("log_format", &self.log_format),
            ("log_level", &self.log_level),
        ] {
            if let Some(v) = value {
                flags.insert(key, v.clone());
            }
        }
        config::resolve(self.config.as_deref(), std::env::vars(), &flags)
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("cannot install the SIGTERM handler");
        tokio::select! {
            _ = interrupt => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

/// Shows a first start's pass on standard output, in one write, before the first start is
/// committed (see [`server::HandOut`]).
struct PrintToTerminal;

impl PrintToTerminal {
    fn write(text: &str) -> anyhow::Result<()> {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()?;
        Ok(())
    }
}

impl server::HandOut for PrintToTerminal {
    fn show(&self, notice: &server::FirstStartNotice<'_>) -> anyhow::Result<()> {
        let valid_until = notice
            .pass
            .valid_until
            .to_offset(time::UtcOffset::UTC)
            .format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))?;
        let url = notice.public_url;
        let file = notice.file.display();
        Self::write(&format!(
            "First start: created the tenant and its administrator.\n\
             \n\
             \x20 Sign in at:             {url}/signin\n\
             \x20 Administrator:          {upn}\n\
             \x20 Temporary Access Pass:  {pass}\n\
             \x20                         (works once, until {valid_until})\n\
             \x20 Automation credentials: {file} (client id {client_id})\n\
             \x20 Admin API:              {url}/graph/v1.0\n\
             \n\
             Sign in with the pass and register a passkey. If the pass expires unused, \
             `portcullis passes issue {upn}` issues another with the automation credentials.\n\
             Keep {file} private: its secret grants every admin permission.\n\n",
            upn = notice.credentials.admin_user_principal_name,
            pass = notice.pass.temporary_access_pass,
            client_id = notice.credentials.client_id,
        ))
    }

    fn withdraw(&self, _: &server::FirstStartNotice<'_>) -> anyhow::Result<()> {
        Self::write(
            "Another node completed the first start at the same moment: the pass above is void. \
             Use the pass that node printed.\n\n",
        )
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    portcullis::init_logging(&config);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let overrides = Overrides {
        hand_out: std::sync::Arc::new(PrintToTerminal),
        ..Overrides::default()
    };
    let mut server = server::start(&config, listener, overrides).await?;
    println!(
        "Portcullis is running at {}  (listening on {})",
        server.public_url, server.local_addr
    );
    let stop = server.take_shutdown();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing requests in flight");
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
    });
    server.wait().await?;
    tracing::info!("stopped");
    Ok(())
}

/// A command that failed, and the exit status that says how ([`Exit`]: one rule for every
/// command, in the client crate).
struct Failure {
    exit: Exit,
    message: String,
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure {
            exit: Exit::Refused,
            message: format!("{e:#}"),
        }
    }
}

impl From<portcullis_client::ClientError> for Failure {
    fn from(e: portcullis_client::ClientError) -> Self {
        Failure {
            exit: e.exit(),
            message: e.to_string(),
        }
    }
}

impl From<backup::BackupError> for Failure {
    fn from(e: backup::BackupError) -> Self {
        Failure {
            exit: e.exit(),
            message: e.to_string(),
        }
    }
}

/// The configuration, where a bad one is a usage error (exit 2).
fn resolve_or_usage(args: &ServerArgs) -> Result<Config, Failure> {
    args.resolve().map_err(|e| Failure {
        exit: Exit::Usage,
        message: format!("{e:#}"),
    })
}

async fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Policy { .. } => unreachable!("handled before the runtime starts"),
        Command::Admin(cmd) => Ok(portcullis_client::cli::run(cmd, &mut std::io::stdout()).await?),
        Command::Backup { file, args } => {
            let config = resolve_or_usage(&args)?;
            let made = tokio::task::spawn_blocking(move || backup::backup(&config, &file))
                .await
                .map_err(|e| anyhow::anyhow!("the backup did not finish: {e}"))??;
            println!(
                "Backed up the database ({} bytes, integrity checked) and its sealing key to {} (readable by its owner only).\n\
                 Restore with: portcullis restore {} --data-dir NEW_FOLDER, and serve it at {} (the issuer its tokens name).",
                made.database_bytes,
                made.file.display(),
                made.file.display(),
                made.public_url
            );
            Ok(())
        }
        Command::Restore { file, data_dir } => {
            let restored = tokio::task::spawn_blocking(move || backup::restore(&file, &data_dir))
                .await
                .map_err(|e| anyhow::anyhow!("the restore did not finish: {e}"))??;
            println!(
                "Restored the backup of {} into {}: the database ({} bytes, integrity checked) and secret.key.\n\
                 Start it with: portcullis serve --data-dir {} --public-url {}\n\
                 bootstrap.json is not in a backup: the automation credentials you hold still work.",
                restored.created,
                restored.data_dir.display(),
                restored.database_bytes,
                restored.data_dir.display(),
                restored.public_url
            );
            Ok(())
        }
        Command::Healthcheck {
            args,
            address,
            timeout,
        } => {
            let address = match address {
                Some(a) => a,
                None => healthcheck::local_address(resolve_or_usage(&args)?.listen).to_string(),
            };
            let timeout = std::time::Duration::from_secs(timeout.max(1));
            tokio::task::spawn_blocking(move || healthcheck::check(&address, timeout))
                .await
                .map_err(|e| anyhow::anyhow!("the check did not finish: {e}"))?
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("ready");
            Ok(())
        }
        Command::Serve(args) => serve(args.resolve()?).await.map_err(Failure::from),
        Command::Migrate(args) => {
            let config = args.resolve()?;
            portcullis::init_logging(&config);
            let store = server::open_store(&config).await?;
            store.close().await;
            println!(
                "The database is up to date ({}).",
                config::redact_url_password(&config.database_url())
            );
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Rotate { args, immediately },
        } => {
            let config = args.resolve()?;
            let rotated = server::rotate_signing_keys(&config, immediately)
                .await
                .map_err(Failure::from)?;
            let signs_from = rotated
                .signs_from
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            for (algorithm, kid) in &rotated.kids {
                if immediately {
                    println!(
                        "A new {algorithm} signing key is in use: {kid}. The previous {algorithm} key no longer signs; it stays published until its tokens expire."
                    );
                } else {
                    println!(
                        "A new {algorithm} signing key is published: {kid}. It signs from {signs_from} (UTC); until then the {algorithm} key in use goes on signing."
                    );
                }
            }
            Ok(())
        }
        Command::CheckConfig { args, strict } => {
            let config = args.resolve()?;
            // Files the settings name are opened as `serve` would, so a bad one is found here
            // rather than at the next start.
            server::load_country_database(&config)?;
            print!("{}", config.redacted_toml());
            let warnings = config.production_warnings();
            for warning in &warnings {
                eprintln!("warning: {warning}");
            }
            if strict && !warnings.is_empty() {
                return Err(Failure {
                    exit: Exit::Refused,
                    message: format!(
                        "{} warning(s) and --strict: see README \"Running in production\" and deploy/",
                        warnings.len()
                    ),
                });
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    portcullis::prepare_process();
    let cli = Cli::parse();
    // The offline tools need no runtime, and their exit codes are their own (2: bad input).
    if let Command::Policy { command } = cli.command {
        let code =
            portcullis_policy_tools::run(command, &mut std::io::stdout(), &mut std::io::stderr());
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.exit.code())
        }
    }
}
