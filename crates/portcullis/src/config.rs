//! Configuration: a TOML file, then `PORTCULLIS_*` environment variables, then command-line
//! flags, each overriding the one before. Unknown keys are errors that name the key and where it
//! came from: a misspelt setting silently ignored is a security setting silently not applied.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use base64::Engine as _;
use portcullis_web::rate_limit::RateLimitSettings;
use serde::{Deserialize, Serialize};

/// Every setting. Field names are the TOML keys; the environment variable is the key in upper
/// case with a `PORTCULLIS_` prefix.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the embedded database, the generated secret key and bootstrap.json live.
    pub data_dir: PathBuf,
    /// The address to listen on.
    pub listen: SocketAddr,
    /// The address people and applications use to reach this server (issuer of tokens).
    pub public_url: String,
    /// `sqlite://…` or `postgres://…`; by default SQLite in the data folder.
    pub database_url: Option<String>,
    pub database_max_connections: u32,
    /// 32 bytes, base64: seals signing keys at rest. Must be the same on every node. By default
    /// (SQLite only) a key is generated into `<data_dir>/secret.key`.
    pub secret_key: Option<String>,
    /// `human` or `json`.
    pub log_format: LogFormat,
    /// A tracing filter such as `info` or `portcullis=debug,info`.
    pub log_level: String,
    /// The tenant's display name, set at first start.
    pub tenant_name: String,
    /// The bootstrap administrator's userPrincipalName, set at first start.
    pub bootstrap_admin: String,
    /// Files of passkey attestation roots the administrator trusts: FIDO Metadata Service BLOBs
    /// (as downloaded, or their JSON payload) and PEM certificate files. Read at start; nothing
    /// is downloaded. In the environment or a flag: paths separated by commas.
    pub attestation_roots: Vec<PathBuf>,
    /// Days sign-in log entries are kept.
    pub sign_in_log_retention_days: u32,
    /// Seconds a new connection has to send its first request's headers in full, and the
    /// headers of a request that began arriving on a kept-alive connection.
    pub header_read_timeout_seconds: u64,
    /// Seconds a kept-alive connection may sit idle between requests before it is closed.
    pub keep_alive_timeout_seconds: u64,
    /// Seconds a request's body has to arrive in full, counted from its headers.
    pub request_body_timeout_seconds: u64,
    /// Connections served at once; further ones wait in the listen backlog until one closes.
    /// By default derived from the open-file limit (see [`Config::max_connections`]).
    pub max_connections: Option<u32>,
    /// Proxies (addresses or CIDR ranges) whose `X-Forwarded-For` and `Forwarded` headers are
    /// believed. From any other peer those headers are ignored. Comma-separated in the
    /// environment.
    pub trusted_proxies: Vec<ProxyRange>,
    /// Calls per minute, per node, from one source address (IPv6: one /64) to the sign-in
    /// endpoints an anonymous caller reaches (authorize, the sign-in page, the flow and its
    /// steps, passkey and `/auth` sign-in); also the burst.
    pub rate_limit_per_address_per_minute: u32,
    /// Of those, calls that store a sign-in flow or a passkey ceremony: this bounds the rows
    /// one source can have waiting.
    pub rate_limit_starts_per_address_per_minute: u32,
    /// Calls per minute, per node, naming one username, from any address.
    pub rate_limit_per_account_per_minute: u32,
    /// Token and revocation calls per minute, per node, from one source address, and naming one
    /// `client_id`, each.
    pub rate_limit_token_per_minute: u32,
    /// Seconds between purges of expired sign-in state (flows, passkey ceremonies, sessions,
    /// codes, refresh tokens, grants).
    pub sign_in_state_purge_seconds: u64,
    /// A MaxMind-format country database (GeoLite2-Country or GeoIP2-Country `.mmdb`) that
    /// places client addresses in countries for country named locations and the sign-in log.
    /// Read once at start; nothing is downloaded. Without one, every address is of unknown
    /// country.
    pub geoip_country_database: Option<PathBuf>,
    /// Web origins (`https://app.example.com`) whose pages may call the token, userinfo,
    /// revocation, discovery and key endpoints, beside the origins of every registered
    /// single-page-application redirect URI, which are allowed without being listed here.
    /// Comma-separated in the environment.
    pub cors_allowed_origins: Vec<String>,
    /// Hours a new signing key made by `portcullis keys rotate` is published before it signs.
    pub signing_key_prepublish_hours: u32,
    /// The most groups a token lists in its `groups` claim (Entra's JWT bound, 200); past it,
    /// the token carries the overage indicator instead.
    pub groups_claim_limit: u32,
    /// Events out: every sign-in log entry and audit entry as a JSON line appended to this
    /// file, or written to standard output with `-`.
    pub events_file: Option<String>,
    /// Events out: batches of JSON lines POSTed to this URL, signed with
    /// `events_webhook_secret` (README, "Events out").
    pub events_webhook_url: Option<String>,
    /// The shared secret the webhook's bodies are signed with (HMAC-SHA256); at least 16
    /// characters. Required with `events_webhook_url`.
    pub events_webhook_secret: Option<String>,
    /// Entries each events sink holds in memory while it cannot keep up; past this the oldest
    /// are dropped and counted in `portcullis_events_dropped_total`.
    pub events_queue_capacity: u32,
}

