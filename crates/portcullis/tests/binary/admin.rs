//! The admin commands of the real binary against the real server started in-process (on
//! SQLite, or PostgreSQL with `PORTCULLIS_TEST_DATABASE_URL`): what a person reads, what
//! `--json` gives scripts, and the exit codes (0 done, 1 refused, 2 usage or a local file).

use std::process::Command;

use portcullis_testkit::TestServer;
use portcullis_testkit::fixtures;
use serde_json::{Value, json};

use super::BINARY;

/// An administrator's machine: a folder with the server's bootstrap.json.
struct Admin {
    url: String,
    dir: tempfile::TempDir,
}

/// What one run printed and how it exited.
struct Ran {
    code: i32,
    out: String,
    err: String,
}

impl Ran {
    fn json(&self) -> Value {
        serde_json::from_str(&self.out)
            .unwrap_or_else(|e| panic!("--json prints JSON ({e}):\n{}{}", self.out, self.err))
    }
}

impl Admin {
    fn new(t: &TestServer) -> Admin {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let bootstrap = json!({
            "url": t.url,
            "clientId": t.bootstrap.client_id.to_string(),
            "clientSecret": t.bootstrap.client_secret,
        });
        std::fs::write(dir.path().join("bootstrap.json"), bootstrap.to_string()).unwrap();
        Admin {
            url: t.url.clone(),
            dir,
        }
    }

    /// `portcullis ARGS… --data-dir … --url …`, on a blocking thread so the in-process server
    /// keeps serving.
    async fn run(&self, args: &[&str]) -> Ran {
        let mut command = Command::new(BINARY);
        command
            .args(args)
            .arg("--data-dir")
            .arg(self.dir.path())
            .arg("--url")
            .arg(&self.url)
            .env_remove("PORTCULLIS_CLIENT_ID")
            .env_remove("PORTCULLIS_CLIENT_SECRET")
            .env_remove("PORTCULLIS_URL")
            .env_remove("PORTCULLIS_DATA_DIR");
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap()
            .expect("the binary runs");
        Ran {
            code: output.status.code().unwrap_or(-1),
            out: String::from_utf8_lossy(&output.stdout).into_owned(),
            err: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    async fn ok(&self, args: &[&str]) -> Ran {
        let ran = self.run(args).await;
        assert_eq!(ran.code, 0, "{args:?}:\n{}{}", ran.out, ran.err);
        ran
    }
}

fn values(v: &Value) -> &Vec<Value> {
    v["value"].as_array().expect("a {\"value\":[…]} list")
}

fn block_everyone(name: &str, state: &str) -> Value {
    json!({
        "displayName": name,
        "state": state,
        "conditions": {
            "users": {"includeUsers": ["All"]},
            "applications": {"includeApplications": ["All"]},
            "clientAppTypes": ["all"]
        },
        "grantControls": {"operator": "OR", "builtInControls": ["block"]}
    })
}

fn require_mfa(name: &str, state: &str) -> Value {
    json!({
        "displayName": name,
        "state": state,
        "conditions": {
            "users": {"includeUsers": ["All"]},
            "applications": {"includeApplications": ["All"]},
            "clientAppTypes": ["browser", "mobileAppsAndDesktopClients"]
        },
        "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}
    })
}

/// UTF-16 little-endian with a byte-order mark, as Entra's portal and PowerShell save exports.
fn utf16(text: &str) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xFE];
    for unit in text.encode_utf16() {
        bytes.extend(unit.to_le_bytes());
    }
    bytes
}

