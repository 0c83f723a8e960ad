//! Composition: configuration in, a running server out. `serve` and the test kit both start
//! Portcullis through [`start`], so tests exercise exactly what production runs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use base64::Engine as _;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use portcullis_core::bootstrap::{
    self, Bootstrap, BootstrapCredentials, BootstrapPass, BootstrapSettings, FirstStartCommit,
};
use portcullis_core::conditional_access::ConditionalAccess;
use portcullis_core::conditional_access::countries::Countries;
use portcullis_core::directory::Directory;
use portcullis_core::directory::store::DirectoryStore;
use portcullis_core::guard::LockoutGuard;
use portcullis_core::guard::analysis::PolicyAnalyzer;
use portcullis_core::kernel::Deps;
use portcullis_core::kernel::clock::{Clock, SystemClock};
use portcullis_core::kernel::crypto::Sealer;
use portcullis_core::kernel::entropy::{Entropy, SystemEntropy};
use portcullis_core::logs::sign_in::SignInLogs;
use portcullis_core::logs::store::LogStore;
use portcullis_core::methods::passkeys::{Passkeys, TrustedAttestationRoots};
use portcullis_core::methods::password::Passwords;
use portcullis_core::methods::store::MethodStore;
use portcullis_core::methods::tap::TemporaryAccessPasses;
use portcullis_core::methods::totp::SoftwareOath;
use portcullis_core::narrow;
use portcullis_core::oidc::Oidc;
use portcullis_core::oidc::store::OidcStore;
use portcullis_core::oidc::tokens::{RotatedKeys, Rotation, TokenService};
use portcullis_core::session::Sessions;
use portcullis_core::session::store::SessionStore;
use portcullis_core::signin::SignIns;
use portcullis_core::signin::store::SignInStore;
use portcullis_core::store::{Readiness, Store};
use portcullis_store::{SqlStore, StoreOptions};
use portcullis_web::{AppState, PoolStats, Services};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::{Config, decode_secret_key};
use crate::connections::ConnectionLimits;

/// argon2 off the request threads, one hash per core at most: see
/// [`portcullis_core::kernel::typed_secret`]. Waiting for a permit is waiting for a core that would be
/// busy anyway; the memory held is bounded by the number of cores, not by the burst.
pub struct HashingThreads {
    gate: tokio::sync::Semaphore,
}

impl HashingThreads {
    pub fn per_core() -> HashingThreads {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        HashingThreads {
            gate: tokio::sync::Semaphore::new(cores),
        }
    }
}

#[async_trait::async_trait]
impl portcullis_core::kernel::typed_secret::Offload for HashingThreads {
    async fn run(&self, work: Box<dyn FnOnce() + Send>) {
        // The semaphore is never closed, so a permit always comes.
        let _permit = self.gate.acquire().await;
        // A panic in the work leaves its result unset; the caller reports that.
        let _ = tokio::task::spawn_blocking(work).await;
    }
}

/// What a test or an embedding program may swap: the clock, the source of randomness, and how
/// a first start hands out what it created.
#[derive(Clone)]
pub struct Overrides {
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    pub hand_out: Arc<dyn HandOut>,
}

impl Default for Overrides {
    fn default() -> Self {
        Overrides {
            clock: Arc::new(SystemClock),
            entropy: Arc::new(SystemEntropy),
            hand_out: Arc::new(KeepInServer),
        }
    }
}

/// What a first start shows the person who started it, before it is committed.
#[derive(Debug, Clone)]
pub struct FirstStartNotice<'a> {
    pub public_url: &'a str,
    pub credentials: &'a BootstrapCredentials,
    pub pass: &'a BootstrapPass,
    /// Where `bootstrap.json` was written.
    pub file: &'a Path,
}

