//! Country named locations on a real country database: a MaxMind-format file made by the test
//! (`portcullis_testkit::mmdb`), named in `geoip_country_database`, and client addresses given
//! through a trusted proxy's `X-Forwarded-For`. A sign-in is placed in its country, blocked or
//! not by a country location policy, logged with its country, and What-If given only an address
//! finds the same country; without a database every address is of unknown country and the
//! admin pages say so; a damaged file stops the start.

use portcullis_testkit::fixtures::{WINDOWS, create_user, id, issue_pass};
use portcullis_testkit::mmdb::country_database;
use portcullis_testkit::{StatusCode, TestServer};
use serde_json::{Value, json};

/// North Korea, Sweden, and an address the database does not place.
const IN_KP: &str = "203.0.113.9";
const IN_SE: &str = "198.51.100.9";
const IN_SE_V6: &str = "2001:db8:5e::7";
const NOWHERE: &str = "192.0.2.1";
/// 2026-11-01T00:00:00Z, the build time the test database states.
const BUILT: u64 = 1_793_491_200;

/// A database placing the addresses above, written to a file in `dir`.
fn database_file(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("GeoLite2-Country.mmdb");
    let bytes = country_database(
        &[
            ("203.0.113.0/24", "KP"),
            ("198.51.100.0/24", "SE"),
            ("2001:db8:5e::/48", "SE"),
        ],
        BUILT,
    );
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A server that believes loopback's `X-Forwarded-For`, with the database when `with_db`.
async fn server(with_db: bool) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = with_db.then(|| database_file(&dir));
    let t = TestServer::start_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        c.geoip_country_database = db;
    })
    .await;
    (t, dir)
}

struct Tenant {
    joni: String,
    app_id: String,
    location: String,
}

/// Joni, an application, a country location holding `countries`, and an enabled policy for
/// Joni on every application that blocks `locations` (`include`, `exclude` of location ids,
/// where `LOCATION` stands for the country location).
async fn set_up(t: &TestServer, countries: &[&str], include: &[&str], exclude: &[&str]) -> Tenant {
    let joni = create_user(t, "joni@contoso.com", "Joni Sherman").await;
    let app = t
        .post("/applications", json!({"displayName": "Contoso Portal"}))
        .await;
    assert_eq!(app.status, StatusCode::CREATED, "{:?}", app.body);
    let location = t
        .post(
            "/identity/conditionalAccess/namedLocations",
            json!({
                "@odata.type": "#microsoft.graph.countryNamedLocation",
                "displayName": "Countries",
                "countriesAndRegions": countries,
            }),
        )
        .await;
    assert_eq!(location.status, StatusCode::CREATED, "{:?}", location.body);
    let location = id(&location.body);
    let named = |list: &[&str]| -> Vec<String> {
        list.iter()
            .map(|l| {
                if *l == "LOCATION" {
                    location.clone()
                } else {
                    l.to_string()
                }
            })
            .collect()
    };
    let policy = t
        .post(
            "/identity/conditionalAccess/policies",
            json!({
                "displayName": "Block by country",
                "state": "enabled",
                "conditions": {
                    "users": {"includeUsers": [joni]},
                    "applications": {"includeApplications": ["All"]},
                    "clientAppTypes": ["all"],
                    "locations": {"includeLocations": named(include), "excludeLocations": named(exclude)}
                },
                "grantControls": {"operator": "OR", "builtInControls": ["block"]}
            }),
        )
        .await;
    assert_eq!(policy.status, StatusCode::CREATED, "{:?}", policy.body);
    Tenant {
        joni,
        app_id: app.body["appId"].as_str().unwrap().to_string(),
        location,
    }
}

