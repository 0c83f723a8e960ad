//! Scratch databases for tests, here and in other crates (the in-process server testkit).
//!
//! Every test gets a database of its own, so tests run in parallel without seeing each other's
//! rows: a file in the temp folder for SQLite, a uniquely named database on the server for
//! PostgreSQL. [`ScratchDatabase::remove`] deletes it; if a test panics before that, dropping
//! the guard deletes it instead, and databases left behind by killed runs are swept the next
//! time one is created, so repeated CI runs do not pile them up.
//!
//! Which database: [`ScratchDatabase::from_env`] uses PostgreSQL when the variable named by
//! [`TEST_DATABASE_URL_ENV`] is set, SQLite otherwise. When the variable is set and PostgreSQL
//! cannot be reached, creating the scratch database fails: a test run that was asked to cover
//! PostgreSQL must not pass without it.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portcullis_core::Error;
use sqlx::{AnyConnection, AssertSqlSafe, Connection, Row};
use uuid::Uuid;

/// The environment variable holding the base PostgreSQL URL for tests, e.g.
/// `postgres://postgres@127.0.0.1:5432/test`. Scratch databases are created next to the one it
/// names (its user must be allowed to create databases).
pub const TEST_DATABASE_URL_ENV: &str = "PORTCULLIS_TEST_DATABASE_URL";

/// Scratch database names start with this, followed by the creation time in unix seconds and a
/// random suffix; the sweep reads the time back from the name.
const PREFIX: &str = "portcullis_scratch_";

/// Scratch databases older than this are taken to be left over by a run that was killed.
const STALE_AFTER: Duration = Duration::from_secs(6 * 60 * 60);

/// How the database would read one page of the list `table` (`users`, `groups`,
/// `applications`, `directory_audits`, `sign_ins`) for `query`: the plan of the very statement
/// the store runs, one line per step (see `SqlStore::plan`). For tests that check that a
/// filter is served from an index.
pub async fn list_plan(
    store: &crate::SqlStore,
    table: &str,
    query: &portcullis_core::kernel::query::ListQuery,
) -> Result<String, Error> {
    let listing = crate::list::listing(table)
        .ok_or_else(|| Error::Internal(format!("'{table}' is not a listable table")))?;
    let (statement, _) = crate::list::statement(store.dialect(), listing, query)?;
    store.plan(statement, listing.table).await
}

/// A database that exists for one test. Remove it with [`ScratchDatabase::remove`]; dropping
/// it does the same (blocking briefly) if the test did not get that far.
#[derive(Debug)]
pub struct ScratchDatabase {
    url: String,
    place: Place,
    removed: bool,
}

#[derive(Debug, Clone)]
enum Place {
    Sqlite { path: PathBuf },
    Postgres { admin_url: String, name: String },
}

impl ScratchDatabase {
    /// PostgreSQL when [`TEST_DATABASE_URL_ENV`] is set, SQLite otherwise.
    pub async fn from_env() -> Result<ScratchDatabase, Error> {
        match std::env::var(TEST_DATABASE_URL_ENV) {
            Ok(base) if !base.trim().is_empty() => ScratchDatabase::postgres(base.trim()).await,
            _ => Ok(ScratchDatabase::sqlite()),
        }
    }

    /// A new SQLite database file in the system temp folder (created on first connect).
    pub fn sqlite() -> ScratchDatabase {
        let path = std::env::temp_dir().join(format!("portcullis-scratch-{}.db", Uuid::new_v4()));
        ScratchDatabase {
            url: format!("sqlite://{}?mode=rwc", path.display()),
            place: Place::Sqlite { path },
            removed: false,
        }
    }