/// One `trusted_proxies` entry: a CIDR range, or a single address standing for itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyRange(pub ipnet::IpNet);

impl std::str::FromStr for ProxyRange {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> anyhow::Result<ProxyRange> {
        let text = text.trim();
        if let Ok(net) = text.parse::<ipnet::IpNet>() {
            return Ok(ProxyRange(net));
        }
        if let Ok(address) = text.parse::<std::net::IpAddr>() {
            return Ok(ProxyRange(ipnet::IpNet::from(address)));
        }
        bail!(
            "trusted_proxies: '{text}' is not an IP address or CIDR range such as 10.0.0.0/8 or 2001:db8::/32"
        )
    }
}

impl Serialize for ProxyRange {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ProxyRange {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(|e: anyhow::Error| {
            // The message names the key: toml's own error would not say where the value was.
            serde::de::Error::custom(e.to_string())
        })
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./portcullis-data"),
            listen: "127.0.0.1:8080".parse().expect("valid default address"),
            public_url: "http://localhost:8080".to_string(),
            database_url: None,
            database_max_connections: 16,
            secret_key: None,
            log_format: LogFormat::Human,
            log_level: "info".to_string(),
            tenant_name: "Portcullis".to_string(),
            bootstrap_admin: "admin@portcullis.local".to_string(),
            attestation_roots: Vec::new(),
            sign_in_log_retention_days: portcullis_core::logs::sign_in::DEFAULT_RETENTION_DAYS,
            header_read_timeout_seconds: 10,
            keep_alive_timeout_seconds: 60,
            request_body_timeout_seconds: 30,
            max_connections: None,
            trusted_proxies: Vec::new(),
            rate_limit_per_address_per_minute: RateLimitSettings::default().per_address_per_minute,
            rate_limit_starts_per_address_per_minute: RateLimitSettings::default()
                .starts_per_address_per_minute,
            rate_limit_per_account_per_minute: RateLimitSettings::default().per_account_per_minute,
            rate_limit_token_per_minute: RateLimitSettings::default().token_per_minute,
            sign_in_state_purge_seconds: 60,
            geoip_country_database: None,
            cors_allowed_origins: Vec::new(),
            signing_key_prepublish_hours: 24,
            groups_claim_limit: 200,
            events_file: None,
            events_webhook_url: None,
            events_webhook_secret: None,
            events_queue_capacity: 10_000,
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Text,
    Integer,
    /// Comma-separated in the environment and in flags.
    List,
}

/// The keys, and how a value given as text (environment, flags) is typed.
const KEYS: &[(&str, Kind)] = &[
    ("data_dir", Kind::Text),
    ("listen", Kind::Text),
    ("public_url", Kind::Text),
    ("database_url", Kind::Text),
    ("database_max_connections", Kind::Integer),
    ("secret_key", Kind::Text),
    ("log_format", Kind::Text),
    ("log_level", Kind::Text),
    ("tenant_name", Kind::Text),
    ("bootstrap_admin", Kind::Text),
    ("attestation_roots", Kind::List),
    ("sign_in_log_retention_days", Kind::Integer),
    ("header_read_timeout_seconds", Kind::Integer),
    ("keep_alive_timeout_seconds", Kind::Integer),
    ("request_body_timeout_seconds", Kind::Integer),
    ("max_connections", Kind::Integer),
    ("trusted_proxies", Kind::List),
    ("rate_limit_per_address_per_minute", Kind::Integer),
    ("rate_limit_starts_per_address_per_minute", Kind::Integer),
    ("rate_limit_per_account_per_minute", Kind::Integer),
    ("rate_limit_token_per_minute", Kind::Integer),
    ("sign_in_state_purge_seconds", Kind::Integer),
    ("geoip_country_database", Kind::Text),
    ("cors_allowed_origins", Kind::List),
    ("signing_key_prepublish_hours", Kind::Integer),
    ("groups_claim_limit", Kind::Integer),
    ("events_file", Kind::Text),
    ("events_webhook_url", Kind::Text),
    ("events_webhook_secret", Kind::Text),
    ("events_queue_capacity", Kind::Integer),
];

/// `PORTCULLIS_*` variables that are not server settings: the config file's path, the admin
/// client's connection, and the test suite's database.
const NOT_SETTINGS: &[&str] = &[
    "PORTCULLIS_CONFIG",
    "PORTCULLIS_URL",
    "PORTCULLIS_CLIENT_ID",
    "PORTCULLIS_CLIENT_SECRET",
    "PORTCULLIS_TEST_DATABASE_URL",
];

fn typed(key: &str, kind: Kind, text: &str, origin: &str) -> anyhow::Result<toml::Value> {
    Ok(match kind {
        Kind::Text => toml::Value::String(text.to_string()),
        Kind::List => toml::Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| toml::Value::String(p.to_string()))
                .collect(),
        ),
        Kind::Integer => {
            toml::Value::Integer(text.trim().parse().with_context(|| {
                format!("{origin}: '{key}' must be a whole number, got '{text}'")
            })?)
        }
    })
}