/// How a first start hands out the pass and says where the automation credentials are.
///
/// [`HandOut::show`] runs after `bootstrap.json` is written and *before* the one commit that
/// creates the tenant, so that a crash can never leave a tenant whose pass nobody saw; when the
/// commit then finds that another node created the tenant first, [`HandOut::withdraw`] says
/// that what was shown is void.
pub trait HandOut: Send + Sync {
    fn show(&self, notice: &FirstStartNotice<'_>) -> anyhow::Result<()>;
    fn withdraw(&self, notice: &FirstStartNotice<'_>) -> anyhow::Result<()>;
}

/// Shows nothing: what was created stays in [`Server::bootstrap`] and [`Server::bootstrap_pass`]
/// (tests and embedding programs read it there).
pub struct KeepInServer;

impl HandOut for KeepInServer {
    fn show(&self, _: &FirstStartNotice<'_>) -> anyhow::Result<()> {
        Ok(())
    }
    fn withdraw(&self, _: &FirstStartNotice<'_>) -> anyhow::Result<()> {
        Ok(())
    }
}

/// A running server.
pub struct Server {
    pub local_addr: SocketAddr,
    pub public_url: String,
    /// Set only on the start that created the tenant.
    pub bootstrap: Option<BootstrapCredentials>,
    /// Where bootstrap.json was written on that start.
    pub bootstrap_file: Option<PathBuf>,
    /// The bootstrap administrator's one-time Temporary Access Pass, on that start only. It is
    /// printed, never written to a file.
    pub bootstrap_pass: Option<BootstrapPass>,
    pub store: SqlStore,
    /// The node's signing keys; `reload_keys` picks up a rotation made elsewhere at once.
    pub tokens: Arc<TokenService>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Stops accepting, lets requests in flight finish, and closes the database pool.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.wait().await
    }

    /// Runs until the server stops (after a shutdown signal).
    pub async fn wait(self) -> anyhow::Result<()> {
        let result = self.task.await.context("server task panicked")?;
        self.store.close().await;
        result.context("server failed")
    }

    /// A handle that stops the server when sent to.
    pub fn take_shutdown(&mut self) -> Option<oneshot::Sender<()>> {
        self.shutdown.take()
    }
}

/// Connects to the configured database and brings its schema up to date.
pub async fn open_store(config: &Config) -> anyhow::Result<SqlStore> {
    if config.is_sqlite() && config.database_url.is_none() {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!(
                "cannot create the data folder {}",
                config.data_dir.display()
            )
        })?;
    }
    let options = StoreOptions {
        max_connections: config.database_max_connections,
        ..StoreOptions::default()
    };
    let url = config.database_url();
    let store = portcullis_store::connect(&url, &options)
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}",
                crate::config::redact_url_password(&url)
            )
        })?;
    store.migrate().await.context("database migration failed")?;
    Ok(store)
}

/// The key that seals signing keys: from configuration, or (single node on SQLite only) from
/// `<data_dir>/secret.key`, generated on first start.
pub fn secret_key(config: &Config, entropy: &dyn Entropy) -> anyhow::Result<[u8; 32]> {
    if let Some(text) = &config.secret_key {
        return decode_secret_key(text);
    }
    if !config.is_sqlite() {
        anyhow::bail!(
            "secret_key is required with PostgreSQL: every node must seal and open signing keys with the same key. \
             Generate one with `openssl rand -base64 32` and set PORTCULLIS_SECRET_KEY on every node."
        );
    }
    let path = config.data_dir.join("secret.key");
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        return decode_secret_key(&text).with_context(|| format!("in {}", path.display()));
    }
    let mut key = [0u8; 32];
    entropy.fill(&mut key);
    write_private_file(
        &path,
        &base64::engine::general_purpose::STANDARD.encode(key),
    )?;
    Ok(key)
}