    /// A new, empty database on the PostgreSQL server that `base_url` points at. Fails with
    /// [`Error::Unavailable`] when the server cannot be reached.
    pub async fn postgres(base_url: &str) -> Result<ScratchDatabase, Error> {
        sqlx::any::install_default_drivers();
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let name = format!("{PREFIX}{created}_{}", Uuid::new_v4().simple());
        let mut admin = admin_connection(base_url).await?;
        sweep_stale(&mut admin, created).await;
        // The name is generated above from digits and hex: safe to interpolate, and identifiers
        // cannot be bound.
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .map_err(|e| Error::Unavailable(format!("cannot create scratch database: {e}")))?;
        let _ = admin.close().await;
        Ok(ScratchDatabase {
            url: with_database(base_url, &name)?,
            place: Place::Postgres {
                admin_url: base_url.to_string(),
                name,
            },
            removed: false,
        })
    }

    /// The URL to pass to [`crate::connect`].
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Deletes the database. Close pools on it first where possible; on PostgreSQL remaining
    /// connections are ended by the server.
    pub async fn remove(mut self) -> Result<(), Error> {
        self.removed = true;
        remove_place(&self.place).await
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        let place = self.place.clone();
        // Drop cannot await; a thread with its own small runtime can, whether or not the
        // caller is inside a runtime (and without blocking that runtime's other tasks on it).
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                let _ = runtime.block_on(remove_place(&place));
            }
        });
        let _ = cleanup.join();
    }
}

async fn remove_place(place: &Place) -> Result<(), Error> {
    match place {
        Place::Sqlite { path } => {
            for suffix in ["", "-wal", "-shm"] {
                let mut file = path.clone().into_os_string();
                file.push(suffix);
                match std::fs::remove_file(&file) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(Error::Internal(format!(
                            "cannot remove {}: {e}",
                            PathBuf::from(file).display()
                        )));
                    }
                }
            }
            Ok(())
        }
        Place::Postgres { admin_url, name } => {
            let mut admin = admin_connection(admin_url).await?;
            drop_database(&mut admin, name).await
        }
    }
}

async fn admin_connection(base_url: &str) -> Result<AnyConnection, Error> {
    sqlx::any::install_default_drivers();
    AnyConnection::connect(base_url)
        .await
        .map_err(|e| Error::Unavailable(format!("cannot reach PostgreSQL at {base_url}: {e}")))
}

/// `WITH (FORCE)` (PostgreSQL 13+) ends connections a test's pool still holds.
async fn drop_database(admin: &mut AnyConnection, name: &str) -> Result<(), Error> {
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(admin)
    .await
    .map_err(|e| Error::Internal(format!("cannot drop scratch database {name}: {e}")))?;
    Ok(())
}

/// Drops scratch databases whose creation time (from their name) is long past. Best effort: a
/// failure here must not fail the test that happened to trigger it.
async fn sweep_stale(admin: &mut AnyConnection, now: u64) {
    let found =
        sqlx::query("SELECT CAST(datname AS TEXT) AS name FROM pg_database WHERE datname LIKE $1")
            .bind(format!("{}%", PREFIX.replace('_', "\\_")))
            .fetch_all(&mut *admin)
            .await;
    let Ok(found) = found else {
        return;
    };
    for row in found {
        let Ok(name) = row.try_get::<String, _>("name") else {
            continue;
        };
        let stale = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<u64>().ok())
            .is_some_and(|created| now.saturating_sub(created) > STALE_AFTER.as_secs());
        // Only names this module generates reach the DROP: prefix, digits, '_', hex.
        let generated = name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if stale && generated {
            let _ = drop_database(admin, &name).await;
        }
    }
}

/// `base_url` with its path (the database name) replaced by `name`.
fn with_database(base_url: &str, name: &str) -> Result<String, Error> {
    let invalid = || Error::invalid(TEST_DATABASE_URL_ENV, "not a postgres:// URL");
    let (scheme, rest) = base_url.split_once("://").ok_or_else(invalid)?;
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let authority = rest.split('/').next().ok_or_else(invalid)?;
    let mut url = format!("{scheme}://{authority}/{name}");
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    Ok(url)
}

/// Rows of sign-in state in the database, expired or not: what an anonymous caller can make
/// the server store, and what the purge removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInStateRows {
    pub passkey_ceremonies: u64,
    pub sign_in_flows: u64,
}