/// Resolves the configuration from a file (if any), an environment, and flag overrides.
pub fn resolve(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    flags: &BTreeMap<&'static str, String>,
) -> anyhow::Result<Config> {
    let mut table = toml::Table::new();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the config file {}", path.display()))?;
        let parsed: toml::Table = text
            .parse()
            .with_context(|| format!("the config file {} is not valid TOML", path.display()))?;
        for (key, value) in parsed {
            if !KEYS.iter().any(|(k, _)| *k == key) {
                bail!(
                    "unknown key '{key}' in the config file {}; known keys: {}",
                    path.display(),
                    KEYS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
                );
            }
            table.insert(key, value);
        }
    }
    let mut env: Vec<(String, String)> = env.into_iter().collect();
    env.sort();
    for (name, value) in env {
        let Some(rest) = name.strip_prefix("PORTCULLIS_") else {
            continue;
        };
        if NOT_SETTINGS.contains(&name.as_str()) {
            continue;
        }
        let key = rest.to_ascii_lowercase();
        let Some((key, kind)) = KEYS.iter().find(|(k, _)| *k == key) else {
            bail!(
                "unknown environment variable {name}; settings are PORTCULLIS_ followed by one of: {}",
                KEYS.iter()
                    .map(|(k, _)| k.to_ascii_uppercase())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        };
        table.insert(key.to_string(), typed(key, *kind, &value, &name)?);
    }
    for (key, value) in flags {
        let (key, kind) = KEYS
            .iter()
            .find(|(k, _)| k == key)
            .with_context(|| format!("internal: flag for unknown key {key}"))?;
        table.insert(
            key.to_string(),
            typed(key, *kind, value, &format!("--{}", key.replace('_', "-")))?,
        );
    }
    let config: Config = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| anyhow::anyhow!("invalid configuration: {}", e.message()))?;
    config.validate()?;
    Ok(config)
}

