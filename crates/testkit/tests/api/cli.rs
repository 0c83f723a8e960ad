//! The admin commands of the `portcullis` binary (`portcullis_client::cli`), parsed from argv as
//! the binary parses them and run against the real server: every command group, in the tables
//! people read and the `--json` scripts read, and failures that carry the server's own message.

use clap::Parser;
use portcullis_client::ClientError;
use portcullis_client::cli::{self, AdminCommand};
use portcullis_testkit::TestServer;
use serde_json::Value;

/// The same clap tree the binary builds around the admin commands.
#[derive(Parser)]
#[command(name = "portcullis")]
struct Argv {
    #[command(subcommand)]
    command: AdminCommand,
}

/// A data folder holding a bootstrap.json for the test server, the way an administrator's
/// machine would after copying it from the server.
pub(crate) struct Admin {
    url: String,
    dir: tempfile::TempDir,
}

impl Admin {
    pub(crate) fn new(t: &TestServer) -> Admin {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let bootstrap = serde_json::json!({
            "url": t.url,
            "clientId": t.bootstrap.client_id.to_string(),
            "clientSecret": t.bootstrap.client_secret,
        });
        std::fs::write(dir.path().join("bootstrap.json"), bootstrap.to_string())
            .expect("bootstrap.json written");
        Admin {
            url: t.url.clone(),
            dir,
        }
    }

    /// Runs `portcullis <args…>` with this folder as `--data-dir`; stdout, or the error.
    async fn run(&self, args: &[&str]) -> Result<String, ClientError> {
        let data_dir = self.dir.path().to_str().expect("a UTF-8 path");
        let argv = ["portcullis"]
            .into_iter()
            .chain(args.iter().copied())
            .chain(["--data-dir", data_dir, "--url", &self.url]);
        let parsed = Argv::try_parse_from(argv).unwrap_or_else(|e| panic!("{args:?} parses: {e}"));
        let mut out = Vec::new();
        cli::run(parsed.command, &mut out).await?;
        Ok(String::from_utf8(out).expect("UTF-8 output"))
    }

    pub(crate) async fn ok(&self, args: &[&str]) -> String {
        self.run(args)
            .await
            .unwrap_or_else(|e| panic!("{args:?} failed: {e}"))
    }

    pub(crate) async fn json(&self, args: &[&str]) -> Value {
        let mut with_json = args.to_vec();
        with_json.push("--json");
        let text = self.ok(&with_json).await;
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{args:?} --json printed JSON: {e}\n{text}"))
    }

    pub(crate) async fn fails(&self, args: &[&str]) -> ClientError {
        match self.run(args).await {
            Ok(out) => panic!("{args:?} succeeded:\n{out}"),
            Err(e) => e,
        }
    }
}

fn values(list: &Value) -> &Vec<Value> {
    list["value"].as_array().expect("a {\"value\":[…]} list")
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_string()
}

