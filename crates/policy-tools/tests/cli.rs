//! The offline commands, driven through `run` as the main binary drives them.

use std::path::PathBuf;

use clap::Parser;
use portcullis_policy_tools::{PolicyCommand, run};
use serde_json::Value;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: PolicyCommand,
}

const ADMINS: &str = "5f1b5b5e-0a6b-4c1e-9d7a-2b3c4d5e6f70";
const APP: &str = "9a1b2c3d-0000-4000-8000-00000000a001";
const AUTHENTICATOR_IOS: &str = "90a3ccdf-635c-4729-a248-9b709135078f";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policy/tests/fixtures/entra-export")
}

fn fixture(name: &str) -> String {
    fixtures().join(name).display().to_string()
}

fn invoke(args: &[&str]) -> (i32, String, String) {
    let cli = Cli::try_parse_from(std::iter::once("policy").chain(args.iter().copied()))
        .expect("arguments parse");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(cli.command, &mut out, &mut err);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

fn what_if(extra: &[&str]) -> (i32, String, String) {
    let policies = fixture("policies.json");
    let strengths = fixture("authenticationStrengthPolicies.json");
    let locations = fixture("namedLocations.json");
    let mut args = vec![
        "what-if",
        "--policies",
        &policies,
        "--strengths",
        &strengths,
        "--locations",
        &locations,
        "--user",
        "11111111-1111-4111-8111-111111111111",
        "--group",
        ADMINS,
    ];
    args.extend_from_slice(extra);
    invoke(&args)
}

#[test]
fn tap_on_windows_needs_phishing_resistant_mfa_as_text() {
    let (code, out, err) = what_if(&[
        "--app",
        APP,
        "--platform",
        "windows",
        "--methods",
        "temporaryAccessPassOneTime",
        "--ip",
        "192.0.2.7",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("Decision: requirements\n"), "{out}");
    assert!(out.contains("Phishing resistant MFA"), "{out}");
    let applies = out.find("Policies that apply:").unwrap();
    let not_apply = out.find("Policies that do not apply:").unwrap();
    let enforcement = out.find("\"Passkey test: enforcement\"").unwrap();
    let platforms = out.find("\"Passkey test: unsupported platforms\"").unwrap();
    assert!(
        applies < enforcement && enforcement < not_apply && not_apply < platforms,
        "{out}"
    );
    assert!(out.contains("devicePlatform: excluded"), "{out}");
}

#[test]
fn android_user_agent_is_blocked_as_json() {
    let ua = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36";
    let passkey = format!("fido2:{AUTHENTICATOR_IOS}");
    let (code, out, err) = what_if(&[
        "--app",
        APP,
        "--user-agent",
        ua,
        "--methods",
        &passkey,
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["decision"], "block");
    assert_eq!(report["requirements"], serde_json::json!([]));
    let policies = report["policies"].as_array().unwrap();
    assert_eq!(policies.len(), 4);
    let blocker = &policies[1];
    assert_eq!(
        blocker["displayName"],
        "Passkey test: unsupported platforms"
    );
    assert_eq!(blocker["state"], "enabled");
    assert_eq!(blocker["policyApplies"], true);
    assert_eq!(blocker["result"], "failure");
    assert_eq!(blocker["analysisReasons"], "notSet");
    assert_eq!(
        blocker["enforcedGrantControls"],
        serde_json::json!(["Block"])
    );
    assert_eq!(policies[0]["result"], "success");
    assert_eq!(policies[3]["result"], "notEnabled");
    assert_eq!(policies[3]["analysisReasons"], "policyNotEnabled");
    assert_eq!(
        report["blockingPolicies"][0]["id"],
        "c2e8a4b3-5d6f-4071-9b82-a3c4d5e6f708"
    );
}

#[test]
fn a_folder_of_exports_is_read() {
    let folder = fixtures().display().to_string();
    let args = [
        "what-if",
        "--policies",
        &folder,
        "--user",
        "11111111-1111-4111-8111-111111111111",
        "--group",
        ADMINS,
        "--user-action",
        "registerSecurityInformation",
        "--platform",
        "windows",
        "--methods",
        "password,fido2",
        "--json",
    ];
    let (code, out, err) = invoke(&args);
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["policies"].as_array().unwrap().len(), 6);
    // The insider-risk beta policy cannot be evaluated and fails closed.
    assert_eq!(report["decision"], "block");
    let insider = report["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["displayName"] == "Block elevated insider risk")
        .unwrap();
    assert_eq!(insider["analysisReasons"], "invalidCondition");
}

#[test]
fn bad_input_names_the_file_and_field() {
    let dir = std::env::temp_dir().join(format!("portcullis-policy-tools-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(
        &bad,
        r#"{"value":[{"state":"enabled","conditions":{"users":{"includeUsers":"All"}}}]}"#,
    )
    .unwrap();
    let bad = bad.display().to_string();
    let (code, out, err) = invoke(&["what-if", "--policies", &bad, "--user", "u", "--app", APP]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(
        err.contains("bad.json") && err.contains("value[0].conditions.users.includeUsers"),
        "{err}"
    );
    let (code, _, err) = invoke(&["lint", &bad]);
    assert_eq!(code, 2);
    assert!(err.contains("bad.json"), "{err}");
    let missing = dir.join("missing.json").display().to_string();
    let (code, _, err) = invoke(&[
        "what-if",
        "--policies",
        &missing,
        "--user",
        "u",
        "--app",
        APP,
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("missing.json"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_flags_name_the_flag() {
    for (flag, value) in [
        ("--platform", "chromeOS"),
        ("--client-app", "carrierPigeon"),
        ("--ip", "1.2.3"),
        ("--sign-in-risk", "extreme"),
        ("--methods", "magic"),
        ("--methods", "sms:1234"),
    ] {
        let (code, _, err) = what_if(&["--app", APP, flag, value]);
        assert_eq!(code, 2, "{flag} {value}");
        assert!(err.contains(flag), "{err}");
    }
    let (code, _, err) = what_if(&["--auth-context", "c0"]);
    assert_eq!(code, 2);
    assert!(err.contains("--auth-context"), "{err}");
    let (code, _, err) = what_if(&["--user-action", "doSomething"]);
    assert_eq!(code, 2);
    assert!(err.contains("--user-action"), "{err}");
}

#[test]
fn clap_requires_exactly_one_target() {
    let two = Cli::try_parse_from([
        "policy",
        "what-if",
        "--policies",
        "x",
        "--user",
        "u",
        "--app",
        "a",
        "--auth-context",
        "c1",
    ]);
    assert!(two.is_err());
    let (code, _, err) = invoke(&[
        "what-if",
        "--policies",
        &fixture("policies.json"),
        "--user",
        "u",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("--app"), "{err}");
}

#[test]
fn lint_reports_findings_and_exit_codes() {
    let (code, out, _) = invoke(&[
        "lint",
        &fixture("policies.json"),
        &fixture("authenticationStrengthPolicies.json"),
        &fixture("namedLocations.json"),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("info [unsupported-field]") && out.contains("templateId"),
        "{out}"
    );
    let (code, out, _) = invoke(&["lint", &fixtures().display().to_string()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("error [unsupported-field] \"Block elevated insider risk\""),
        "{out}"
    );
    let (code, out, _) = invoke(&["lint", "--max-policies", "3", &fixture("policies.json")]);
    assert_eq!(code, 1);
    assert!(out.contains("too-many-policies"), "{out}");
}

/// A folder of its own for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("portcullis-analyze-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";
const BREAK_GLASS: &str = "bbbbbbbb-0000-4000-8000-00000000b001";

fn write_policies(dir: &std::path::Path, policies: Value) -> String {
    let path = dir.join("policies.json");
    std::fs::write(&path, serde_json::json!({"value": policies}).to_string()).unwrap();
    path.display().to_string()
}

fn ca_policy(id: &str, name: &str, users: Value, grant: Value) -> Value {
    serde_json::json!({
        "id": id, "displayName": name, "state": "enabled",
        "conditions": {"users": users, "applications": {"includeApplications": ["All"]},
                       "clientAppTypes": ["all"]},
        "grantControls": grant
    })
}

#[test]
fn analyze_proves_each_finding_with_a_sign_in_what_if_confirms() {
    let dir = scratch("witness");
    let policies = write_policies(
        &dir,
        serde_json::json!([
            ca_policy(
                "block-all",
                "Block everyone except break-glass",
                serde_json::json!({"includeUsers": ["All"], "excludeUsers": [BREAK_GLASS]}),
                serde_json::json!({"operator": "OR", "builtInControls": ["block"]})
            ),
            ca_policy(
                "admins-mfa",
                "Admins: MFA",
                serde_json::json!({"includeRoles": [GLOBAL_ADMIN]}),
                serde_json::json!({"operator": "OR", "builtInControls": ["mfa"]})
            ),
            ca_policy(
                "staff-mfa",
                "Staff: MFA",
                serde_json::json!({"includeGroups": [ADMINS], "excludeGroups": [ADMINS]}),
                serde_json::json!({"operator": "OR", "builtInControls": ["mfa"]})
            ),
        ]),
    );
    let (code, out, err) = invoke(&["analyze", &policies, "--json"]);
    assert_eq!(code, 1, "a lockout of Global Administrators is high: {err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["policies"], 3);
    let findings = report["findings"].as_array().unwrap();
    let kinds: Vec<&str> = findings
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"lockout") && kinds.contains(&"deadPolicy"),
        "{kinds:?}"
    );
    let lockout = findings.iter().find(|f| f["kind"] == "lockout").unwrap();
    assert_eq!(lockout["severity"], "high");
    assert_eq!(lockout["policies"][0]["id"], "block-all");
    assert_eq!(
        lockout["policies"][0]["displayName"],
        "Block everyone except break-glass"
    );

    // Every witness, given to what-if flag for flag, gets the finding's decision.
    for finding in findings {
        let w = &finding["witness"];
        let mut args: Vec<String> = vec![
            "what-if".into(),
            "--policies".into(),
            policies.clone(),
            "--json".into(),
            "--user".into(),
            w["user"].as_str().unwrap().into(),
        ];
        for g in w["groups"].as_array().unwrap() {
            args.extend(["--group".into(), g.as_str().unwrap().into()]);
        }
        for r in w["roles"].as_array().unwrap() {
            args.extend(["--role".into(), r.as_str().unwrap().into()]);
        }
        if w["guest"] == true {
            args.push("--guest".into());
        }
        for (key, flag) in [
            ("app", "--app"),
            ("userAction", "--user-action"),
            ("authContext", "--auth-context"),
            ("platform", "--platform"),
            ("clientApp", "--client-app"),
            ("ip", "--ip"),
            ("signInRisk", "--sign-in-risk"),
            ("userRisk", "--user-risk"),
        ] {
            if let Some(value) = w[key].as_str() {
                args.extend([flag.into(), value.into()]);
            }
        }
        let methods: Vec<&str> = w["methods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap())
            .collect();
        if !methods.is_empty() {
            args.extend(["--methods".into(), methods.join(",")]);
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = invoke(&refs);
        assert_eq!(code, 0, "{err}");
        let what_if: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            what_if["decision"], finding["decision"],
            "{}: {args:?}",
            finding["message"]
        );
    }

    // As text: one line per finding and the witness as a command line.
    let (code, out, _) = invoke(&["analyze", &policies]);
    assert_eq!(code, 1);
    assert!(out.contains("lockout"), "{out}");
    assert!(
        out.contains("witness: portcullis policy what-if --user"),
        "{out}"
    );
    assert!(out.contains("3 policies"), "{out}");
}

#[test]
fn analyze_exits_0_when_nothing_is_high_and_2_on_bad_input() {
    let dir = scratch("clean");
    let policies = write_policies(
        &dir,
        serde_json::json!([
            ca_policy(
                "mfa-all",
                "Everyone: MFA",
                serde_json::json!({"includeUsers": ["All"]}),
                serde_json::json!({"operator": "OR", "builtInControls": ["mfa"]})
            ),
            ca_policy(
                "admins-pr",
                "Admins: phishing-resistant",
                serde_json::json!({"includeRoles": [GLOBAL_ADMIN]}),
                serde_json::json!({"builtInControls": [], "authenticationStrength": {"id": "00000000-0000-0000-0000-000000000004"}})
            ),
        ]),
    );
    let (code, out, err) = invoke(&["analyze", &policies, "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["severity"] != "high")
    );

    // A directory whose user has no id is refused, naming the member.
    let directory = dir.join("directory.json");
    std::fs::write(&directory, r#"{"users": [{"groups": []}]}"#).unwrap();
    let directory = directory.display().to_string();
    let (code, out, err) = invoke(&["analyze", &policies, "--directory", &directory]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(err.contains("users[0].id"), "{err}");
    // A method that does not exist is refused too.
    let directory_path = dir.join("directory.json");
    std::fs::write(
        &directory_path,
        r#"{"users": [{"id": "u", "methods": ["carrierPigeon"]}]}"#,
    )
    .unwrap();
    let (code, _, err) = invoke(&["analyze", &policies, "--directory", &directory]);
    assert_eq!(code, 2);
    assert!(err.contains("carrierPigeon"), "{err}");
    // A missing file is refused.
    let (code, _, err) = invoke(&["analyze", "/nonexistent/policies.json"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/policies.json"), "{err}");
}

#[test]
fn analyze_with_a_directory_reports_what_it_does_not_hold() {
    let dir = scratch("directory");
    let policies = write_policies(
        &dir,
        serde_json::json!([ca_policy(
            "mfa-all",
            "Everyone: MFA",
            serde_json::json!({"includeUsers": ["All"], "excludeGroups": [ADMINS]}),
            serde_json::json!({"operator": "OR", "builtInControls": ["mfa"]})
        ),]),
    );
    let directory = dir.join("directory.json");
    std::fs::write(
        &directory,
        serde_json::json!({
            "users": [{"id": "admin", "roles": [GLOBAL_ADMIN], "methods": ["password", format!("fido2:{AUTHENTICATOR_IOS}")]}],
            "groups": [],
            "applications": [{"appId": APP, "displayName": "Payroll"}]
        })
        .to_string(),
    )
    .unwrap();
    let directory = directory.display().to_string();
    let (_, out, err) = invoke(&["analyze", &policies, "--directory", &directory, "--json"]);
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out}{err}"));
    let unresolved = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "unresolvedReference")
        .expect("the excluded group is not in the directory");
    assert!(unresolved["message"].as_str().unwrap().contains(ADMINS));
    assert_eq!(unresolved["witness"]["groups"][0], ADMINS);
}