impl Config {
    fn validate(&self) -> anyhow::Result<()> {
        let url = self.public_url.trim_end_matches('/');
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
            bail!(
                "public_url must be an absolute http(s) URL such as https://login.example.com, got '{}'",
                self.public_url
            );
        }
        if let Some(db) = &self.database_url
            && !(db.starts_with("sqlite:")
                || db.starts_with("postgres://")
                || db.starts_with("postgresql://"))
        {
            bail!("database_url must start with sqlite: or postgres://");
        }
        if !(1..=3650).contains(&self.sign_in_log_retention_days) {
            bail!("sign_in_log_retention_days must be from 1 to 3650");
        }
        if self.database_max_connections == 0 {
            bail!("database_max_connections must be at least 1");
        }
        if !self.bootstrap_admin.contains('@') {
            bail!("bootstrap_admin must be a userPrincipalName such as admin@example.com");
        }
        if let Some(key) = &self.secret_key {
            decode_secret_key(key)?;
        }
        for (key, seconds) in [
            (
                "header_read_timeout_seconds",
                self.header_read_timeout_seconds,
            ),
            (
                "keep_alive_timeout_seconds",
                self.keep_alive_timeout_seconds,
            ),
            (
                "request_body_timeout_seconds",
                self.request_body_timeout_seconds,
            ),
        ] {
            // Zero would close every connection at once; a day is far past any real client.
            if !(1..=86_400).contains(&seconds) {
                bail!("{key} must be from 1 to 86400 seconds, got {seconds}");
            }
        }
        if self.groups_claim_limit == 0 {
            bail!("groups_claim_limit must be at least 1");
        }
        if self.signing_key_prepublish_hours > 24 * 30 {
            bail!(
                "signing_key_prepublish_hours must be at most 720 (30 days), got {}",
                self.signing_key_prepublish_hours
            );
        }
        for origin in &self.cors_allowed_origins {
            let normal = portcullis_core::oidc::browser_origins::origin_of(origin);
            if !normal.is_some_and(|n| n.eq_ignore_ascii_case(origin.trim_end_matches('/'))) {
                bail!(
                    "cors_allowed_origins: '{origin}' is not a web origin such as https://app.example.com (scheme, host and port only; no path, no '*')"
                );
            }
        }
        if let Some(url) = &self.events_webhook_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                bail!("events_webhook_url must be an http(s) URL, got '{url}'");
            }
            match &self.events_webhook_secret {
                None => bail!(
                    "events_webhook_secret is required with events_webhook_url: receivers verify each body with it"
                ),
                Some(secret) if secret.chars().count() < 16 => {
                    bail!("events_webhook_secret must be at least 16 characters")
                }
                Some(_) => {}
            }
        }
        if self.events_file.as_deref() == Some("") {
            bail!("events_file must be a file path or '-' for standard output");
        }
        if !(1..=1_000_000).contains(&self.events_queue_capacity) {
            bail!(
                "events_queue_capacity must be from 1 to 1000000, got {}",
                self.events_queue_capacity
            );
        }
        if self.max_connections == Some(0) {
            bail!("max_connections must be at least 1");
        }
        for (key, per_minute) in [
            (
                "rate_limit_per_address_per_minute",
                self.rate_limit_per_address_per_minute,
            ),
            (
                "rate_limit_starts_per_address_per_minute",
                self.rate_limit_starts_per_address_per_minute,
            ),
            (
                "rate_limit_per_account_per_minute",
                self.rate_limit_per_account_per_minute,
            ),
            (
                "rate_limit_token_per_minute",
                self.rate_limit_token_per_minute,
            ),
        ] {
            // Zero would refuse every sign-in; past a billion a minute a limit limits nothing.
            if !(1..=MAX_RATE_LIMIT).contains(&per_minute) {
                bail!("{key} must be from 1 to {MAX_RATE_LIMIT} calls a minute, got {per_minute}");
            }
        }
        // Expired rows are refused when read whatever the interval; it bounds how many wait.
        if !(1..=3_600).contains(&self.sign_in_state_purge_seconds) {
            bail!(
                "sign_in_state_purge_seconds must be from 1 to 3600, got {}",
                self.sign_in_state_purge_seconds
            );
        }
        Ok(())
    }

    /// The anonymous endpoints' rate limits.
    pub fn rate_limits(&self) -> RateLimitSettings {
        RateLimitSettings {
            per_address_per_minute: self.rate_limit_per_address_per_minute,
            starts_per_address_per_minute: self.rate_limit_starts_per_address_per_minute,
            per_account_per_minute: self.rate_limit_per_account_per_minute,
            token_per_minute: self.rate_limit_token_per_minute,
        }
    }

    /// Connections served at once: `max_connections` when set, otherwise what the process's
    /// open-file limit leaves after a reserve for the database, log and data files, at most
    /// [`DEFAULT_MAX_CONNECTIONS`]. Past the open-file limit `accept` fails and nobody is served,
    /// so staying under it keeps the server reachable for whoever holds a slot.
    pub fn max_connections(&self) -> usize {
        if let Some(n) = self.max_connections {
            return n as usize;
        }
        match self.connections_the_file_limit_allows() {
            Some(allowed) => {
                allowed.clamp(MIN_DERIVED_CONNECTIONS, DEFAULT_MAX_CONNECTIONS as u64) as usize
            }
            None => DEFAULT_MAX_CONNECTIONS,
        }
    }

    /// The open-file limit less the reserve for everything else; `None` when unlimited or
    /// unknown.
    pub fn connections_the_file_limit_allows(&self) -> Option<u64> {
        let reserve = FILE_RESERVE + u64::from(self.database_max_connections);
        open_file_limit().map(|limit| limit.saturating_sub(reserve))
    }

    /// Where events go (see [`crate::events`]).
    pub fn event_settings(&self) -> crate::events::EventSettings {
        crate::events::EventSettings {
            file: self.events_file.clone(),
            webhook_url: self.events_webhook_url.clone(),
            webhook_secret: self.events_webhook_secret.clone(),
            queue_capacity: self.events_queue_capacity as usize,
        }
    }

    pub fn public_url(&self) -> String {
        self.public_url.trim_end_matches('/').to_string()
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("portcullis.db").display()
            )
        })
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url().starts_with("sqlite:")
    }

    /// The configuration as TOML with secrets replaced, for `check-config`.
    pub fn redacted_toml(&self) -> String {
        let mut shown = self.clone();
        if shown.secret_key.is_some() {
            shown.secret_key = Some("<redacted>".to_string());
        }
        shown.database_url = Some(redact_url_password(&self.database_url()));
        if shown.events_webhook_secret.is_some() {
            shown.events_webhook_secret = Some("<redacted>".to_string());
        }
        toml::to_string_pretty(&shown).unwrap_or_default()
    }
}