/// Joni signs in to the application with a fresh pass from `address` (through the trusted
/// proxy): the final step's reply.
async fn sign_in_from(t: &TestServer, tenant: &Tenant, address: &str) -> Value {
    let step = |path: String, body: Value| {
        let request = t
            .http
            .post(format!("{}{path}", t.url))
            .header("user-agent", WINDOWS)
            .header("x-forwarded-for", address)
            .json(&body);
        // A block is a 403 whose body is the flow's state, like every other step's.
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let started = step("/signin/flows".into(), json!({"clientId": tenant.app_id})).await;
    let flow = started["flowId"].as_str().unwrap().to_string();
    let identified = step(
        format!("/signin/flows/{flow}/identify"),
        json!({"username": "joni@contoso.com"}),
    )
    .await;
    assert_eq!(identified["status"], "firstFactor", "{identified}");
    let pass = issue_pass(t, &tenant.joni, json!({"isUsableOnce": true})).await;
    step(
        format!("/signin/flows/{flow}/tap"),
        json!({"temporaryAccessPass": pass}),
    )
    .await
}

/// The newest sign-in log entry.
async fn last_sign_in(t: &TestServer) -> Value {
    let log = t.get("/auditLogs/signIns?$top=1").await;
    assert_eq!(log.status, StatusCode::OK, "{:?}", log.body);
    log.body["value"][0].clone()
}

#[tokio::test]
async fn a_sign_in_from_a_blocked_country_is_blocked_and_one_from_elsewhere_is_not() {
    let (t, dir) = server(true).await;
    // Read once at start: the file is not needed afterwards.
    drop(dir);
    let tenant = set_up(&t, &["KP"], &["LOCATION"], &[]).await;

    let blocked = sign_in_from(&t, &tenant, IN_KP).await;
    assert_eq!(blocked["status"], "blocked", "{blocked}");
    assert_eq!(blocked["policies"][0]["displayName"], "Block by country");
    let entry = last_sign_in(&t).await;
    assert_eq!(entry["ipAddress"], IN_KP);
    assert_eq!(entry["location"]["countryOrRegion"], "KP");
    assert_eq!(entry["status"]["errorCode"], 53003);
    let page = crate::portal::admin(&t)
        .await
        .get(&format!(
            "/admin/sign-ins/{}",
            entry["id"].as_str().unwrap()
        ))
        .await;
    assert!(
        page.html.contains("<dd id=\"sign-in-country\">KP</dd>"),
        "{}",
        page.html
    );

    for (address, country) in [
        (IN_SE, json!("SE")),
        (IN_SE_V6, json!("SE")),
        (NOWHERE, Value::Null),
    ] {
        let reply = sign_in_from(&t, &tenant, address).await;
        assert_eq!(reply["status"], "granted", "{address}: {reply}");
        let entry = last_sign_in(&t).await;
        assert_eq!(entry["ipAddress"], address);
        assert_eq!(entry["location"]["countryOrRegion"], country, "{address}");
        assert_eq!(entry["status"]["errorCode"], 0, "{address}");
    }
    // A failed first factor is logged with the country too.
    let failed = t
        .http
        .post(format!("{}/auth/tap", t.url))
        .header("x-forwarded-for", IN_KP)
        .json(&json!({"username": "joni@contoso.com", "temporaryAccessPass": "not-a-pass"}))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(last_sign_in(&t).await["location"]["countryOrRegion"], "KP");
    t.stop().await;
}

#[tokio::test]
async fn an_allow_list_of_countries_admits_only_them_with_a_database_and_nobody_without() {
    // "Block everywhere but Sweden": include all locations, exclude the Swedish one.
    let (t, _dir) = server(true).await;
    let tenant = set_up(&t, &["SE"], &["All"], &["LOCATION"]).await;
    assert_eq!(sign_in_from(&t, &tenant, IN_SE).await["status"], "granted");
    assert_eq!(sign_in_from(&t, &tenant, IN_KP).await["status"], "blocked");
    assert_eq!(
        sign_in_from(&t, &tenant, NOWHERE).await["status"],
        "blocked"
    );
    t.stop().await;

    // Without a database no address is known to be Swedish: the allow-list fails closed.
    let (t, _dir) = server(false).await;
    let tenant = set_up(&t, &["SE"], &["All"], &["LOCATION"]).await;
    let reply = sign_in_from(&t, &tenant, IN_SE).await;
    assert_eq!(reply["status"], "blocked", "{reply}");
    assert_eq!(
        last_sign_in(&t).await["location"]["countryOrRegion"],
        Value::Null
    );
    t.stop().await;
}

#[tokio::test]
async fn without_a_database_a_deny_list_reaches_only_what_includes_unknown_countries() {
    let (t, _dir) = server(false).await;
    let tenant = set_up(&t, &["KP"], &["LOCATION"], &[]).await;
    // Every address is of unknown country, which this location does not include.
    assert_eq!(sign_in_from(&t, &tenant, IN_KP).await["status"], "granted");
    let patched = t
        .patch(
            &format!(
                "/identity/conditionalAccess/namedLocations/{}",
                tenant.location
            ),
            json!({
                "@odata.type": "#microsoft.graph.countryNamedLocation",
                "includeUnknownCountriesAndRegions": true
            }),
        )
        .await;
    assert!(patched.status.is_success(), "{:?}", patched.body);
    assert_eq!(sign_in_from(&t, &tenant, IN_KP).await["status"], "blocked");
    assert_eq!(sign_in_from(&t, &tenant, IN_SE).await["status"], "blocked");
    t.stop().await;
}

/// What-If for Joni given `conditions`: whether the country policy applies.
async fn what_if_applies(t: &TestServer, tenant: &Tenant, conditions: Value) -> bool {
    let reply = t
        .post(
            "/identity/conditionalAccess/evaluate",
            json!({
                "signInIdentity": {"@odata.type": "#microsoft.graph.userSignIn", "userId": tenant.joni},
                "signInContext": {"@odata.type": "#microsoft.graph.applicationContext", "includeApplications": [tenant.app_id]},
                "signInConditions": conditions,
                "appliedPoliciesOnly": false
            }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["displayName"] == "Block by country")
        .unwrap_or_else(|| panic!("the policy in {}", reply.body))["policyApplies"]
        .as_bool()
        .unwrap()
}

#[tokio::test]
async fn what_if_given_only_an_address_finds_its_country_in_the_database() {
    let (t, _dir) = server(true).await;
    let tenant = set_up(&t, &["KP"], &["LOCATION"], &[]).await;
    assert!(what_if_applies(&t, &tenant, json!({"ipAddress": IN_KP})).await);
    assert!(!what_if_applies(&t, &tenant, json!({"ipAddress": IN_SE})).await);
    // A country the request names is the one evaluated.
    assert!(what_if_applies(&t, &tenant, json!({"ipAddress": IN_SE, "country": "KP"})).await);
    t.stop().await;

    let (t, _dir) = server(false).await;
    let tenant = set_up(&t, &["KP"], &["LOCATION"], &[]).await;
    assert!(!what_if_applies(&t, &tenant, json!({"ipAddress": IN_KP})).await);
    t.stop().await;
}

#[tokio::test]
async fn the_location_pages_say_which_database_places_addresses_or_that_none_does() {
    const NONE: &str = "No country database is configured: country locations never match a country";
    let (t, _dir) = server(false).await;
    let tenant = set_up(&t, &["KP"], &["LOCATION"], &[]).await;
    let admin = crate::portal::admin(&t).await;
    let list = admin.get("/admin/conditional-access/named-locations").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.html.contains(NONE), "{}", list.html);
    assert!(list.html.contains("geoip_country_database"));
    let page = admin
        .get(&format!(
            "/admin/conditional-access/named-locations/{}",
            tenant.location
        ))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains(NONE), "{}", page.html);
    t.stop().await;

    let (t, _dir) = server(true).await;
    let admin = crate::portal::admin(&t).await;
    let list = admin.get("/admin/conditional-access/named-locations").await;
    assert!(!list.html.contains(NONE));
    assert!(
        list.html
            .contains("Countries are looked up in Portcullis-Test-Country, built 2026-11-01."),
        "{}",
        list.html
    );
    t.stop().await;
}

#[tokio::test]
async fn a_country_database_that_cannot_be_read_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let damaged = dir.path().join("damaged.mmdb");
    let mut bytes = country_database(&[("203.0.113.0/24", "KP")], BUILT);
    // Cut into the search tree: the file still ends in its metadata, so only verifying it
    // finds the damage.
    bytes.drain(40..60);
    std::fs::write(&damaged, &bytes).unwrap();
    let garbage = dir.path().join("garbage.mmdb");
    std::fs::write(&garbage, b"not a database at all").unwrap();
    let missing = dir.path().join("missing.mmdb");
    for path in [damaged, garbage, missing] {
        let started =
            TestServer::try_start_with(|c| c.geoip_country_database = Some(path.clone())).await;
        let error = format!("{:#}", started.err().expect("the start is refused"));
        assert!(error.contains("geoip_country_database"), "{error}");
        assert!(error.contains(&path.display().to_string()), "{error}");
    }
}