#[tokio::test(flavor = "multi_thread")]
async fn ca_export_then_import_gives_the_same_policies_and_the_guard_refuses_a_lockout() {
    let t = TestServer::start().await;
    let a = Admin::new(&t);
    let mfa = fixtures::create_policy(&t, require_mfa("Require MFA: everyone", "disabled")).await;
    let block = fixtures::create_policy(
        &t,
        block_everyone("Block everyone (test)", "enabledForReportingButNotEnforced"),
    )
    .await;

    let table = a.ok(&["ca", "list"]).await.out;
    assert!(table.starts_with("ID"), "{table}");
    assert!(
        table.contains("Require MFA: everyone") && table.contains("report-only"),
        "{table}"
    );
    let before = a.ok(&["ca", "list", "--json"]).await.json();
    assert_eq!(values(&before).len(), 2);

    let export = tempfile::tempdir().unwrap();
    let ran = a
        .ok(&["ca", "export", export.path().to_str().unwrap()])
        .await;
    assert!(ran.out.contains("Exported 2 policies"), "{}", ran.out);
    let mut names: Vec<String> = std::fs::read_dir(export.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mfa_id = mfa["id"].as_str().unwrap();
    let block_id = block["id"].as_str().unwrap();
    assert_eq!(
        names,
        [
            format!("block-everyone-test-{block_id}.json"),
            format!("require-mfa-everyone-{mfa_id}.json")
        ]
    );

    for id in [mfa_id, block_id] {
        let ran = a.ok(&["ca", "delete", id]).await;
        assert!(ran.out.contains("Deleted policy"), "{}", ran.out);
    }
    assert_eq!(
        a.ok(&["ca", "list"]).await.out.trim(),
        "No Conditional Access policies."
    );

    let ran = a
        .ok(&[
            "ca",
            "import",
            export.path().to_str().unwrap(),
            "--keep-state",
        ])
        .await;
    assert!(
        ran.out
            .contains("Imported 2 of 2 policies in the states their files give; 0 refused."),
        "{}",
        ran.out
    );
    let after = a.ok(&["ca", "list", "--json"]).await.json();
    let shape = |list: &Value| {
        let mut v: Vec<(String, String, String, Value)> = values(list)
            .iter()
            .map(|p| {
                (
                    p["id"].as_str().unwrap().to_string(),
                    p["displayName"].as_str().unwrap().to_string(),
                    p["state"].as_str().unwrap().to_string(),
                    json!([p["conditions"], p["grantControls"]]),
                )
            })
            .collect();
        v.sort_by(|x, y| x.0.cmp(&y.0));
        v
    };
    assert_eq!(
        shape(&after),
        shape(&before),
        "the round trip keeps every policy"
    );

    // Turning the block-everyone policy on would lock the administrators out: the guard says
    // so, the command exits 1 with its message, and the policy stays report-only.
    let refused = a.run(&["ca", "state", block_id, "on"]).await;
    assert_eq!(refused.code, 1, "{}{}", refused.out, refused.err);
    assert!(refused.err.contains("HTTP 4"), "{}", refused.err);
    let shown = a.ok(&["ca", "show", block_id, "--json"]).await.json();
    assert_eq!(shown["state"], "enabledForReportingButNotEnforced");
    let human = a.ok(&["ca", "show", block_id]).await.out;
    assert!(human.contains("report-only"), "{human}");

    let on = a.ok(&["ca", "state", mfa_id, "report-only"]).await;
    assert!(on.out.contains("is now report-only"), "{}", on.out);
    let off = a.ok(&["ca", "state", mfa_id, "off", "--json"]).await.json();
    assert_eq!(off["state"], "disabled");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ca_import_reads_utf16_and_folders_and_reports_each_policy() {
    let t = TestServer::start().await;
    let a = Admin::new(&t);
    let folder = tempfile::tempdir().unwrap();
    // An Entra export in UTF-16: a session control this engine keeps without enforcing, and
    // an excluded user who is not in this tenant.
    let mut exported = require_mfa("From Entra", "enabled");
    exported["sessionControls"] =
        json!({"cloudAppSecurity": {"isEnabled": true, "cloudAppSecurityType": "monitorOnly"}});
    exported["conditions"]["users"]["excludeUsers"] =
        json!(["4e7f8a2c-1111-4222-8333-944455556666"]);
    exported["@odata.context"] = json!("https://graph.microsoft.com/v1.0/$metadata#x");
    std::fs::write(
        folder.path().join("a-entra.json"),
        utf16(&exported.to_string()),
    )
    .unwrap();
    // Refused by the server: a strength that does not exist.
    let mut unknown_strength = require_mfa("Unknown strength", "disabled");
    unknown_strength["grantControls"] = json!({"operator": "OR", "builtInControls": [],
        "authenticationStrength": {"id": "7d2b0c71-0000-4000-8000-000000000000"}});
    std::fs::write(
        folder.path().join("b-refused.json"),
        unknown_strength.to_string(),
    )
    .unwrap();
    // A {"value":[…]} list of two.
    std::fs::write(
        folder.path().join("c-list.json"),
        json!({"value": [require_mfa("Listed one", "disabled"), require_mfa("Listed two", "enabled")]})
            .to_string(),
    )
    .unwrap();
    std::fs::write(folder.path().join("notes.txt"), "not a policy").unwrap();

    let ran = a
        .run(&["ca", "import", folder.path().to_str().unwrap()])
        .await;
    assert_eq!(
        ran.code, 1,
        "a refused policy exits 1:\n{}{}",
        ran.out, ran.err
    );
    assert!(
        ran.err.contains("refused 1 of 4 policies"),
        "{}{}",
        ran.out,
        ran.err
    );
    let line = |file: &str, policy: &str| {
        ran.out
            .lines()
            .find(|l| l.starts_with(file) && l.contains(policy))
            .unwrap_or_else(|| panic!("no line for {file} {policy}:\n{}", ran.out))
            .to_string()
    };
    let entra = line("a-entra.json", "From Entra");
    assert!(entra.contains("imported (report-only)"), "{entra}");
    assert!(
        entra.contains("unsupported (kept, not evaluated): sessionControls.cloudAppSecurity"),
        "{entra}"
    );
    assert!(
        entra.contains(
            "unresolved: conditions.users.excludeUsers 4e7f8a2c-1111-4222-8333-944455556666"
        ),
        "{entra}"
    );
    let refused = line("b-refused.json", "Unknown strength");
    assert!(refused.contains("refused"), "{refused}");
    assert!(
        refused.contains("7d2b0c71-0000-4000-8000-000000000000"),
        "the server's message: {refused}"
    );
    let listed_two = line("c-list.json", "Listed two");
    assert!(
        listed_two.contains("imported (report-only)") && listed_two.contains("kept as it is"),
        "{listed_two}"
    );
    assert!(
        ran.out
            .contains("Imported 3 of 4 policies in report-only (--keep-state keeps"),
        "{}",
        ran.out
    );

    let listed = a.ok(&["ca", "list", "--json"]).await.json();
    assert_eq!(values(&listed).len(), 3);
    assert!(
        values(&listed)
            .iter()
            .all(|p| p["state"] == "enabledForReportingButNotEnforced")
    );

    // --json: the same report for scripts, one entry per policy.
    let single = tempfile::tempdir().unwrap();
    let file = single.path().join("again.json");
    std::fs::write(&file, unknown_strength.to_string()).unwrap();
    let ran = a
        .run(&["ca", "import", file.to_str().unwrap(), "--json"])
        .await;
    assert_eq!(ran.code, 1);
    let report = ran.json();
    assert_eq!(values(&report).len(), 1);
    assert_eq!(report["value"][0]["result"], "refused");
    assert!(
        report["value"][0]["message"]
            .as_str()
            .unwrap()
            .contains("7d2b0c71")
    );

    // A file that cannot be read stops the import before anything is sent: exit 2.
    std::fs::write(single.path().join("broken.json"), "{ not json").unwrap();
    let ran = a
        .run(&["ca", "import", single.path().to_str().unwrap()])
        .await;
    assert_eq!(ran.code, 2, "{}{}", ran.out, ran.err);
    assert!(ran.err.contains("broken.json"), "{}", ran.err);
    assert_eq!(
        values(&a.ok(&["ca", "list", "--json"]).await.json()).len(),
        3
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn passkeys_and_sessions_of_a_person_from_the_command_line() {
    let t = TestServer::start().await;
    let a = Admin::new(&t);
    fixtures::allow_test_authenticator(&t).await;
    let id = fixtures::create_user(&t, "joni@contoso.com", "Joni Sherman").await;
    let session = fixtures::pass_session(&t, &id, "joni@contoso.com", json!({})).await;
    fixtures::register_test_passkey(&t, &session, "Joni's key").await;

    let table = a.ok(&["passkeys", "list", "joni@contoso.com"]).await.out;
    assert!(table.starts_with("ID"), "{table}");
    assert!(table.contains("Joni's key"), "{table}");
    let listed = a
        .ok(&["passkeys", "list", "joni@contoso.com", "--json"])
        .await
        .json();
    assert_eq!(values(&listed).len(), 1);
    let passkey = values(&listed)[0]["id"].as_str().unwrap().to_string();

    let deleted = a
        .ok(&["passkeys", "delete", "joni@contoso.com", &passkey])
        .await;
    assert!(
        deleted.out.contains("no longer signs them in"),
        "{}",
        deleted.out
    );
    assert_eq!(
        a.ok(&["passkeys", "list", "joni@contoso.com"])
            .await
            .out
            .trim(),
        "joni@contoso.com has no passkeys."
    );
    let again = a
        .run(&["passkeys", "delete", "joni@contoso.com", &passkey])
        .await;
    assert_eq!(again.code, 1, "a passkey already gone is the server's 404");

    // The session works until it is revoked.
    let session = fixtures::pass_session(&t, &id, "joni@contoso.com", json!({})).await;
    let mine = |token: String| {
        let t = &t;
        async move {
            fixtures::call(
                t,
                None,
                Some(&token),
                reqwest::Method::GET,
                "/my/passkeys",
                None,
            )
            .await
            .status
            .as_u16()
        }
    };
    assert_eq!(mine(session.clone()).await, 200);
    let revoked = a.ok(&["sessions", "revoke", "joni@contoso.com"]).await;
    assert!(
        revoked
            .out
            .contains("Ended every sign-in session of joni@contoso.com"),
        "{}",
        revoked.out
    );
    assert_ne!(
        mine(session).await,
        200,
        "the revoked session no longer works"
    );
    let json = a.ok(&["sessions", "revoke", &id, "--json"]).await.json();
    assert_eq!(json["value"], true);

    let unknown = a.run(&["sessions", "revoke", "nobody@contoso.com"]).await;
    assert_eq!(unknown.code, 1, "{}", unknown.err);
    assert!(unknown.err.contains("HTTP 404"), "{}", unknown.err);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn strengths_and_method_policies_read_and_change() {
    let t = TestServer::start().await;
    let a = Admin::new(&t);

    let strengths = a.ok(&["strengths", "list"]).await.out;
    assert!(strengths.starts_with("ID"), "{strengths}");
    assert!(
        strengths.contains("00000000-0000-0000-0000-000000000004"),
        "{strengths}"
    );
    let listed = a.ok(&["strengths", "list", "--json"]).await.json();
    assert!(values(&listed).len() >= 3);
    let shown = a
        .ok(&["strengths", "show", "00000000-0000-0000-0000-000000000004"])
        .await
        .out;
    assert!(
        shown.contains("Allowed combinations:") && shown.contains("fido2"),
        "{shown}"
    );
    assert_eq!(
        a.run(&["strengths", "show", "No such strength"]).await.code,
        2
    );

    let methods = a.ok(&["methods", "list"]).await.out;
    for name in ["TemporaryAccessPass", "Fido2", "Password"] {
        assert!(methods.contains(name), "{methods}");
    }
    let tap = a
        .ok(&[
            "methods",
            "set",
            "tap",
            "--default-lifetime",
            "120",
            "--json",
        ])
        .await
        .json();
    assert_eq!(tap["defaultLifetimeInMinutes"], 120);
    let shown = a.ok(&["methods", "show", "TemporaryAccessPass"]).await.out;
    assert!(
        shown.contains("Default lifetime (minutes):  120"),
        "{shown}"
    );

    let aaguid = "cb69481e-8ff7-4039-93ec-0a2729a154a8";
    let fido2 = a
        .ok(&[
            "methods",
            "set",
            "passkey",
            "--aaguid",
            aaguid,
            "--key-restriction",
            "block",
            "--enforce-key-restrictions",
            "true",
            "--json",
        ])
        .await
        .json();
    assert_eq!(fido2["keyRestrictions"]["isEnforced"], true);
    assert_eq!(fido2["keyRestrictions"]["enforcementType"], "block");
    let listed: Vec<String> = fido2["keyRestrictions"]["aaGuids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap().to_ascii_lowercase())
        .collect();
    assert_eq!(listed, [aaguid]);
    let human = a.ok(&["methods", "show", "fido2"]).await.out;
    assert!(human.contains("Key restriction:"), "{human}");

    // A switch of another method is a usage error, and nothing is sent.
    let wrong = a
        .run(&["methods", "set", "password", "--aaguid", aaguid])
        .await;
    assert_eq!(wrong.code, 2, "{}", wrong.err);
    assert!(
        wrong.err.contains("do not apply to the Password policy"),
        "{}",
        wrong.err
    );
    // The server's refusal of a value is exit 1 with its message.
    let refused = a.run(&["methods", "set", "tap", "--length", "5"]).await;
    assert_eq!(refused.code, 1, "{}", refused.err);
    assert!(refused.err.contains("defaultLength"), "{}", refused.err);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_credentials_are_a_usage_error() {
    let empty = tempfile::tempdir().unwrap();
    let output = Command::new(BINARY)
        .args(["users", "list", "--url", "http://127.0.0.1:9", "--data-dir"])
        .arg(empty.path())
        .env_remove("PORTCULLIS_CLIENT_ID")
        .env_remove("PORTCULLIS_CLIENT_SECRET")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let help = Command::new(BINARY).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("Exit codes: 0 done; 1 the server refused"),
        "{help}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_user_is_restored_from_the_command_line() {
    let t = TestServer::start().await;
    let a = Admin::new(&t);
    let id = fixtures::create_user(&t, "joni@contoso.com", "Joni Sherman").await;

    let deleted = a.ok(&["users", "delete", &id]).await;
    assert_eq!(deleted.out.trim(), format!("Deleted user {id}."));
    let gone = a.run(&["users", "show", &id]).await;
    assert_eq!(gone.code, 1, "a deleted user is not among the live ones");

    let restored = a.ok(&["users", "restore", &id]).await;
    assert!(
        restored.out.starts_with("Restored user joni@contoso.com."),
        "{}",
        restored.out
    );
    let back = a.ok(&["users", "show", &id, "--json"]).await.json();
    assert_eq!(back["userPrincipalName"], "joni@contoso.com");

    // Nothing left to restore: the server's 404, exit 1, its message on stderr.
    let again = a.run(&["users", "restore", &id]).await;
    assert_eq!(again.code, 1, "{}{}", again.out, again.err);
    assert!(again.err.contains("HTTP 404"), "{}", again.err);
    t.stop().await;
}