/// A setting a production deployment needs and this configuration seems to lack.
/// `portcullis check-config` prints each to standard error (and fails with `--strict`); none
/// stops `serve`, because a laptop or a test is not production.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProductionWarning {
    /// `public_url` is `http://` on a host other than this machine: sign-in cookies and codes
    /// would cross the network in the clear.
    PlainHttpPublicUrl { url: String },
    /// `public_url` is `https://`, so something in front terminates TLS (Portcullis serves
    /// plain HTTP), and `trusted_proxies` is empty: every client would appear to come from it.
    NoTrustedProxies { url: String },
    /// PostgreSQL without `secret_key`: `serve` refuses to start, and every node needs the same
    /// key.
    PostgresWithoutSecretKey,
    /// A `trusted_proxies` range covers every address: anyone can forge the client address.
    TrustsEveryProxy { range: String },
    /// Listening on every interface while `public_url` names this machine only: people on
    /// other machines would be sent to their own.
    LocalPublicUrlOnOpenListener { url: String, listen: SocketAddr },
}

impl std::fmt::Display for ProductionWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProductionWarning::PlainHttpPublicUrl { url } => write!(
                f,
                "public_url {url} is plain http on a host other than this machine: put TLS in front (a reverse proxy, see deploy/) and set public_url to its https:// address"
            ),
            ProductionWarning::NoTrustedProxies { url } => write!(
                f,
                "public_url {url} is https, so a proxy in front terminates TLS, but trusted_proxies is empty: lockout, rate limits, named locations and the logs would all see the proxy's address. Set trusted_proxies to the proxy's address or range"
            ),
            ProductionWarning::PostgresWithoutSecretKey => write!(
                f,
                "database_url is PostgreSQL but secret_key is not set: serve will refuse to start. Generate one (openssl rand -base64 32) and give every node the same"
            ),
            ProductionWarning::TrustsEveryProxy { range } => write!(
                f,
                "trusted_proxies includes {range}, which covers every address: any client can set X-Forwarded-For and choose the address lockout and Conditional Access see. List only your proxies"
            ),
            ProductionWarning::LocalPublicUrlOnOpenListener { url, listen } => write!(
                f,
                "listen {listen} accepts other machines but public_url {url} names this one: tokens and redirects would send people to their own machine. Set public_url to the address people use"
            ),
        }
    }
}

/// The host of an absolute URL, without brackets or port.
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        host_port.split(':').next()?
    };
    Some(host.to_ascii_lowercase())
}

/// Whether a host name or address is this machine.
fn is_local_host(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Config {
    /// What a production deployment would miss in this configuration (see
    /// [`ProductionWarning`]).
    pub fn production_warnings(&self) -> Vec<ProductionWarning> {
        let mut warnings = Vec::new();
        let url = self.public_url();
        let host = url_host(&url).unwrap_or_default();
        let https = url.starts_with("https://");
        if !https && !is_local_host(&host) {
            warnings.push(ProductionWarning::PlainHttpPublicUrl { url: url.clone() });
        }
        if https && self.trusted_proxies.is_empty() {
            warnings.push(ProductionWarning::NoTrustedProxies { url: url.clone() });
        }
        if !self.is_sqlite() && self.secret_key.is_none() {
            warnings.push(ProductionWarning::PostgresWithoutSecretKey);
        }
        for range in &self.trusted_proxies {
            if range.0.prefix_len() == 0 {
                warnings.push(ProductionWarning::TrustsEveryProxy {
                    range: range.0.to_string(),
                });
            }
        }
        if !self.listen.ip().is_loopback() && is_local_host(&host) {
            warnings.push(ProductionWarning::LocalPublicUrlOnOpenListener {
                url,
                listen: self.listen,
            });
        }
        warnings
    }
}

/// The largest rate limit accepted, in calls a minute.
const MAX_RATE_LIMIT: u32 = 1_000_000_000;

/// The cap on connections when the open-file limit does not ask for less: an idle HTTP/1.1
/// connection costs its buffers and a task (tens of KiB), so this bounds that memory to a few
/// hundred MB whatever the limit is.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// File descriptors kept back from connections for everything else the process opens: SQLite's
/// database, WAL and shared-memory files per connection, PostgreSQL sockets (added per pool
/// connection), the runtime's own descriptors, logs, attestation roots read at start.
const FILE_RESERVE: u64 = 128;

/// However low the open-file limit, a server that serves fewer than this is no server.
const MIN_DERIVED_CONNECTIONS: u64 = 16;

/// The soft limit on open files (`RLIMIT_NOFILE`); `None` when unlimited or unknown.
fn open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit only writes the struct it is given.
        let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
        if ok && limit.rlim_cur != libc::RLIM_INFINITY {
            // rlim_t is u64 here but not on every Unix.
            #[allow(clippy::unnecessary_cast)]
            return Some(limit.rlim_cur as u64);
        }
        None
    }
    #[cfg(not(unix))]
    None
}