/// The header line of a table, split into its column names.
fn header(table: &str) -> Vec<&str> {
    table
        .lines()
        .next()
        .unwrap_or_default()
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

#[tokio::test]
async fn users_commands() {
    let t = TestServer::start().await;
    let a = Admin::new(&t);

    let created = a
        .ok(&[
            "users",
            "create",
            "--upn",
            "joni@contoso.com",
            "--name",
            "Joni Sherman",
            "--mail",
            "joni@contoso.com",
        ])
        .await;
    assert!(
        created.starts_with("Created user joni@contoso.com."),
        "{created}"
    );
    assert!(created.contains("Account enabled:      yes"), "{created}");
    let guest = a
        .json(&[
            "users",
            "create",
            "--upn",
            "grady@contoso.com",
            "--name",
            "Grady Archie",
            "--guest",
            "--disabled",
        ])
        .await;
    assert_eq!(
        (
            guest["userType"].as_str(),
            guest["accountEnabled"].as_bool()
        ),
        (Some("Guest"), Some(false))
    );

    let table = a.ok(&["users", "list"]).await;
    assert_eq!(
        header(&table),
        [
            "ID",
            "USER PRINCIPAL NAME",
            "DISPLAY NAME",
            "TYPE",
            "ENABLED"
        ]
    );
    assert_eq!(
        table.lines().count(),
        4,
        "header, the bootstrap admin, Joni, Grady:\n{table}"
    );
    // Columns line up: every row's second column starts where the header's does.
    let upn_column = table
        .lines()
        .next()
        .unwrap()
        .find("USER PRINCIPAL NAME")
        .unwrap();
    assert!(
        table.lines().skip(1).all(|l| l[upn_column..]
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric())),
        "{table}"
    );

    let all = a.json(&["users", "list"]).await;
    assert_eq!(values(&all).len(), 3);
    let guests = a
        .json(&["users", "list", "--filter", "userType eq 'Guest'"])
        .await;
    assert_eq!(
        values(&guests).iter().map(id).collect::<Vec<_>>(),
        [id(&guest)]
    );
    assert_eq!(
        values(&a.json(&["users", "list", "--top", "2"]).await).len(),
        2
    );

    let shown = a.json(&["users", "show", "joni@contoso.com"]).await;
    assert_eq!(shown["displayName"], "Joni Sherman");
    let joni = id(&shown);
    let updated = a
        .ok(&[
            "users",
            "update",
            &joni,
            "--name",
            "Joni S.",
            "--disable",
            "--clear-mail",
        ])
        .await;
    assert!(
        updated.contains("Display name:         Joni S."),
        "{updated}"
    );
    assert!(updated.contains("Account enabled:      no"), "{updated}");
    let now = a.json(&["users", "show", &joni]).await;
    assert!(now["mail"].is_null());
    let renamed = a
        .json(&[
            "users",
            "update",
            "joni@contoso.com",
            "--upn",
            "joni.sherman@contoso.com",
            "--enable",
        ])
        .await;
    assert_eq!(
        (
            renamed["userPrincipalName"].as_str(),
            renamed["accountEnabled"].as_bool()
        ),
        (Some("joni.sherman@contoso.com"), Some(true))
    );

    let none = a.ok(&["users", "groups", &joni]).await;
    assert_eq!(none.trim(), format!("{joni} is not a member of any group."));

    assert_eq!(
        a.ok(&["users", "delete", &joni]).await.trim(),
        format!("Deleted user {joni}.")
    );
    // For scripts a delete prints nothing: the exit status says it worked.
    assert_eq!(a.ok(&["users", "delete", &id(&guest), "--json"]).await, "");
    // A deleted user comes back by object id, for 30 days.
    let restored = a.ok(&["users", "restore", &joni]).await;
    assert!(
        restored.starts_with("Restored user joni.sherman@contoso.com."),
        "{restored}"
    );
    t.stop().await;
}

