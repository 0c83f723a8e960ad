//! # portcullis-testkit — Portcullis, started for real, inside a test
//!
//! [`TestServer::start`] starts the real server in-process on port 0, on a scratch SQLite
//! database, or on a scratch PostgreSQL database when `PORTCULLIS_TEST_DATABASE_URL` is set, and
//! hands back what first start created (the automation application's credentials). Tests then
//! talk to it over HTTP as any client would. Every test also checks that it left the directory
//! consistent, whether or not it remembers to: [`TestServer::stop`] checks the database's
//! invariants before it removes the scratch database, and a server dropped without `stop`
//! checks them as it goes (see [`TestServer`]'s `Drop`). [`fixtures`] holds the users,
//! passes, policies and sessions that tests set up again and again.
//!
//! What it must never do: reach into the server's internals to make a test pass. Setup goes
//! through the admin API like an administrator's would; the store is read only for invariants.

pub mod authenticator;
pub mod fixtures;
pub mod mmdb;

use std::sync::{Arc, Mutex};

use anyhow::Context;
use portcullis::config::Config;
use portcullis::server::{Overrides, Server};
use portcullis_core::bootstrap::BootstrapCredentials;
use portcullis_core::kernel::clock::{Clock, truncate_to_millis};
use portcullis_core::kernel::entropy::SystemEntropy;
use portcullis_core::kernel::query::ListQuery;
use portcullis_core::store::prelude::*;
use portcullis_store::StoreOptions;
use portcullis_store::testing::ScratchDatabase;
use serde_json::Value;
use time::{Duration, OffsetDateTime};

pub use reqwest::StatusCode;

/// A clock under the test's control. It moves one millisecond each time it is read, so that
/// events keep the order they happened in; a test moves it further with [`TestClock::advance`].
#[derive(Debug, Clone)]
pub struct TestClock(Arc<Mutex<OffsetDateTime>>);

impl TestClock {
    pub fn new(start: OffsetDateTime) -> Self {
        TestClock(Arc::new(Mutex::new(truncate_to_millis(start))))
    }
    pub fn advance(&self, by: Duration) {
        *self.0.lock().expect("clock lock") += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        let mut now = self.0.lock().expect("clock lock");
        *now += Duration::milliseconds(1);
        *now
    }
}

/// The rate limits of a test server unless a test asks for the production ones: a billion calls
/// a minute is no limit a test reaches.
pub const UNLIMITED_FOR_TESTS: u32 = 1_000_000_000;

/// A response as a test sees it.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// Graph's error code, if this is an error.
    pub fn error_code(&self) -> Option<&str> {
        self.body["error"]["code"].as_str()
    }
    pub fn error_target(&self) -> Option<&str> {
        self.body["error"]["target"].as_str()
    }
}

/// The server of one test. However the test ends without panicking, the database invariants
/// are checked: by [`TestServer::stop`], or else when the server is dropped, so that a test
/// cannot pass while leaving the directory inconsistent by forgetting to call `stop`.
pub struct TestServer {
    pub url: String,
    pub bootstrap: BootstrapCredentials,
    /// The bootstrap administrator's one-time Temporary Access Pass.
    pub bootstrap_pass: String,
    pub clock: TestClock,
    pub http: reqwest::Client,
    pub config: Config,
    server: Option<Server>,
    database: Option<ScratchDatabase>,
    /// Set once the invariants were checked, so that dropping does not check them again.
    checked: bool,
    _data_dir: Arc<tempfile::TempDir>,
}

impl TestServer {
    /// A fresh tenant on a fresh database.
    pub async fn start() -> TestServer {
        Self::try_start().await.expect("the test server starts")
    }

    pub async fn try_start() -> anyhow::Result<TestServer> {
        Self::try_start_with(|_| {}).await
    }

    /// A fresh tenant on a fresh database, with configuration the test adjusts first (for
    /// example trusted passkey attestation roots).
    pub async fn start_with(configure: impl FnOnce(&mut Config)) -> TestServer {
        Self::try_start_with(configure)
            .await
            .expect("the test server starts")
    }