impl crate::SqlStore {
    /// Counts the rows of sign-in state, for tests that check a bound or a purge.
    pub async fn sign_in_state_rows(&self) -> Result<SignInStateRows, Error> {
        Ok(SignInStateRows {
            passkey_ceremonies: self
                .count_rows("SELECT COUNT(*) AS n FROM passkey_ceremonies")
                .await?,
            sign_in_flows: self
                .count_rows("SELECT COUNT(*) AS n FROM sign_in_flows")
                .await?,
        })
    }

    async fn count_rows(&self, sql: &'static str) -> Result<u64, Error> {
        let n = self
            .fetch_optional(crate::db::query(sql))
            .await?
            .ok_or_else(|| Error::Internal(format!("{sql} returned no row")))?
            .int("n")?;
        Ok(u64::try_from(n).unwrap_or_default())
    }
}

/// A tenant of `count` Conditional Access policies of the kinds real exports hold (group-,
/// role- and All-targeted, break-glass exclusions, platforms, client apps, strengths, block,
/// report-only and disabled), generated from each policy's index so runs compare. For
/// measuring and testing the sign-in log with realistic policy results.
pub fn sample_policy_set(count: usize) -> portcullis_policy::PolicySet {
    use serde_json::json;
    let guid = |kind: u32, n: usize| format!("{kind:08x}-0000-4000-8000-{n:012x}");
    let policies: Vec<serde_json::Value> = (0..count)
        .map(|i| {
            let state = match i % 10 {
                0 => "disabled",
                1 | 2 => "enabledForReportingButNotEnforced",
                _ => "enabled",
            };
            let users = match i % 5 {
                0 => json!({"includeUsers": ["All"], "excludeGroups": [guid(0x6a, 9_000)]}),
                1 => json!({"includeRoles": [guid(0x70, i % 30)]}),
                _ => json!({"includeGroups": [guid(0x6a, i % 40), guid(0x6a, (i * 7 + 3) % 40)],
                            "excludeGroups": [guid(0x6a, (i * 13 + 5) % 40)]}),
            };
            let applications = match i % 4 {
                0 | 1 => json!({"includeApplications": ["All"]}),
                2 => json!({"includeUserActions": ["urn:user:registersecurityinfo"]}),
                _ => json!({"includeApplications": [guid(0xa0, i % 8)]}),
            };
            let mut conditions = json!({"users": users, "applications": applications,
                                        "clientAppTypes": ["all"]});
            if i % 3 == 0 {
                conditions["platforms"] =
                    json!({"includePlatforms": ["all"], "excludePlatforms": ["windows"]});
            }
            let grant = match i % 4 {
                0 => json!({"operator": "OR", "builtInControls": ["block"]}),
                1 => json!({"operator": "OR", "builtInControls": ["mfa"]}),
                2 => json!({"operator": "OR", "builtInControls": [],
                            "authenticationStrength": {"id": "00000000-0000-0000-0000-000000000004"}}),
                _ => json!({"operator": "OR", "builtInControls": ["mfa", "compliantDevice"]}),
            };
            json!({"id": guid(0xca, i), "displayName": format!("CA{i:03}: sample policy {i}"),
                   "state": state, "conditions": conditions, "grantControls": grant})
        })
        .collect();
    let bytes = serde_json::to_vec(&policies).expect("policies serialize");
    let policies = portcullis_policy::graph::import_policies(&bytes).expect("sample policies");
    portcullis_policy::PolicySet::new(policies, Vec::new(), Vec::new())
}

/// The `n`th sample sign-in to one of eight applications under `set`, as the sign-in flow logs
/// it: decided by the engine (its policies packed against the set's revision) with its replay
/// context. People are in a handful of the sample groups; every third is on Android.
pub fn sample_sign_in(
    set: &portcullis_policy::PolicySet,
    n: usize,
    at: time::OffsetDateTime,
) -> portcullis_core::logs::sign_in::SignInLogEntry {
    sample_sign_in_both_ways(set, n, at).0
}