#[tokio::test]
async fn groups_commands() {
    let t = TestServer::start().await;
    let a = Admin::new(&t);
    let joni = a
        .json(&[
            "users",
            "create",
            "--upn",
            "joni@contoso.com",
            "--name",
            "Joni Sherman",
        ])
        .await;

    let admins = a
        .json(&[
            "groups",
            "create",
            "--name",
            "Admins",
            "--description",
            "Admin accounts",
        ])
        .await;
    assert_eq!(admins["description"], "Admin accounts");
    let created = a
        .ok(&["groups", "create", "--name", "Passkey pilots"])
        .await;
    assert!(
        created.starts_with("Created group Passkey pilots."),
        "{created}"
    );

    // Groups by name, users by userPrincipalName: what a person has at hand.
    assert_eq!(
        a.ok(&["groups", "add-member", "Admins", "Passkey pilots"])
            .await
            .trim(),
        "Added Passkey pilots to Admins."
    );
    a.ok(&["groups", "add-member", "Passkey pilots", "joni@contoso.com"])
        .await;

    let direct = a.json(&["groups", "members", "Admins"]).await;
    assert_eq!(values(&direct).len(), 1);
    assert_eq!(values(&direct)[0]["@odata.type"], "#microsoft.graph.group");
    let transitive = a
        .ok(&["groups", "members", &id(&admins), "--transitive"])
        .await;
    assert_eq!(
        header(&transitive),
        ["ID", "TYPE", "DISPLAY NAME", "USER PRINCIPAL NAME"]
    );
    assert!(
        transitive
            .lines()
            .any(|l| l.contains("joni@contoso.com") && l.contains("user")),
        "{transitive}"
    );

    let member_of = a
        .json(&["users", "groups", "joni@contoso.com", "--transitive"])
        .await;
    let mut names: Vec<&str> = values(&member_of)
        .iter()
        .filter_map(|g| g["displayName"].as_str())
        .collect();
    names.sort();
    assert_eq!(names, ["Admins", "Passkey pilots"]);

    // The server refuses a cycle, and the command says what the server said.
    let err = a
        .fails(&["groups", "add-member", "Passkey pilots", "Admins"])
        .await;
    assert_eq!(err.status(), Some(400));
    assert!(err.to_string().contains("circular"), "{err}");

    let list = a.ok(&["groups", "list"]).await;
    assert_eq!(
        header(&list),
        ["ID", "DISPLAY NAME", "DESCRIPTION", "CREATED"]
    );
    assert_eq!(list.lines().count(), 3, "{list}");

    let updated = a
        .json(&[
            "groups",
            "update",
            "Admins",
            "--description",
            "Tenant admins",
        ])
        .await;
    assert_eq!(updated["description"], "Tenant admins");
    a.ok(&["groups", "remove-member", "Passkey pilots", &id(&joni)])
        .await;
    assert!(
        values(
            &a.json(&["groups", "members", "Admins", "--transitive"])
                .await
        )
        .iter()
        .all(|m| m["id"] != joni["id"])
    );
    assert_eq!(
        a.ok(&["groups", "delete", "Passkey pilots"]).await.trim(),
        "Deleted group Passkey pilots."
    );
    let err = a.fails(&["groups", "show", "Passkey pilots"]).await;
    assert!(
        err.to_string()
            .contains("no group has the id or name 'Passkey pilots'"),
        "{err}"
    );
    let err = a
        .fails(&["groups", "show", "00000000-0000-0000-0000-000000000001"])
        .await;
    assert_eq!(err.status(), Some(404));
    t.stop().await;
}

#[tokio::test]
async fn roles_commands() {
    const GLOBAL_READER: &str = "f2ef992c-3afb-46b9-b7cf-a126ee74c451";
    let t = TestServer::start().await;
    let a = Admin::new(&t);
    let joni = a
        .json(&[
            "users",
            "create",
            "--upn",
            "joni@contoso.com",
            "--name",
            "Joni Sherman",
        ])
        .await;
    // Only a role-assignable group may hold a role; the flag is fixed when the group is made.
    let admins = a
        .ok(&["groups", "create", "--name", "Admins", "--role-assignable"])
        .await;
    assert!(
        admins
            .lines()
            .any(|l| l.starts_with("Role-assignable") && l.contains("yes")),
        "{admins}"
    );

    let roles = a.ok(&["roles", "list"]).await;
    assert_eq!(
        header(&roles),
        ["ID", "DISPLAY NAME", "PRIVILEGED", "DESCRIPTION"]
    );
    assert!(
        roles
            .lines()
            .any(|l| l.starts_with(GLOBAL_READER) && l.contains("Global Reader")),
        "{roles}"
    );

    // A role by its display name, in any case; by template id; a principal by UPN or group name.
    let assigned = a
        .ok(&[
            "roles",
            "assign",
            "--principal",
            "joni@contoso.com",
            "--role",
            "global reader",
        ])
        .await;
    assert!(
        assigned.starts_with("Assigned Global Reader to joni@contoso.com."),
        "{assigned}"
    );
    let group_assignment = a
        .json(&[
            "roles",
            "assign",
            "--principal",
            "Admins",
            "--role",
            "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9",
        ])
        .await;
    assert_eq!(group_assignment["directoryScopeId"], "/");

    let mine = a
        .json(&["roles", "assignments", "--principal", "joni@contoso.com"])
        .await;
    assert_eq!(values(&mine).len(), 1);
    assert_eq!(values(&mine)[0]["roleDefinitionId"], GLOBAL_READER);
    assert_eq!(values(&mine)[0]["principalId"], joni["id"]);
    let table = a.ok(&["roles", "assignments"]).await;
    assert_eq!(header(&table), ["ID", "ROLE", "PRINCIPAL", "SCOPE"]);
    assert!(
        table.contains("Conditional Access Administrator"),
        "role names, not ids:\n{table}"
    );

    let err = a
        .fails(&[
            "roles",
            "assign",
            "--principal",
            "joni@contoso.com",
            "--role",
            "Global Reader",
        ])
        .await;
    assert_eq!(err.status(), Some(409));
    let err = a
        .fails(&[
            "roles",
            "assign",
            "--principal",
            "joni@contoso.com",
            "--role",
            "Emperor",
        ])
        .await;
    assert!(
        err.to_string().contains("no role is named 'Emperor'"),
        "{err}"
    );

    let assignment = id(&values(&mine)[0]);
    assert_eq!(
        a.ok(&["roles", "unassign", &assignment]).await.trim(),
        format!("Removed role assignment {assignment}.")
    );
    assert_eq!(
        a.ok(&["roles", "assignments", "--principal", &id(&joni)])
            .await
            .trim(),
        "No role assignments."
    );
    assert_eq!(
        a.fails(&["roles", "unassign", &assignment]).await.status(),
        Some(404)
    );
    t.stop().await;
}