/// Hides the password in `scheme://user:password@host/…`.
pub fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:<redacted>@{host}"),
        None => url.to_string(),
    }
}

pub fn decode_secret_key(text: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .context(
            "secret_key must be base64 (32 random bytes, e.g. from `openssl rand -base64 32`)",
        )?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("secret_key must decode to exactly 32 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_the_embedded_server() {
        let c = resolve(None, env(&[]), &BTreeMap::new()).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.public_url(), "http://localhost:8080");
        assert!(
            c.database_url()
                .starts_with("sqlite://./portcullis-data/portcullis.db")
        );
        assert!(c.is_sqlite());
    }

    #[test]
    fn flags_beat_environment_which_beats_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:1000\"\npublic_url = \"https://file.example\"\ntenant_name = \"File\"\n").unwrap();
        let mut flags = BTreeMap::new();
        flags.insert("listen", "127.0.0.1:3000".to_string());
        let c = resolve(
            Some(&file),
            env(&[
                ("PORTCULLIS_LISTEN", "127.0.0.1:2000"),
                ("PORTCULLIS_PUBLIC_URL", "https://env.example"),
                ("PATH", "/bin"),
            ]),
            &flags,
        )
        .unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:3000");
        assert_eq!(c.public_url(), "https://env.example");
        assert_eq!(c.tenant_name, "File");
    }

    #[test]
    fn the_country_database_is_a_path_from_the_file_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.toml");
        assert_eq!(
            resolve(None, env(&[]), &BTreeMap::new())
                .unwrap()
                .geoip_country_database,
            None
        );
        std::fs::write(
            &file,
            "geoip_country_database = \"/var/lib/GeoIP/GeoLite2-Country.mmdb\"\n",
        )
        .unwrap();
        let c = resolve(Some(&file), env(&[]), &BTreeMap::new()).unwrap();
        assert_eq!(
            c.geoip_country_database,
            Some(PathBuf::from("/var/lib/GeoIP/GeoLite2-Country.mmdb"))
        );
        let c = resolve(
            Some(&file),
            env(&[(
                "PORTCULLIS_GEOIP_COUNTRY_DATABASE",
                "/srv/GeoIP2-Country.mmdb",
            )]),
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(
            c.geoip_country_database,
            Some(PathBuf::from("/srv/GeoIP2-Country.mmdb"))
        );
    }

    #[test]
    fn attestation_roots_are_a_list_in_the_file_and_comma_separated_in_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.toml");
        std::fs::write(&file, "attestation_roots = [\"/etc/mds.jwt\"]\n").unwrap();
        let c = resolve(Some(&file), env(&[]), &BTreeMap::new()).unwrap();
        assert_eq!(c.attestation_roots, vec![PathBuf::from("/etc/mds.jwt")]);
        let c = resolve(
            Some(&file),
            env(&[("PORTCULLIS_ATTESTATION_ROOTS", "/a.pem, /b.jwt,")]),
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(
            c.attestation_roots,
            vec![PathBuf::from("/a.pem"), PathBuf::from("/b.jwt")]
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.toml");
        std::fs::write(&file, "lisen = \"x\"\n").unwrap();
        let err = resolve(Some(&file), env(&[]), &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("'lisen'"), "{err}");
        let err = resolve(None, env(&[("PORTCULLIS_LISEN", "x")]), &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("PORTCULLIS_LISEN"), "{err}");
        // Client-side variables are not server settings.
        assert!(
            resolve(
                None,
                env(&[
                    ("PORTCULLIS_URL", "http://x"),
                    ("PORTCULLIS_CLIENT_SECRET", "s")
                ]),
                &BTreeMap::new()
            )
            .is_ok()
        );
    }

    #[test]
    fn bad_values_are_explained() {
        let err = resolve(
            None,
            env(&[("PORTCULLIS_DATABASE_MAX_CONNECTIONS", "many")]),
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("PORTCULLIS_DATABASE_MAX_CONNECTIONS"),
            "{err}"
        );
        let err = resolve(
            None,
            env(&[("PORTCULLIS_LISTEN", "nowhere")]),
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("invalid configuration"), "{err}");
        let err = resolve(
            None,
            env(&[("PORTCULLIS_SECRET_KEY", "c2hvcnQ=")]),
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("32 bytes"), "{err}");
    }

    #[test]
    fn trusted_proxies_are_ranges_or_addresses_and_a_bad_one_names_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.toml");
        std::fs::write(&file, "trusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n").unwrap();
        let c = resolve(Some(&file), env(&[]), &BTreeMap::new()).unwrap();
        assert_eq!(
            c.trusted_proxies,
            vec![
                ProxyRange("10.0.0.0/8".parse().unwrap()),
                ProxyRange("::1/128".parse().unwrap())
            ]
        );
        assert!(c.redacted_toml().contains("\"10.0.0.0/8\""));
        let c = resolve(
            None,
            env(&[("PORTCULLIS_TRUSTED_PROXIES", "192.0.2.10, 198.51.100.0/24,")]),
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(c.trusted_proxies.len(), 2);
        assert!(
            resolve(None, env(&[]), &BTreeMap::new())
                .unwrap()
                .trusted_proxies
                .is_empty()
        );
        for bad in ["10.0.0/8", "10.0.0.0/33", "proxy.internal"] {
            let err = resolve(
                None,
                env(&[("PORTCULLIS_TRUSTED_PROXIES", bad)]),
                &BTreeMap::new(),
            )
            .unwrap_err()
            .to_string();
            assert!(
                err.contains("trusted_proxies") && err.contains(bad),
                "{bad}: {err}"
            );
        }
        std::fs::write(
            &file,
            "trusted_proxies = [\"10.0.0.0/8\", \"10.0.0.300\"]\n",
        )
        .unwrap();
        let err = resolve(Some(&file), env(&[]), &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("trusted_proxies") && err.contains("10.0.0.300"),
            "{err}"
        );
    }

    #[test]
    fn connection_limits_have_defaults_and_bounds() {
        let c = resolve(None, env(&[]), &BTreeMap::new()).unwrap();
        assert_eq!(
            (
                c.header_read_timeout_seconds,
                c.keep_alive_timeout_seconds,
                c.request_body_timeout_seconds
            ),
            (10, 60, 30)
        );
        let derived = c.max_connections();
        assert!(
            (16..=DEFAULT_MAX_CONNECTIONS).contains(&derived),
            "{derived}"
        );
        let c = resolve(
            None,
            env(&[
                ("PORTCULLIS_MAX_CONNECTIONS", "50"),
                ("PORTCULLIS_KEEP_ALIVE_TIMEOUT_SECONDS", "5"),
            ]),
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!((c.max_connections(), c.keep_alive_timeout_seconds), (50, 5));
        for (name, value) in [
            ("PORTCULLIS_HEADER_READ_TIMEOUT_SECONDS", "0"),
            ("PORTCULLIS_REQUEST_BODY_TIMEOUT_SECONDS", "0"),
            ("PORTCULLIS_MAX_CONNECTIONS", "0"),
        ] {
            let err = resolve(None, env(&[(name, value)]), &BTreeMap::new())
                .unwrap_err()
                .to_string();
            let key = name.trim_start_matches("PORTCULLIS_").to_ascii_lowercase();
            assert!(err.contains(&key), "{err}");
        }
    }

    #[test]
    fn rate_limits_have_defaults_and_bounds() {
        let c = resolve(None, env(&[]), &BTreeMap::new()).unwrap();
        assert_eq!(c.rate_limits(), RateLimitSettings::default());
        assert_eq!(c.sign_in_state_purge_seconds, 60);
        let c = resolve(
            None,
            env(&[
                ("PORTCULLIS_RATE_LIMIT_PER_ADDRESS_PER_MINUTE", "1200"),
                ("PORTCULLIS_RATE_LIMIT_TOKEN_PER_MINUTE", "50"),
                ("PORTCULLIS_SIGN_IN_STATE_PURGE_SECONDS", "5"),
            ]),
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(c.rate_limits().per_address_per_minute, 1200);
        assert_eq!(c.rate_limits().token_per_minute, 50);
        assert_eq!(c.sign_in_state_purge_seconds, 5);
        for (name, value) in [
            ("PORTCULLIS_RATE_LIMIT_PER_ADDRESS_PER_MINUTE", "0"),
            ("PORTCULLIS_RATE_LIMIT_STARTS_PER_ADDRESS_PER_MINUTE", "0"),
            ("PORTCULLIS_RATE_LIMIT_PER_ACCOUNT_PER_MINUTE", "0"),
            ("PORTCULLIS_RATE_LIMIT_TOKEN_PER_MINUTE", "2000000000"),
            ("PORTCULLIS_SIGN_IN_STATE_PURGE_SECONDS", "0"),
        ] {
            let err = resolve(None, env(&[(name, value)]), &BTreeMap::new())
                .unwrap_err()
                .to_string();
            let key = name.trim_start_matches("PORTCULLIS_").to_ascii_lowercase();
            assert!(err.contains(&key), "{err}");
        }
    }

    #[test]
    fn check_config_redacts_secrets() {
        let c = Config {
            secret_key: Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into()),
            database_url: Some("postgres://portcullis:hunter2@db/portcullis".into()),
            ..Config::default()
        };
        let shown = c.redacted_toml();
        assert!(
            !shown.contains("hunter2") && !shown.contains("AAAAAAAA"),
            "{shown}"
        );
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn a_cors_origin_must_be_an_origin() {
        for bad in [
            "*",
            "https://app.contoso.com/path",
            "app.contoso.com",
            "null",
        ] {
            let config = Config {
                cors_allowed_origins: vec![bad.into()],
                ..Config::default()
            };
            let err = config.validate().expect_err(bad).to_string();
            assert!(err.contains("cors_allowed_origins"), "{bad}: {err}");
        }
        let config = Config {
            cors_allowed_origins: vec![
                "https://tools.contoso.com".into(),
                "http://localhost:3000/".into(),
            ],
            ..Config::default()
        };
        config.validate().expect("good origins");
    }

    #[test]
    fn production_warnings_name_what_is_missing() {
        let local = Config::default();
        assert_eq!(local.production_warnings(), []);

        let plain = Config {
            public_url: "http://login.example.com".into(),
            ..Config::default()
        };
        assert!(matches!(
            plain.production_warnings().as_slice(),
            [ProductionWarning::PlainHttpPublicUrl { .. }]
        ));

        let proxied = Config {
            public_url: "https://login.example.com".into(),
            ..Config::default()
        };
        assert!(matches!(
            proxied.production_warnings().as_slice(),
            [ProductionWarning::NoTrustedProxies { .. }]
        ));
        let fixed = Config {
            trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
            ..proxied.clone()
        };
        assert_eq!(fixed.production_warnings(), []);
        let everyone = Config {
            trusted_proxies: vec!["0.0.0.0/0".parse().unwrap()],
            ..proxied
        };
        assert!(matches!(
            everyone.production_warnings().as_slice(),
            [ProductionWarning::TrustsEveryProxy { .. }]
        ));

        let postgres = Config {
            database_url: Some("postgres://db/portcullis".into()),
            ..Config::default()
        };
        assert_eq!(
            postgres.production_warnings(),
            [ProductionWarning::PostgresWithoutSecretKey]
        );

        let open = Config {
            listen: "0.0.0.0:8080".parse().unwrap(),
            ..Config::default()
        };
        assert!(matches!(
            open.production_warnings().as_slice(),
            [ProductionWarning::LocalPublicUrlOnOpenListener { .. }]
        ));
        assert_eq!(url_host("http://[::1]:8080/x").as_deref(), Some("::1"));
        assert!(is_local_host("127.0.0.2") && is_local_host("app.localhost"));
    }

    #[test]
    fn events_settings_are_checked_and_the_webhook_secret_is_redacted() {
        let c = resolve(
            None,
            env(&[
                ("PORTCULLIS_EVENTS_FILE", "-"),
                (
                    "PORTCULLIS_EVENTS_WEBHOOK_URL",
                    "https://siem.example.com/in",
                ),
                (
                    "PORTCULLIS_EVENTS_WEBHOOK_SECRET",
                    "a-very-long-shared-secret",
                ),
                ("PORTCULLIS_EVENTS_QUEUE_CAPACITY", "50"),
            ]),
            &BTreeMap::new(),
        )
        .unwrap();
        let settings = c.event_settings();
        assert_eq!(settings.file.as_deref(), Some("-"));
        assert_eq!(settings.queue_capacity, 50);
        let shown = c.redacted_toml();
        assert!(!shown.contains("a-very-long-shared-secret"), "{shown}");
        assert!(
            shown.contains("events_webhook_secret = \"<redacted>\""),
            "{shown}"
        );
        for (vars, key) in [
            (
                vec![(
                    "PORTCULLIS_EVENTS_WEBHOOK_URL",
                    "https://siem.example.com/in",
                )],
                "events_webhook_secret",
            ),
            (
                vec![
                    (
                        "PORTCULLIS_EVENTS_WEBHOOK_URL",
                        "https://siem.example.com/in",
                    ),
                    ("PORTCULLIS_EVENTS_WEBHOOK_SECRET", "short"),
                ],
                "events_webhook_secret",
            ),
            (
                vec![
                    ("PORTCULLIS_EVENTS_WEBHOOK_URL", "ftp://siem.example.com"),
                    (
                        "PORTCULLIS_EVENTS_WEBHOOK_SECRET",
                        "a-very-long-shared-secret",
                    ),
                ],
                "events_webhook_url",
            ),
            (
                vec![("PORTCULLIS_EVENTS_QUEUE_CAPACITY", "0")],
                "events_queue_capacity",
            ),
        ] {
            let err = resolve(None, env(&vars), &BTreeMap::new())
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{err}");
        }
    }
}
