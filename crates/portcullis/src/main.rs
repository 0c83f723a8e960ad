use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use portcullis::config::{self, Config};
use portcullis::server::{self, Overrides};

/// Portcullis: a self-hosted identity provider with passkeys and Conditional Access.
#[derive(Parser)]
#[command(name = "portcullis", version, about, propagate_version = true)]
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
    /// Print the resolved configuration with secrets redacted, then exit.
    CheckConfig(ServerArgs),
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

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Policy { .. } => unreachable!("handled before the runtime starts"),
        Command::Admin(cmd) => portcullis_client::cli::run(cmd, &mut std::io::stdout())
            .await
            .map_err(|e| anyhow::anyhow!("{e}")),
        Command::Serve(args) => serve(args.resolve()?).await,
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
            let rotated = server::rotate_signing_keys(&config, immediately).await?;
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
        Command::CheckConfig(args) => {
            let config = args.resolve()?;
            // Files the settings name are opened as `serve` would, so a bad one is found here
            // rather than at the next start.
            server::load_country_database(&config)?;
            print!("{}", config.redacted_toml());
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
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