#[tokio::test]
async fn apps_commands_and_a_secret_shown_once() {
    let t = TestServer::start().await;
    let a = Admin::new(&t);

    let web = a
        .json(&[
            "apps",
            "create",
            "--name",
            "Contoso web",
            "--redirect-uri",
            "https://web.contoso.com/cb",
            "--permission",
            "User.Read.All",
        ])
        .await;
    assert_eq!(web["web"]["redirectUris"][0], "https://web.contoso.com/cb");
    assert_eq!(web["apiPermissions"][0], "User.Read.All");
    let public = a
        .ok(&[
            "apps",
            "create",
            "--name",
            "Contoso CLI",
            "--public",
            "--redirect-uri",
            "http://localhost:9000/cb",
        ])
        .await;
    assert!(public.contains("Client type:         public"), "{public}");

    let list = a.ok(&["apps", "list"]).await;
    assert_eq!(
        header(&list),
        ["ID", "APP ID", "DISPLAY NAME", "CLIENT TYPE", "SECRETS"]
    );
    assert_eq!(
        list.lines().count(),
        6,
        "header, the automation app, My Account, Admin Portal and two more:\n{list}"
    );

    // The secret is printed once, with the warning, and it works.
    let out = a
        .ok(&["apps", "add-secret", "Contoso web", "--name", "ci"])
        .await;
    assert!(out.contains("will not be shown again"), "{out}");
    let secret = out
        .lines()
        .nth(2)
        .expect("the secret on its own line")
        .trim()
        .to_string();
    let app_id = web["appId"].as_str().unwrap();
    assert!(
        t.client_token(app_id, &secret).await.is_ok(),
        "the printed secret authenticates"
    );
    let shown = a.ok(&["apps", "show", app_id]).await;
    assert!(
        shown.contains("Client secrets:") && shown.contains(" ci "),
        "{shown}"
    );
    assert!(!shown.contains(&secret), "the secret is never shown again");

    let key_id = a.json(&["apps", "show", "Contoso web"]).await["passwordCredentials"][0]["keyId"]
        .as_str()
        .unwrap()
        .to_string();
    a.ok(&["apps", "remove-secret", "Contoso web", &key_id])
        .await;
    assert!(
        t.client_token(app_id, &secret).await.is_err(),
        "a removed secret no longer works"
    );
    let err = a
        .fails(&["apps", "remove-secret", "Contoso web", &key_id])
        .await;
    assert_eq!(err.status(), Some(404));

    let scripted = a.json(&["apps", "add-secret", &id(&web)]).await;
    assert!(
        scripted["secretText"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );

    assert_eq!(
        a.ok(&["apps", "delete", "Contoso CLI"]).await.trim(),
        "Deleted application Contoso CLI."
    );
    // The automation app, My Account, Admin Portal and the public client.
    assert_eq!(values(&a.json(&["apps", "list"]).await).len(), 4);
    t.stop().await;
}

#[tokio::test]
async fn locations_commands() {
    let t = TestServer::start().await;
    let a = Admin::new(&t);

    let office = a
        .json(&[
            "locations",
            "create-ip",
            "--name",
            "Office",
            "--cidr",
            "203.0.113.0/24",
            "--cidr",
            "2001:db8::/32",
            "--trusted",
        ])
        .await;
    assert_eq!(office["@odata.type"], "#microsoft.graph.ipNamedLocation");
    assert_eq!(office["isTrusted"], true);
    assert_eq!(
        office["ipRanges"][1]["@odata.type"],
        "#microsoft.graph.iPv6CidrRange"
    );
    let created = a
        .ok(&[
            "locations",
            "create-country",
            "--name",
            "Benelux",
            "--country",
            "nl",
            "--country",
            "BE",
            "--include-unknown",
        ])
        .await;
    assert!(
        created.starts_with("Created named location Benelux."),
        "{created}"
    );

    let table = a.ok(&["locations", "list"]).await;
    assert_eq!(
        header(&table),
        [
            "ID",
            "DISPLAY NAME",
            "TYPE",
            "TRUSTED",
            "RANGES OR COUNTRIES"
        ]
    );
    assert!(
        table
            .lines()
            .any(|l| l.contains("Office") && l.contains("203.0.113.0/24, 2001:db8::/32")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.contains("Benelux") && l.contains("NL, BE, (unknown)")),
        "{table}"
    );
    assert_eq!(values(&a.json(&["locations", "list"]).await).len(), 2);

    let err = a
        .fails(&[
            "locations",
            "create-ip",
            "--name",
            "Bad",
            "--cidr",
            "not-a-range",
        ])
        .await;
    assert_eq!(err.status(), Some(400), "{err}");

    a.ok(&["locations", "delete", &id(&office)]).await;
    assert_eq!(values(&a.json(&["locations", "list"]).await).len(), 1);
    t.stop().await;
}

#[tokio::test]
async fn audit_commands() {
    let t = TestServer::start().await;
    let a = Admin::new(&t);
    a.ok(&[
        "users",
        "create",
        "--upn",
        "joni@contoso.com",
        "--name",
        "Joni Sherman",
    ])
    .await;
    a.ok(&["groups", "create", "--name", "Admins"]).await;

    // Newest first.
    let latest = a.json(&["audit", "list", "--top", "1"]).await;
    assert_eq!(values(&latest).len(), 1);
    assert_eq!(values(&latest)[0]["activityDisplayName"], "Add group");

    let today = &values(&latest)[0]["activityDateTime"].as_str().unwrap()[..10];
    let table = a
        .ok(&[
            "audit",
            "list",
            "--category",
            "UserManagement",
            "--since",
            today,
        ])
        .await;
    assert_eq!(
        header(&table),
        [
            "TIME",
            "ACTIVITY",
            "CATEGORY",
            "RESULT",
            "INITIATED BY",
            "TARGETS"
        ]
    );
    assert!(
        table
            .lines()
            .any(|l| l.contains("Add user") && l.contains("joni@contoso.com")),
        "{table}"
    );
    assert!(!table.contains("Add group"), "{table}");
    let filtered = a
        .json(&[
            "audit",
            "list",
            "--filter",
            "activityDisplayName eq 'Add group'",
        ])
        .await;
    assert!(
        values(&filtered)
            .iter()
            .all(|e| e["activityDisplayName"] == "Add group")
    );
    assert!(!values(&filtered).is_empty());

    let err = a
        .fails(&["audit", "list", "--filter", "nonsense eq 1"])
        .await;
    assert_eq!(
        (err.status(), err.code()),
        (Some(400), Some("Request_UnsupportedQuery"))
    );
    t.stop().await;
}

#[tokio::test]
async fn failures_carry_a_message_a_person_can_act_on() {
    let t = TestServer::start().await;
    let a = Admin::new(&t);

    // The server's own message, its code and the request id to quote.
    let err = a.fails(&["users", "show", "nobody@contoso.com"]).await;
    let ClientError::Api {
        status,
        ref code,
        ref message,
        ref request_id,
        ..
    } = err
    else {
        panic!("{err:?}")
    };
    assert_eq!((status, code.as_str()), (404, "Request_ResourceNotFound"));
    assert!(err.to_string().starts_with(message.as_str()), "{err}");
    assert!(request_id.is_some());
    let err = a
        .fails(&["users", "create", "--upn", "not-an-upn", "--name", "X"])
        .await;
    assert_eq!(err.status(), Some(400));

    // Wrong credentials: the token endpoint's OAuth error.
    let wrong = tempfile::tempdir().unwrap();
    let bootstrap = serde_json::json!({"url": t.url, "clientId": t.bootstrap.client_id.to_string(), "clientSecret": "wrong"});
    std::fs::write(wrong.path().join("bootstrap.json"), bootstrap.to_string()).unwrap();
    let parsed = Argv::try_parse_from([
        "portcullis",
        "users",
        "list",
        "--data-dir",
        wrong.path().to_str().unwrap(),
        "--url",
        &t.url,
    ])
    .unwrap();
    let err = cli::run(parsed.command, &mut Vec::new()).await.unwrap_err();
    assert!(
        matches!(err, ClientError::OAuth { status: 401, .. }),
        "{err:?}"
    );

    // No bootstrap.json where --data-dir points.
    let empty = tempfile::tempdir().unwrap();
    let parsed = Argv::try_parse_from([
        "portcullis",
        "users",
        "list",
        "--data-dir",
        empty.path().to_str().unwrap(),
        "--url",
        &t.url,
    ])
    .unwrap();
    let err = cli::run(parsed.command, &mut Vec::new()).await.unwrap_err();
    assert!(
        err.to_string().contains("bootstrap.json") && err.to_string().contains("--data-dir"),
        "{err}"
    );

    // A server that is not there.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let parsed = Argv::try_parse_from([
        "portcullis",
        "users",
        "list",
        "--data-dir",
        a.dir.path().to_str().unwrap(),
        "--url",
        &closed,
    ])
    .unwrap();
    let err = cli::run(parsed.command, &mut Vec::new()).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("could not reach {closed}: is the server running?")),
        "{err}"
    );
    t.stop().await;
}