/// Writes a file only its owner can read (mode 0600), created that way rather than narrowed
/// afterwards, so the secret is never readable by others even for a moment.
pub fn write_private_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// Writes `bootstrap.json` whole or not at all: to a temporary file first, then renamed over
/// the old one, so a crash never leaves half a file.
fn write_bootstrap_file(
    config: &Config,
    public_url: &str,
    credentials: &BootstrapCredentials,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data folder {}",
            config.data_dir.display()
        )
    })?;
    let path = config.data_dir.join("bootstrap.json");
    let file = BootstrapFile {
        note: "Created at first start. The client secret grants every admin permission: keep this file private, and delete it once you have stored the secret elsewhere.",
        url: public_url,
        token_endpoint: format!("{public_url}/oauth2/v2.0/token"),
        graph_url: format!("{public_url}/graph/v1.0"),
        credentials,
    };
    let staged = config.data_dir.join("bootstrap.json.partial");
    write_private_file(&staged, &serde_json::to_string_pretty(&file)?)?;
    std::fs::rename(&staged, &path).with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    if let Ok(dir) = std::fs::File::open(&config.data_dir) {
        // The rename is durable only once the folder is.
        let _ = dir.sync_all();
    }
    Ok(path)
}

/// Removes a `bootstrap.json` this node wrote for a first start that another node won; one
/// that holds other credentials (a data folder shared by the nodes) is left alone.
fn remove_if_ours(path: &Path, client_secret: &str) {
    let ours = std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .is_some_and(|json| json["clientSecret"] == client_secret);
    if ours {
        let _ = std::fs::remove_file(path);
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BootstrapFile<'a> {
    note: &'static str,
    url: &'a str,
    token_endpoint: String,
    graph_url: String,
    #[serde(flatten)]
    credentials: &'a BootstrapCredentials,
}

fn prometheus() -> Option<PrometheusHandle> {
    // One recorder per process: several servers in one test process share it.
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(&[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ])
                .ok()?
                .install_recorder()
                .ok()
        })
        .clone()
}

/// Reads the passkey attestation roots named in configuration: PEM certificate files, and FIDO
/// Metadata Service BLOBs (the JWT as downloaded, or its JSON payload).
pub fn load_attestation_roots(config: &Config) -> anyhow::Result<TrustedAttestationRoots> {
    let mut roots = TrustedAttestationRoots::default();
    for path in &config.attestation_roots {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read attestation roots from {}", path.display()))?;
        let source = path.display().to_string();
        let text = String::from_utf8_lossy(&bytes);
        let added = if text.trim_start().starts_with("-----BEGIN") {
            roots.add_pem(&bytes, &source)
        } else {
            roots.add_mds_blob(&bytes, &source)
        };
        added.with_context(|| format!("cannot load attestation roots from {source}"))?;
    }
    Ok(roots)
}

/// How often the rate limits drop the keys of callers whose bucket has refilled.
const RATE_LIMIT_SWEEP: std::time::Duration = std::time::Duration::from_secs(10);

/// Deletes the sign-in state that has expired by `now`: flows, sessions, codes, refresh tokens
/// and grants, and passkey ceremonies. Every expired row is refused when read anyway; this only
/// keeps them from piling up. The number of rows removed.
pub async fn purge_expired_sign_in_state(
    store: &SqlStore,
    now: time::OffsetDateTime,
) -> portcullis_core::Result<u64> {
    use portcullis_core::methods::passkeys::PasskeyStore;
    let state = store.purge_expired_sign_in_state(now).await?;
    let ceremonies = store.delete_expired_ceremonies(now).await?;
    Ok(state + ceremonies)
}

/// Reads the country database named in configuration, once. A file that cannot be read or is
/// not a sound MaxMind-format database stops the start: running on without it would quietly
/// make every address one of unknown country, which is not what the administrator configured.
pub fn load_country_database(config: &Config) -> anyhow::Result<Countries> {
    let Some(path) = &config.geoip_country_database else {
        return Ok(Countries::none());
    };
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "geoip_country_database: cannot read {}; download a GeoLite2-Country or GeoIP2-Country .mmdb file there, or remove the setting",
            path.display()
        )
    })?;
    let countries = Countries::from_bytes(bytes).with_context(|| {
        format!(
            "geoip_country_database: {} is not a usable country database",
            path.display()
        )
    })?;
    if let Some(info) = countries.database() {
        tracing::info!(
            path = %path.display(),
            database_type = %info.database_type,
            built = %info.built.date(),
            "country database loaded"
        );
    }
    Ok(countries)
}

