//! First start, tokens, probes, metrics, OpenAPI, several nodes.

use portcullis_core::directory::model::SigningAlgorithm;
use portcullis_testkit::{StatusCode, TestServer};
use serde_json::json;

#[tokio::test]
async fn first_start_creates_tenant_admin_and_private_credentials_once() {
    let t = TestServer::start().await;
    let file = t.config.data_dir.join("bootstrap.json");
    let text = std::fs::read_to_string(&file).expect("bootstrap.json is written");
    let saved: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(saved["clientId"], t.bootstrap.client_id.to_string());
    assert_eq!(saved["clientSecret"], t.bootstrap.client_secret);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "bootstrap.json is readable by its owner only");
    }
    // The administrator exists and holds Global Administrator.
    let admin = t
        .get(&format!("/users/{}", t.bootstrap.admin_user_principal_name))
        .await;
    assert_eq!(admin.status, StatusCode::OK);
    let roles = t
        .get(&format!(
            "/roleManagement/directory/roleAssignments?$filter=principalId eq '{}'",
            admin.body["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        roles.body["value"][0]["roleDefinitionId"],
        "62e90394-69f5-4237-9190-012177145e10"
    );
    // The creation is audited.
    let audits = t
        .get("/auditLogs/directoryAudits?$filter=activityDisplayName eq 'Create company'")
        .await;
    assert_eq!(audits.body["value"].as_array().unwrap().len(), 1);
    // With the administrator's pass (when and how long it works), never the pass itself.
    let entry = audits.body["value"][0].to_string();
    assert!(entry.contains("TemporaryAccessPass"), "{entry}");
    assert!(!entry.contains(&t.bootstrap_pass), "{entry}");

    // A second node (or a restart) on the same database creates nothing new.
    let (second, url) = t.second_node().await.unwrap();
    assert!(
        second.bootstrap.is_none(),
        "a second start does not bootstrap again"
    );
    let users = t.get("/users").await;
    assert_eq!(users.body["value"].as_array().unwrap().len(), 1);
    // A token from the first node is accepted by the second: keys live in the database.
    let token = t.admin_token().await;
    let on_second = t
        .http
        .get(format!("{url}/graph/v1.0/users"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(on_second.status(), StatusCode::OK);
    second.shutdown().await.unwrap();
    t.stop().await;
}

#[tokio::test]
async fn client_credentials_are_checked() {
    let t = TestServer::start().await;
    let id = t.bootstrap.client_id.to_string();
    let wrong = t.client_token(&id, "not-the-secret").await.unwrap_err();
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body["error"], "invalid_client");
    let unknown = t
        .client_token(
            &uuid::Uuid::new_v4().to_string(),
            &t.bootstrap.client_secret,
        )
        .await
        .unwrap_err();
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        unknown.body["error_description"], wrong.body["error_description"],
        "unknown and wrong look alike"
    );
    let grant = t
        .form("/oauth2/v2.0/token", &[("grant_type", "password")])
        .await;
    assert_eq!(grant.status, StatusCode::BAD_REQUEST);
    assert_eq!(grant.body["error"], "unsupported_grant_type");
    let ok = t
        .client_token(&id, &t.bootstrap.client_secret)
        .await
        .unwrap();
    assert_eq!(ok.split('.').count(), 3, "a signed JWT");
    let keys: serde_json::Value = t
        .http
        .get(format!("{}/discovery/v2.0/keys", t.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(keys["keys"][0]["kty"], "EC");
    assert!(
        keys["keys"][0].get("d").is_none(),
        "no private key material is published"
    );
    t.stop().await;
}

#[tokio::test]
async fn tokens_are_refused_when_missing_forged_expired_or_short_of_permission() {
    let t = TestServer::start().await;
    let none = t
        .http
        .get(format!("{}/graph/v1.0/users", t.url))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = none.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    assert!(body["error"]["innerError"]["request-id"].is_string());

    let token = t.admin_token().await;
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(
        t.graph_as(&forged, reqwest::Method::GET, "/users", None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        t.graph_as("garbage", reqwest::Method::GET, "/users", None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    // An application with read-only permission may read but not write.
    let app = t
        .post(
            "/applications",
            json!({"displayName": "Reader", "apiPermissions": ["User.Read.All"]}),
        )
        .await;
    assert_eq!(app.status, StatusCode::CREATED, "{:?}", app.body);
    let secret = t
        .post(
            &format!(
                "/applications/{}/addPassword",
                app.body["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    let reader = t
        .client_token(
            app.body["appId"].as_str().unwrap(),
            secret.body["secretText"].as_str().unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        t.graph_as(&reader, reqwest::Method::GET, "/users", None)
            .await
            .status,
        StatusCode::OK
    );
    let denied = t
        .graph_as(
            &reader,
            reqwest::Method::POST,
            "/users",
            Some(json!({"userPrincipalName": "x@contoso.com", "displayName": "X"})),
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(denied.error_code(), Some("Authorization_RequestDenied"));
    assert!(
        denied.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("User.ReadWrite.All")
    );
    assert_eq!(
        t.get("/users?$filter=userPrincipalName eq 'x@contoso.com'")
            .await
            .body["value"],
        json!([])
    );

    // Expired: the server's clock moves past the token's lifetime.
    t.clock.advance(time::Duration::hours(2));
    let expired = t
        .graph_as(&reader, reqwest::Method::GET, "/users", None)
        .await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert!(
        expired.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );

    // Removing a permission takes effect at once, not when the token expires.
    t.clock.advance(time::Duration::hours(-2));
    let gone = t
        .delete(&format!(
            "/applications/{}",
            app.body["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    assert_eq!(
        t.graph_as(&reader, reqwest::Method::GET, "/users", None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    t.stop().await;
}

#[tokio::test]
async fn granting_api_permissions_needs_consent_rights() {
    let t = TestServer::start().await;
    // An application administrator without role-management rights…
    let app = t
        .post(
            "/applications",
            json!({"displayName": "App admin", "apiPermissions": ["Application.ReadWrite.All"]}),
        )
        .await;
    let secret = t
        .post(
            &format!(
                "/applications/{}/addPassword",
                app.body["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    let token = t
        .client_token(
            app.body["appId"].as_str().unwrap(),
            secret.body["secretText"].as_str().unwrap(),
        )
        .await
        .unwrap();
    // …may create applications, but not ones holding permissions (that would be escalation).
    let plain = t
        .graph_as(
            &token,
            reqwest::Method::POST,
            "/applications",
            Some(json!({"displayName": "Plain"})),
        )
        .await;
    assert_eq!(plain.status, StatusCode::CREATED);
    let escalate = t
        .graph_as(
            &token,
            reqwest::Method::POST,
            "/applications",
            Some(json!({"displayName": "Escalate", "apiPermissions": ["Directory.ReadWrite.All"]})),
        )
        .await;
    assert_eq!(escalate.status, StatusCode::FORBIDDEN);
    let patch = t
        .graph_as(
            &token,
            reqwest::Method::PATCH,
            &format!("/applications/{}", plain.body["id"].as_str().unwrap()),
            Some(json!({"apiPermissions": ["Directory.ReadWrite.All"]})),
        )
        .await;
    assert_eq!(patch.status, StatusCode::FORBIDDEN);
    let still = t
        .get(&format!(
            "/applications/{}",
            plain.body["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(still.body["apiPermissions"], json!([]));
    t.stop().await;
}

#[tokio::test]
async fn probes_metrics_and_openapi() {
    let t = TestServer::start().await;
    let get = |p: &str| t.http.get(format!("{}{p}", t.url)).send();
    assert_eq!(get("/healthz").await.unwrap().status(), StatusCode::OK);
    assert_eq!(get("/readyz").await.unwrap().status(), StatusCode::OK);
    let _ = t.get("/users").await;
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("portcullis_http_requests_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("route=\"/graph/v1.0/users\""),
        "requests are counted by route"
    );
    assert!(metrics.contains("portcullis_http_request_duration_seconds_bucket"));
    assert!(metrics.contains("portcullis_db_pool_connections"));
    if cfg!(target_os = "linux") {
        assert!(
            metrics.contains("process_resident_memory_bytes "),
            "the load generator reads the server's memory from here"
        );
    }
    let api: serde_json::Value = get("/graph/v1.0/openapi.json")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(api["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/users",
        "/users/{id}",
        "/groups/{id}/members/$ref",
        "/applications/{id}/addPassword",
        "/auditLogs/directoryAudits",
        "/roleManagement/directory/roleAssignments",
    ] {
        assert!(api["paths"].get(path).is_some(), "OpenAPI documents {path}");
    }
    assert!(api["paths"]["/users"]["post"]["requestBody"].is_object());
    let response = get("/graph/v1.0/users").await.unwrap();
    assert!(
        response.headers().get("request-id").is_some(),
        "every response carries a request id"
    );
    t.stop().await;
}

async fn published_kids(t: &TestServer) -> Vec<String> {
    let keys: serde_json::Value = t
        .http
        .get(format!("{}/discovery/v2.0/keys", t.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

fn token_kid(token: &str) -> String {
    use base64::Engine as _;
    let part = token.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn an_immediate_rotation_signs_with_the_new_key_at_once_without_breaking_issued_tokens() {
    let t = TestServer::start().await;
    let before = t.admin_token().await;
    assert_eq!(
        published_kids(&t).await.len(),
        2,
        "an ES256 and an RS256 key"
    );
    let rotated = portcullis::server::rotate_signing_keys(&t.config, true)
        .await
        .unwrap();
    // The admin API token of the automation application is ES256 (its default).
    let kid = rotated.kids[&SigningAlgorithm::Es256].clone();
    let rs_kid = rotated.kids[&SigningAlgorithm::Rs256].clone();
    t.reload_keys().await;
    let kids = published_kids(&t).await;
    assert_eq!(
        kids.len(),
        4,
        "the retired keys stay published until their tokens expire"
    );
    assert!(kids.contains(&kid));
    // The token issued before still works; new ones carry the new key id.
    assert_eq!(
        t.graph_as(&before, reqwest::Method::GET, "/users", None)
            .await
            .status,
        StatusCode::OK
    );
    let after = t.admin_token().await;
    assert_eq!(token_kid(&after), kid);
    assert_ne!(token_kid(&before), kid);
    assert_eq!(
        t.graph_as(&after, reqwest::Method::GET, "/users", None)
            .await
            .status,
        StatusCode::OK
    );
    // Once every token of the old key has expired, it is no longer published.
    t.clock.advance(time::Duration::hours(2));
    t.reload_keys().await;
    assert_eq!(published_kids(&t).await, vec![kid, rs_kid]);
    let audit = t
        .get("/auditLogs/directoryAudits?$filter=activityDisplayName eq 'Rotate token signing key'")
        .await;
    assert_eq!(audit.body["value"].as_array().unwrap().len(), 1);
    t.stop().await;
}

#[tokio::test]
async fn a_rotation_publishes_the_next_key_a_day_before_it_signs() {
    let t = TestServer::start().await;
    let first = token_kid(&t.admin_token().await);
    let rotated = portcullis::server::rotate_signing_keys(&t.config, false)
        .await
        .unwrap();
    let (next, signs_from) = (
        rotated.kids[&SigningAlgorithm::Es256].clone(),
        rotated.signs_from,
    );
    let next_rs = rotated.kids[&SigningAlgorithm::Rs256].clone();
    // The command runs on the system clock, as an operator's would.
    let lead = signs_from - time::OffsetDateTime::now_utc();
    assert!(
        lead > time::Duration::hours(24) - time::Duration::minutes(1)
            && lead <= time::Duration::hours(24),
        "signs after the configured lead (24 hours by default): {lead}"
    );
    t.reload_keys().await;
    // Published at once, so a client that fetches the key set now knows it…
    let kids = published_kids(&t).await;
    assert!(kids.contains(&next) && kids.contains(&first), "{kids:?}");
    // …but tokens go on carrying the key in use until the lead has passed.
    let during = t.admin_token().await;
    assert_eq!(token_kid(&during), first);
    t.clock.advance(time::Duration::hours(23));
    t.reload_keys().await;
    assert_eq!(token_kid(&t.admin_token().await), first);

    t.clock
        .advance(time::Duration::hours(1) + time::Duration::minutes(1));
    t.reload_keys().await;
    let after = t.admin_token().await;
    assert_eq!(
        token_kid(&after),
        next,
        "the next key signs once its time has come"
    );
    // The previous key stays published until its tokens have expired, and then goes.
    assert!(published_kids(&t).await.contains(&first));
    assert_eq!(
        t.graph_as(&after, reqwest::Method::GET, "/users", None)
            .await
            .status,
        StatusCode::OK
    );
    t.clock.advance(time::Duration::hours(2));
    t.reload_keys().await;
    assert_eq!(published_kids(&t).await, vec![next.clone(), next_rs]);

    // Two rotations in a row: the newer one wins and the key of the first never signs.
    let withdrawn = portcullis::server::rotate_signing_keys(&t.config, false)
        .await
        .unwrap()
        .kids[&SigningAlgorithm::Es256]
        .clone();
    let newest = portcullis::server::rotate_signing_keys(&t.config, false)
        .await
        .unwrap()
        .kids[&SigningAlgorithm::Es256]
        .clone();
    t.clock.advance(time::Duration::hours(25));
    t.reload_keys().await;
    assert_eq!(token_kid(&t.admin_token().await), newest);
    assert_ne!(withdrawn, newest);
    t.stop().await;
}

/// Remembers what each racing node handed out and withdrew.
#[derive(Default)]
struct Recorded {
    shown: std::sync::Mutex<Vec<String>>,
    withdrawn: std::sync::Mutex<Vec<String>>,
}

impl portcullis::server::HandOut for Recorded {
    fn show(&self, notice: &portcullis::server::FirstStartNotice<'_>) -> anyhow::Result<()> {
        assert!(
            notice.file.exists(),
            "bootstrap.json is written before the pass is shown"
        );
        let pass = notice.pass.temporary_access_pass.clone();
        self.shown.lock().unwrap().push(pass);
        Ok(())
    }
    fn withdraw(&self, notice: &portcullis::server::FirstStartNotice<'_>) -> anyhow::Result<()> {
        let pass = notice.pass.temporary_access_pass.clone();
        self.withdrawn.lock().unwrap().push(pass);
        Ok(())
    }
}

#[tokio::test]
async fn nodes_racing_through_a_first_start_keep_one_pass_and_withdraw_the_rest() {
    const NODES: usize = 4;
    let database = portcullis_store::testing::ScratchDatabase::from_env()
        .await
        .expect("a scratch database");
    let recorded = std::sync::Arc::new(Recorded::default());
    let mut folders = Vec::new();
    let mut starts = tokio::task::JoinSet::new();
    for node in 0..NODES {
        let folder = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let config = portcullis::config::Config {
            data_dir: folder.path().to_path_buf(),
            database_url: Some(database.url().to_string()),
            secret_key: Some("cG9ydGN1bGxpcy10ZXN0LXNlY3JldC1rZXktMzJieSE=".to_string()),
            database_max_connections: 5,
            listen: listener.local_addr().unwrap(),
            public_url: format!("http://localhost:{}", listener.local_addr().unwrap().port()),
            ..portcullis::config::Config::default()
        };
        folders.push(folder);
        let overrides = portcullis::server::Overrides {
            hand_out: recorded.clone(),
            ..portcullis::server::Overrides::default()
        };
        starts.spawn(async move {
            let server = portcullis::server::start(&config, listener, overrides)
                .await
                .expect("every node starts");
            (node, server)
        });
    }
    let mut servers = Vec::new();
    while let Some(started) = starts.join_next().await {
        servers.push(started.unwrap());
    }

    let winners: Vec<_> = servers
        .iter()
        .filter(|(_, s)| s.bootstrap.is_some())
        .collect();
    assert_eq!(winners.len(), 1, "exactly one node created the tenant");
    let (winner, server) = winners[0];
    let kept = server.bootstrap_pass.clone().unwrap().temporary_access_pass;
    let shown = recorded.shown.lock().unwrap().clone();
    let withdrawn = recorded.withdrawn.lock().unwrap().clone();
    assert!(shown.contains(&kept));
    assert!(
        !withdrawn.contains(&kept),
        "the winner's pass is not withdrawn"
    );
    assert_eq!(
        shown.len(),
        withdrawn.len() + 1,
        "every pass shown but the winner's is withdrawn"
    );
    for (node, folder) in folders.iter().enumerate() {
        assert_eq!(
            folder.path().join("bootstrap.json").exists(),
            node == *winner,
            "node {node}: only the winner keeps bootstrap.json"
        );
    }

    // The kept pass signs the administrator in, on any node.
    let (_, other) = servers.iter().find(|(n, _)| n != winner).unwrap();
    let reply = reqwest::Client::new()
        .post(format!("http://{}/auth/tap", other.local_addr))
        .json(&json!({"username": "admin@portcullis.local", "temporaryAccessPass": kept}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);

    for (_, server) in servers {
        server.shutdown().await.unwrap();
    }
    database.remove().await.unwrap();
}

/// Found by an attacker's script: no page said it must not be framed, so the sign-in page and
/// the portal could be put under another site's page and clicked through. Every HTML answer
/// (a page, a signed-in portal page, an error page) now refuses frames and sends a full
/// address to no other site; every answer forbids content sniffing.
#[tokio::test]
async fn pages_refuse_frames_and_no_answer_is_sniffed() {
    let t = TestServer::start().await;
    let session = portcullis_testkit::fixtures::admin_session(&t).await;
    let cookie = format!("{}={session}", portcullis_core::session::SESSION_COOKIE);
    for (path, with_session) in [
        ("/signin", false),
        ("/admin", true),
        ("/admin/users", true),
        ("/admin/users/00000000-0000-0000-0000-000000000000", true),
    ] {
        let mut request = t.http.get(format!("{}{path}", t.url));
        if with_session {
            request = request.header("cookie", &cookie);
        }
        let r = request.send().await.unwrap();
        let headers = r.headers().clone();
        assert!(
            r.status() == StatusCode::OK || r.status() == StatusCode::NOT_FOUND,
            "{path}: {}",
            r.status()
        );
        let content_type = headers
            .get("content-type")
            .unwrap_or_else(|| panic!("{path}: no content type"))
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            content_type.starts_with("text/html"),
            "{path}: {content_type}"
        );
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(
            headers["content-security-policy"], "frame-ancestors 'none'",
            "{path}"
        );
        assert_eq!(
            headers["referrer-policy"], "strict-origin-when-cross-origin",
            "{path}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
    }
    let api = t
        .http
        .get(format!("{}/graph/v1.0/users", t.url))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(api.headers()["x-content-type-options"], "nosniff");
    t.stop().await;
}