    pub async fn try_start_with(configure: impl FnOnce(&mut Config)) -> anyhow::Result<TestServer> {
        let database = ScratchDatabase::from_env()
            .await
            .context("scratch database")?;
        let data_dir = Arc::new(tempfile::tempdir()?);
        let clock = TestClock::new(OffsetDateTime::now_utc());
        let mut config = Config {
            data_dir: data_dir.path().to_path_buf(),
            database_url: Some(database.url().to_string()),
            // A fixed key, so that a second node on the same database can open signing keys.
            secret_key: Some("cG9ydGN1bGxpcy10ZXN0LXNlY3JldC1rZXktMzJieSE=".to_string()),
            database_max_connections: 5,
            // Every test client is one address (loopback) sending at machine speed, and tests
            // of other things (a lockout burst of 100 guesses at one name) must not be answered
            // by a rate limit first. The rate-limit tests put the production defaults back
            // with [`TestServer::start_with_rate_limits`].
            rate_limit_per_address_per_minute: UNLIMITED_FOR_TESTS,
            rate_limit_starts_per_address_per_minute: UNLIMITED_FOR_TESTS,
            rate_limit_per_account_per_minute: UNLIMITED_FOR_TESTS,
            rate_limit_token_per_minute: UNLIMITED_FOR_TESTS,
            ..Config::default()
        };
        configure(&mut config);
        let (server, url) = Self::launch(&config, &clock, None).await?;
        let bootstrap = server
            .bootstrap
            .clone()
            .context("a fresh database bootstraps a tenant")?;
        let bootstrap_pass = server
            .bootstrap_pass
            .as_ref()
            .map(|p| p.temporary_access_pass.clone())
            .context("first start issues the administrator a pass")?;
        Ok(TestServer {
            url,
            bootstrap,
            bootstrap_pass,
            clock,
            http: reqwest::Client::new(),
            config,
            server: Some(server),
            database: Some(database),
            checked: false,
            _data_dir: data_dir,
        })
    }

    /// A fresh tenant whose anonymous endpoints have the production rate limits
    /// ([`Config::default`]'s), with configuration the test adjusts after that.
    pub async fn start_with_rate_limits(configure: impl FnOnce(&mut Config)) -> TestServer {
        Self::start_with(|config| {
            let production = Config::default();
            config.rate_limit_per_address_per_minute = production.rate_limit_per_address_per_minute;
            config.rate_limit_starts_per_address_per_minute =
                production.rate_limit_starts_per_address_per_minute;
            config.rate_limit_per_account_per_minute = production.rate_limit_per_account_per_minute;
            config.rate_limit_token_per_minute = production.rate_limit_token_per_minute;
            configure(config);
        })
        .await
    }