/// Starts Portcullis on an already-bound listener: migrates, bootstraps on first start, loads
/// signing keys and serves until [`Server::shutdown`].
pub async fn start(
    config: &Config,
    listener: TcpListener,
    overrides: Overrides,
) -> anyhow::Result<Server> {
    let local_addr = listener.local_addr()?;
    let public_url = config.public_url();
    // Before anything is stored: a bad file must stop the start before it changes anything.
    let countries = load_country_database(config)?;
    let mut store = open_store(config).await?;
    // Events out: the store tells the sinks' queues what each commit stored, after it commits.
    if let Some(events) = crate::events::start(&config.event_settings())? {
        store = store.observed_by(events);
    }
    let key = secret_key(config, overrides.entropy.as_ref())?;
    // The composition root: the one place that holds every capability's store at once.
    let deps: Deps<dyn Store> = Deps {
        store: Arc::new(store.clone()),
        clock: overrides.clock.clone(),
        entropy: overrides.entropy.clone(),
        offload: Arc::new(HashingThreads::per_core()),
    };
    let settings = BootstrapSettings {
        tenant_display_name: config.tenant_name.clone(),
        admin_user_principal_name: config.bootstrap_admin.clone(),
        admin_display_name: "Bootstrap Administrator".to_string(),
        automation_app_display_name: "Portcullis automation".to_string(),
    };
    // Settings that can still refuse the start are checked before a first start hands out a
    // pass: a pass printed by a server that then refuses to run is a pass for nothing.
    // Refuses a Conditional Access or method-policy change that would lock the administrators
    // out.
    let attestation_roots = load_attestation_roots(config)?;
    let can_attest = !attestation_roots.is_empty();
    let lockout_guard =
        Arc::new(LockoutGuard::new(narrow!(deps, MethodStore)).with_attestation_roots(can_attest));
    let passkeys = Passkeys::new(
        narrow!(deps, MethodStore),
        Arc::new(store.clone()),
        &public_url,
        attestation_roots,
        portcullis_core::kernel::crypto::derive_key(
            &key,
            "portcullis passkey decoy credential ids",
        ),
    )?
    .with_policy_check(lockout_guard.clone());
    let (tenant, bootstrap, bootstrap_file, bootstrap_pass) =
        match bootstrap::begin(&deps, &settings).await? {
            Bootstrap::Existing(tenant) => (tenant, None, None, None),
            Bootstrap::FirstStart(first) => {
                let path = write_bootstrap_file(config, &public_url, &first.credentials)?;
                let notice = FirstStartNotice {
                    public_url: &public_url,
                    credentials: &first.credentials,
                    pass: &first.pass,
                    file: &path,
                };
                overrides.hand_out.show(&notice)?;
                let (credentials, pass) = (first.credentials.clone(), first.pass.clone());
                // A failed commit keeps the file: if nothing was stored, the next start
                // writes it again; if the failure came after the commit, it is the only copy.
                match first.commit(&deps).await.context(
                    "first start did not complete: the pass shown above is void; start again",
                )? {
                    FirstStartCommit::Created(tenant) => {
                        (tenant, Some(credentials), Some(path), Some(pass))
                    }
                    FirstStartCommit::AnotherNodeCreated(tenant) => {
                        let notice = FirstStartNotice {
                            public_url: &public_url,
                            credentials: &credentials,
                            pass: &pass,
                            file: &path,
                        };
                        remove_if_ours(&path, credentials.client_secret.as_str());
                        overrides.hand_out.withdraw(&notice)?;
                        (tenant, None, None, None)
                    }
                }
            }
        };
    let tokens = Arc::new(TokenService::new(
        narrow!(deps, OidcStore),
        Sealer::new(&key),
        public_url.clone(),
        tenant.id,
    ));
    tokens.load_keys().await?;
    // A rotation on another node (or by `portcullis keys rotate`) reaches this one within a
    // minute; until then it signs with a key that stays published, so nothing breaks meanwhile.
    let reload_tokens = tokens.clone();
    let reloader = tokens.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = reloader.load_keys().await {
                tracing::warn!(error = %e, "reloading signing keys failed; keeping the ones loaded");
            }
        }
    });
    // Every node purges; the deletes are idempotent, so several doing it at once is harmless.
    // The sign-in log is kept for days and purged hourly. Sign-in state lives minutes (a flow
    // ten, a ceremony five), and anonymous calls create it, so it is purged every minute or so:
    // each delete runs on an `expires` index and finds only what expired since the last one.
    let purge_deps = deps.clone();
    let retention = config.sign_in_log_retention_days;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            tick.tick().await;
            match portcullis_core::logs::sign_in::purge_expired(&purge_deps, retention).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    removed = n,
                    retention_days = retention,
                    "purged old sign-in log entries"
                ),
                Err(e) => tracing::warn!(error = %e, "purging old sign-in log entries failed"),
            }
        }
    });
    // Users deleted more than 30 days ago are removed for good, hourly: restorable until
    // then (portcullis_core::directory::deleted), a day's precision is all the promise needs.
    let purge_directory = Directory::new(narrow!(deps, DirectoryStore));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match purge_directory.purge_deleted_users().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "purged users deleted over 30 days ago"),
                Err(e) => tracing::warn!(error = %e, "purging deleted users failed"),
            }
        }
    });
    let state_store = store.clone();
    let state_clock = overrides.clock.clone();
    let purge_every = std::time::Duration::from_secs(config.sign_in_state_purge_seconds);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(purge_every);
        // A purge that falls behind (a slow database) is not made up in a burst.
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = state_clock.now();
            match purge_expired_sign_in_state(&state_store, now).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(
                    removed = n,
                    "purged expired sign-in flows, passkey ceremonies, sessions, codes and grants"
                ),
                Err(e) => tracing::warn!(error = %e, "purging expired sign-in state failed"),
            }
        }
    });
    // The rate limits' buckets are per node and in memory; keys whose bucket has refilled are
    // dropped every few seconds, so what they hold follows the recent request rate, not the
    // number of addresses or names ever seen (see portcullis_web::rate_limit).
    let rate_limits = Arc::new(portcullis_web::rate_limit::RateLimits::new(
        config.rate_limits(),
    ));
    let sweep_limits = rate_limits.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(RATE_LIMIT_SWEEP);
        loop {
            tick.tick().await;
            let held = sweep_limits.forget_idle();
            metrics::gauge!("portcullis_rate_limit_keys").set(held as f64);
        }
    });
    let pool_store = store.clone();
    let passes = TemporaryAccessPasses::new(narrow!(deps, MethodStore))
        .with_policy_check(lockout_guard.clone());
    let passwords =
        Passwords::new(narrow!(deps, MethodStore)).with_policy_check(lockout_guard.clone());
    let conditional_access = ConditionalAccess::new(narrow!(deps, DirectoryStore))
        .with_change_check(lockout_guard)
        .with_countries(countries.clone());
    let software_oath = SoftwareOath::new(
        narrow!(deps, MethodStore),
        Sealer::new(&key),
        public_url.clone(),
    );
    let sign_ins = SignIns::new(
        narrow!(deps, SignInStore),
        conditional_access.clone(),
        passes.clone(),
        passwords.clone(),
        software_oath.clone(),
        passkeys.clone(),
    );
    let state = AppState::new(Services {
        directory: Directory::new(narrow!(deps, DirectoryStore)),
        sessions: Sessions::new(narrow!(deps, SessionStore)),
        sign_ins,
        oidc: Oidc::new(narrow!(deps, OidcStore), tokens.clone())
            .with_browser_origins(&config.cors_allowed_origins)
            .with_groups_claim_limit(config.groups_claim_limit as usize),
        sign_in_logs: SignInLogs::new(narrow!(deps, LogStore)),
        readiness: Readiness::new(deps.store.clone()),
        passkeys,
        analyzer: PolicyAnalyzer::new(narrow!(deps, MethodStore))
            .with_attestation_roots(can_attest),
        conditional_access,
        passes,
        passwords,
        software_oath,
        tokens,
        public_url: public_url.clone(),
        metrics: prometheus(),
        pool_stats: Arc::new(move || {
            let s = pool_store.pool_stats();
            PoolStats {
                size: s.size,
                idle: s.idle,
            }
        }),
        trusted_proxies: portcullis_web::client_address::TrustedProxies::new(
            config.trusted_proxies.iter().map(|range| range.0),
        ),
        rate_limits,
        countries,
    });
    let app = portcullis_web::router(state);
    let (tx, rx) = oneshot::channel::<()>();
    let limits = ConnectionLimits::from_config(config);
    if let Some(allowed) = config.connections_the_file_limit_allows()
        && limits.max_connections as u64 > allowed
    {
        // Not refused: the operator may raise the limit for the service later. But past it,
        // accept fails and the server stops answering, which is what the cap is there to stop.
        tracing::warn!(
            max_connections = limits.max_connections,
            allowed,
            "max_connections is more than the open-file limit leaves room for; raise the limit (ulimit -n, LimitNOFILE) or lower max_connections"
        );
    }
    tracing::info!(
        max_connections = limits.max_connections,
        header_read_timeout_seconds = limits.header_read.as_secs(),
        keep_alive_timeout_seconds = limits.keep_alive.as_secs(),
        request_body_timeout_seconds = limits.request_body.as_secs(),
        "connection limits"
    );
    let task = tokio::spawn(crate::connections::serve(
        listener,
        app,
        limits,
        async move {
            let _ = rx.await;
        },
    ));
    // Everything the start needed is loaded; what it freed goes back to the system.
    crate::settle_memory();
    Ok(Server {
        local_addr,
        public_url,
        bootstrap,
        bootstrap_file,
        bootstrap_pass,
        store,
        tokens: reload_tokens,
        shutdown: Some(tx),
        task,
    })
}