/// [`sample_sign_in`], and the same sign-in as the previous format made it: its policies
/// listed whole by `sign_in::applied_policies` (the code that filled the JSON `body`), not
/// packed. For tests that the compact log answers as the previous one did.
pub fn sample_sign_in_both_ways(
    set: &portcullis_policy::PolicySet,
    n: usize,
    at: time::OffsetDateTime,
) -> (
    portcullis_core::logs::sign_in::SignInLogEntry,
    portcullis_core::logs::sign_in::SignInLogEntry,
) {
    use portcullis_core::logs::compact::AppliedPolicies;
    use portcullis_core::logs::replay_context::ReplayContext;
    use portcullis_core::logs::sign_in::*;
    use portcullis_policy::{DevicePlatform, SatisfiedMethod, SignInContext, Target};
    let guid = |kind: u32, n: usize| format!("{kind:08x}-0000-4000-8000-{n:012x}");
    let user = Uuid::from_u128(n as u128 % 500 + 1);
    let app = guid(0xa0, n % 8);
    let mut ctx = SignInContext::new(user.to_string(), Target::Application(app.clone()));
    ctx.group_ids = [n % 40, (n * 7 + 1) % 40, (n * 3 + 2) % 40]
        .iter()
        .map(|g| guid(0x6a, *g))
        .collect();
    if n.is_multiple_of(11) {
        ctx.role_template_ids = vec![guid(0x70, n % 30)];
    }
    ctx.platform = Some(if n.is_multiple_of(3) {
        DevicePlatform::Android
    } else {
        DevicePlatform::Windows
    });
    ctx.ip_address = Some(std::net::IpAddr::from([203, 0, 113, (n % 250) as u8]));
    ctx.methods = vec![SatisfiedMethod::passkey(
        "cb69481e-8ff7-4039-93ec-0a2729a154a8",
    )];
    let decision = portcullis_policy::evaluate(&ctx, set);
    let strength = decision
        .trace
        .iter()
        .filter(|t| t.applies && t.policy.state.is_enforced())
        .flat_map(|t| t.enforced_grant_controls.iter())
        .find_map(|c| c.strength().map(|s| s.name().to_string()));
    let entry = SignInLogEntry {
        id: Uuid::now_v7(),
        created_date_time: at,
        user_principal_name: format!("person{}@contoso.example", n % 500),
        user_id: Some(user),
        user_display_name: Some(format!("Person {}", n % 500)),
        app_display_name: format!("Application {}", n % 8),
        app_id: app,
        ip_address: Some(format!("203.0.113.{}", n % 250)),
        client_app_used: "Browser".into(),
        correlation_id: Uuid::new_v4(),
        is_interactive: true,
        user_agent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0".into(),
        device_detail: DeviceDetail {
            operating_system: "Windows 10".into(),
            browser: "Edge 131.0.0".into(),
        },
        status: SignInStatus {
            error_code: match decision.outcome {
                portcullis_policy::Outcome::Grant => 0,
                portcullis_policy::Outcome::Requirements { .. } => 50074,
                portcullis_policy::Outcome::Block { .. } => 53003,
            },
            failure_reason: match decision.outcome {
                portcullis_policy::Outcome::Grant => None,
                _ => Some("Access has been blocked by Conditional Access policies.".into()),
            },
            additional_details: None,
        },
        conditional_access_status: decision.status.as_str().to_string(),
        applied_conditional_access_policies: AppliedPolicies::of_trace(&decision.trace),
        authentication_details: vec![AuthenticationDetail {
            authentication_method: "Passkey (device-bound)".into(),
            succeeded: true,
            authentication_step_result_detail: "Correct credential".into(),
            authentication_step_requirement: "Primary authentication".into(),
            authentication_step_date_time: at,
        }],
        authentication_requirement: if strength.is_some() {
            "multiFactorAuthentication".into()
        } else {
            "singleFactorAuthentication".into()
        },
        authentication_strength: strength,
        replay_context: Some(ReplayContext::record(&ctx, &[], &decision)),
        location: SignInLocation {
            country_or_region: Some("NL".into()),
        },
    };
    let previous = SignInLogEntry {
        applied_conditional_access_policies: applied_policies(&decision).into(),
        ..entry.clone()
    };
    (entry, previous)
}