    async fn launch(
        config: &Config,
        clock: &TestClock,
        public_url: Option<&str>,
    ) -> anyhow::Result<(Server, String)> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let url = format!("http://localhost:{port}");
        let config = Config {
            listen: listener.local_addr()?,
            public_url: public_url.unwrap_or(&url).to_string(),
            ..config.clone()
        };
        let overrides = Overrides {
            clock: Arc::new(clock.clone()),
            entropy: Arc::new(SystemEntropy),
            ..Overrides::default()
        };
        let server = portcullis::server::start(&config, listener, overrides).await?;
        Ok((server, url))
    }

    /// Another node on the same database (PostgreSQL) or file (SQLite), as in a multi-node
    /// deployment behind one public address: it shares the clock, the secret key and the public
    /// URL (the issuer of tokens), and listens on its own port, returned with it.
    pub async fn second_node(&self) -> anyhow::Result<(Server, String)> {
        Self::launch(&self.config, &self.clock, Some(&self.url)).await
    }

    /// Makes the server load its signing keys now, as its reload task does every minute.
    pub async fn reload_keys(&self) {
        self.server
            .as_ref()
            .expect("running")
            .tokens
            .load_keys()
            .await
            .expect("keys load");
    }

    /// Runs the hourly sign-in log purge now, with the configured retention.
    pub async fn purge_sign_in_logs(&self) -> u64 {
        let deps = portcullis_core::kernel::Deps {
            store: std::sync::Arc::new(self.store().clone()),
            clock: std::sync::Arc::new(self.clock.clone()),
            entropy: std::sync::Arc::new(SystemEntropy),
            offload: std::sync::Arc::new(portcullis_core::kernel::typed_secret::Inline),
        };
        portcullis_core::logs::sign_in::purge_expired(&deps, self.config.sign_in_log_retention_days)
            .await
            .expect("purge runs")
    }

    /// Runs the hourly purge of users deleted over 30 days ago now, on the test clock.
    pub async fn purge_deleted_users(&self) -> u64 {
        let deps: portcullis_core::kernel::Deps<
            dyn portcullis_core::directory::store::DirectoryStore,
        > = portcullis_core::kernel::Deps {
            store: std::sync::Arc::new(self.store().clone()),
            clock: std::sync::Arc::new(self.clock.clone()),
            entropy: std::sync::Arc::new(SystemEntropy),
            offload: std::sync::Arc::new(portcullis_core::kernel::typed_secret::Inline),
        };
        portcullis_core::directory::Directory::new(deps)
            .purge_deleted_users()
            .await
            .expect("purge runs")
    }

    /// The server's own store, to read invariants.
    pub fn store(&self) -> &portcullis_store::SqlStore {
        &self.server.as_ref().expect("running").store
    }

    /// An admin API token for the bootstrap automation application. A fresh one each time:
    /// tests move the server's clock, and a cached token would expire under them.
    pub async fn admin_token(&self) -> String {
        self.client_token(
            &self.bootstrap.client_id.to_string(),
            &self.bootstrap.client_secret,
        )
        .await
        .expect("the bootstrap credentials work")
    }

    /// Client credentials grant; the token, or the OAuth error reply.
    pub async fn client_token(&self, client_id: &str, secret: &str) -> Result<String, Reply> {
        let reply = self
            .form(
                "/oauth2/v2.0/token",
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id),
                    ("client_secret", secret),
                ],
            )
            .await;
        match reply.body["access_token"].as_str() {
            Some(t) if reply.status == StatusCode::OK => Ok(t.to_string()),
            _ => Err(reply),
        }
    }

    /// Signs in with a Temporary Access Pass through `/auth/tap`: the reply, and the session
    /// token from its cookie when it succeeded.
    pub async fn sign_in_with_pass(
        &self,
        base_url: &str,
        username: &str,
        pass: &str,
    ) -> (Reply, Option<String>) {
        let response = self
            .http
            .post(format!("{base_url}/auth/tap"))
            .json(&serde_json::json!({"username": username, "temporaryAccessPass": pass}))
            .send()
            .await
            .expect("request sent");
        let token = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix("portcullis_session="))
            .and_then(|v| v.split(';').next())
            .filter(|v| !v.is_empty())
            .map(str::to_string);
        (Self::reply(response).await, token)
    }

    pub async fn form(&self, path: &str, form: &[(&str, &str)]) -> Reply {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .form(form)
            .send()
            .await
            .expect("request sent");
        Self::reply(response).await
    }

    async fn reply(response: reqwest::Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body read");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// A Graph request with the admin token. `path` is below `/graph/v1.0`.
    pub async fn graph(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Reply {
        let token = self.admin_token().await;
        self.graph_as(&token, method, path, body).await
    }

    pub async fn graph_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self
            .http
            .request(method, format!("{}/graph/v1.0{path}", self.url))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        Self::reply(request.send().await.expect("request sent")).await
    }

    /// A request with a raw body (to send malformed input).
    pub async fn graph_raw(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Reply {
        let token = self.admin_token().await;
        let request = self
            .http
            .request(method, format!("{}/graph/v1.0{path}", self.url))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body);
        Self::reply(request.send().await.expect("request sent")).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.graph(reqwest::Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.graph(reqwest::Method::POST, path, Some(body)).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.graph(reqwest::Method::PATCH, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> Reply {
        self.graph(reqwest::Method::DELETE, path, None).await
    }

    /// Checks what must hold in any state the API can reach, then stops the server and removes
    /// the scratch database.
    pub async fn stop(mut self) {
        self.check_invariants().await;
        self.checked = true;
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("clean shutdown");
        }
        if let Some(db) = self.database.take() {
            db.remove().await.expect("scratch database removed");
        }
    }

    /// Checks the database invariants now, through the server's own store (see the free
    /// function `check_invariants` for what they are).
    pub async fn check_invariants(&self) {
        check_invariants(self.store()).await;
    }
}

impl Drop for TestServer {
    /// Checks the invariants of a server the test did not stop. `drop` cannot wait for the
    /// async check, and the test's runtime may be single-threaded and is blocked in this very
    /// call, so the check runs on a thread of its own with its own runtime and its own
    /// connection to the scratch database (the server's pool belongs to the blocked runtime).
    /// A violation fails the test by panicking here. When the test is already panicking the
    /// check is skipped: it has failed anyway, and a second panic would abort the test binary.
    fn drop(&mut self) {
        if self.checked || std::thread::panicking() {
            return;
        }
        self.checked = true;
        let Some(url) = self.database.as_ref().map(|db| db.url().to_string()) else {
            return;
        };
        let check = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the invariant check");
            runtime.block_on(async {
                let options = StoreOptions {
                    max_connections: 1,
                    ..StoreOptions::default()
                };
                let store = portcullis_store::connect(&url, &options)
                    .await
                    .expect("the invariant check reaches the test's database");
                check_invariants(&store).await;
                store.close().await;
            });
        });
        if let Err(violation) = check.join() {
            // The fields (the server, then the scratch database) are still dropped as this
            // unwinds, so the database is removed even when the check fails.
            std::panic::resume_unwind(violation);
        }
    }
}