/// `portcullis keys rotate`: makes the next signing key of each algorithm (ES256, RS256),
/// published now and signing after `signing_key_prepublish_hours`, or at once with
/// `immediately`. Returns their ids and when they sign from.
pub async fn rotate_signing_keys(
    config: &Config,
    immediately: bool,
) -> anyhow::Result<RotatedKeys> {
    let store = open_store(config).await?;
    let entropy: Arc<dyn Entropy> = Arc::new(SystemEntropy);
    let key = secret_key(config, entropy.as_ref())?;
    let tenant = DirectoryStore::tenant(&store)
        .await?
        .context("no tenant yet: start the server once first")?;
    let deps: Deps<dyn OidcStore> = Deps {
        store: Arc::new(store.clone()),
        clock: Arc::new(SystemClock),
        entropy: entropy.clone(),
        offload: Arc::new(portcullis_core::kernel::typed_secret::Inline),
    };
    let tokens = TokenService::new(deps, Sealer::new(&key), config.public_url(), tenant.id);
    tokens.load_keys().await?;
    let rotation = if immediately {
        Rotation::Immediate
    } else {
        Rotation::Prepublished {
            lead: time::Duration::hours(i64::from(config.signing_key_prepublish_hours)),
        }
    };
    let rotated = tokens
        .rotate(
            &portcullis_core::directory::audit::RequestContext::new(entropy.uuid()),
            rotation,
        )
        .await?;
    store.close().await;
    Ok(rotated)
}