#[tokio::test]
async fn logs_signins_filters_and_follows() {
    let t = TestServer::start().await;
    let admin = Admin::new(&t);
    let upn = t.bootstrap.admin_user_principal_name.clone();
    assert!(
        t.sign_in_with_pass(&t.url, &upn, "wrong-pass")
            .await
            .1
            .is_none()
    );
    assert!(
        t.sign_in_with_pass(&t.url, &upn, &t.bootstrap_pass)
            .await
            .1
            .is_some()
    );
    let table = admin.ok(&["logs", "signins"]).await;
    assert!(table.starts_with("TIME"), "{table}");
    assert!(
        table.contains("failure 50126") && table.contains("Temporary Access Pass"),
        "{table}"
    );
    let failures = admin
        .json(&["logs", "signins", "--error-code", "50126", "--user", &upn])
        .await;
    assert_eq!(values(&failures).len(), 1);
    let successes = admin
        .json(&[
            "logs",
            "signins",
            "--error-code",
            "0",
            "--ca-status",
            "notApplied",
            "--since",
            "2020-01-01",
        ])
        .await;
    assert_eq!(values(&successes).len(), 1);
    // --follow prints what there is, oldest first, then what arrives.
    let followed = admin
        .ok(&[
            "logs",
            "signins",
            "--follow",
            "--interval",
            "1",
            "--max-polls",
            "1",
            "--json",
        ])
        .await;
    let lines: Vec<Value> = followed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["status"]["errorCode"], 50126, "oldest first");
    let bad = admin
        .fails(&["logs", "signins", "--filter", "nonsense eq 1"])
        .await;
    assert!(bad.to_string().contains("nonsense"), "{bad}");
    t.stop().await;
}