/// Database invariants: the tenant exists; every role assignment's principal and role
/// exist; every membership points at existing objects; nesting has no cycle; every person
/// keeps within the passkey limit; application secrets are kept only as hashes; every audit
/// entry is well formed.
async fn check_invariants(store: &portcullis_store::SqlStore) {
    assert!(store.tenant().await.unwrap().is_some(), "the tenant exists");
    let all = ListQuery {
        top: 999,
        ..ListQuery::default()
    };
    let users = store.list_users(&all).await.unwrap().items;
    let groups = store.list_groups(&all).await.unwrap().items;
    let apps = store.list_applications(&all).await.unwrap().items;
    let exists = |id: uuid::Uuid| {
        users.iter().any(|u| u.id == id)
            || groups.iter().any(|g| g.id == id)
            || apps.iter().any(|a| a.id == id)
    };
    for a in store.role_assignments(None).await.unwrap() {
        assert!(
            exists(a.principal_id),
            "role assignment {} points at a missing principal",
            a.id
        );
        assert!(
            portcullis_core::directory::roles::built_in_role(a.role_definition_id).is_some(),
            "role assignment {} names an unknown role",
            a.id
        );
    }
    for g in &groups {
        for m in store.members(g.id).await.unwrap() {
            assert!(exists(m.id), "group {} has a missing member {}", g.id, m.id);
        }
        let containing = store.transitive_member_of(g.id).await.unwrap();
        assert!(
            !containing.iter().any(|c| c.id == g.id),
            "group {} contains itself",
            g.id
        );
    }
    for user in &users {
        use portcullis_core::methods::passkeys::{MAX_PASSKEYS_PER_USER, PasskeyStore};
        let passkeys = store.passkeys_of(user.id).await.unwrap();
        assert!(
            passkeys.len() <= MAX_PASSKEYS_PER_USER,
            "user {} has more than {MAX_PASSKEYS_PER_USER} passkeys",
            user.id
        );
        assert!(passkeys.iter().all(|p| p.user_id == user.id));
    }
    for app in &apps {
        for c in &app.password_credentials {
            assert_eq!(
                c.secret_hash.len(),
                64,
                "secrets are stored as SHA-256 hashes"
            );
        }
    }
    let audits = store.list_audits(&all).await.unwrap().items;
    for a in audits {
        assert!(!a.activity_display_name.is_empty());
        assert!(a.initiated_by.user.is_some() || a.initiated_by.app.is_some());
    }
}