impl crate::SqlStore {
    /// Writes `entry` as the previous format did (migrations 0004 and 0010): the whole entry
    /// as JSON in `body`, its replay context beside it, no compact parts. For tests that an
    /// entry written before the compact log still reads back, and for measuring the two.
    pub async fn insert_previous_format_sign_in(
        &self,
        entry: &portcullis_core::logs::sign_in::SignInLogEntry,
    ) -> Result<(), Error> {
        let body = serde_json::to_string(entry)
            .map_err(|e| Error::Internal(format!("cannot serialize: {e}")))?;
        let id = |u: Uuid| u.hyphenated().to_string();
        let query = crate::db::query(
            "INSERT INTO sign_ins (id, created, user_principal_name, user_id, app_id, app_display_name, \
             ip_address, error_code, conditional_access_status, correlation_id, client_app_used, body, \
             replay_context) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(id(entry.id))
        .bind(portcullis_core::kernel::clock::unix_millis(entry.created_date_time))
        .bind(entry.user_principal_name.clone())
        .bind(entry.user_id.map(id))
        .bind(entry.app_id.clone())
        .bind(entry.app_display_name.clone())
        .bind(entry.ip_address.clone())
        .bind(i64::from(entry.status.error_code))
        .bind(entry.conditional_access_status.clone())
        .bind(id(entry.correlation_id))
        .bind(entry.client_app_used.clone())
        .bind(body)
        .bind(entry.replay_context.as_ref().map(|c| c.encode()));
        self.execute_write(query).await.map(|_| ())
    }

    /// Deletes every signing key of `algorithm`, so the key table looks as a data folder from
    /// before that algorithm existed does (RS256 came after ES256): for tests of the upgrade.
    pub async fn delete_signing_keys_of(
        &self,
        algorithm: portcullis_core::directory::model::SigningAlgorithm,
    ) -> Result<u64, Error> {
        let query = crate::db::query("DELETE FROM signing_keys WHERE algorithm = $1")
            .bind(algorithm.as_str());
        self.execute_write(query).await
    }

    /// The bytes the sign-in log takes in the database: on SQLite the whole file's pages in use
    /// (measure on a database holding nothing else that changes), on PostgreSQL the sign-in
    /// table with its indexes and TOAST and the revisions table.
    pub async fn sign_in_log_bytes(&self) -> Result<u64, Error> {
        let n = match self.dialect() {
            crate::Dialect::Sqlite => {
                let pages = self
                    .count_rows("SELECT page_count AS n FROM pragma_page_count()")
                    .await?;
                let free = self
                    .count_rows("SELECT freelist_count AS n FROM pragma_freelist_count()")
                    .await?;
                let size = self
                    .count_rows("SELECT page_size AS n FROM pragma_page_size()")
                    .await?;
                (pages - free) * size
            }
            crate::Dialect::Postgres => {
                self.count_rows(
                    "SELECT CAST(pg_total_relation_size('sign_ins') + \
                     pg_total_relation_size('sign_in_policy_revisions') AS BIGINT) AS n",
                )
                .await?
            }
        };
        Ok(n)
    }

    /// Rows in the table of policy revisions the compact log points at.
    pub async fn sign_in_policy_revision_rows(&self) -> Result<u64, Error> {
        self.count_rows("SELECT COUNT(*) AS n FROM sign_in_policy_revisions")
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_name_is_replaced_and_the_rest_kept() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x").unwrap(),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/test?sslmode=disable", "x").unwrap(),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgresql://h", "x").unwrap(),
            "postgresql://h/x"
        );
    }
}
