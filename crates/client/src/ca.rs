//! `portcullis ca`: Conditional Access through the admin API. `list`, `show`, `import`,
//! `export`, `state` and `delete` manage the tenant's policies as Entra's exports carry them;
//! `replay` asks `POST …/conditionalAccess/replay` what a candidate policy set would have done
//! to the logged sign-ins, and prints the flips.
//!
//! Must never: read policy files as anything but Graph JSON sent on as it is — the server
//! judges the policies (an import only sets the state it was asked to, and drops what a read
//! adds); import a policy enforced unless `--keep-state` says so; or change anything in `replay`.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::AdminClient;
use crate::cli::ConnectionArgs;
use crate::client::segment;
use crate::error::ClientError;
use crate::table::{Table, write_record};

#[derive(Debug, Args)]
pub struct CaArgs {
    #[command(subcommand)]
    pub command: CaCommand,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// What `ca state` sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StateArg {
    /// enabled: enforced
    On,
    /// disabled
    Off,
    /// enabledForReportingButNotEnforced: evaluated and logged, never enforced
    ReportOnly,
}

impl StateArg {
    /// Graph's `conditionalAccessPolicyState` value.
    pub fn graph(self) -> &'static str {
        match self {
            StateArg::On => "enabled",
            StateArg::Off => "disabled",
            StateArg::ReportOnly => REPORT_ONLY,
        }
    }
}

const REPORT_ONLY: &str = "enabledForReportingButNotEnforced";
const POLICIES: &str = "identity/conditionalAccess/policies";
/// The server's list of references that do not resolve, on a policy as read.
const UNRESOLVED: &str = "portcullisUnresolvedReferences";

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// List the tenant's Conditional Access policies
    List,
    /// Show one policy
    Show {
        /// The policy's id
        id: String,
    },
    /// Import policies as Entra exports them: files or folders of .json files, UTF-8 or UTF-16,
    /// each file one policy, an array, or a {"value":[…]} list. Each policy is imported in
    /// report-only unless --keep-state; the report says per policy what was kept, what is
    /// unsupported (kept but not evaluated), which references do not resolve here and what the
    /// server refused. Nothing is sent when a file cannot be read.
    Import {
        #[arg(value_name = "PATH", required = true, num_args = 1..)]
        paths: Vec<PathBuf>,
        /// Keep each policy's state as the file has it, instead of importing it report-only
        #[arg(long)]
        keep_state: bool,
    },
    /// Write every policy to DIR as <display-name>-<id>.json, which `ca import` reads back
    Export {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Turn a policy on (enabled), off (disabled) or to report-only. The lockout guard refuses
    /// a change that would lock the administrators out, and says why
    State {
        /// The policy's id
        id: String,
        #[arg(value_enum)]
        state: StateArg,
    },
    /// Delete a policy
    Delete {
        /// The policy's id
        id: String,
    },
    /// What a changed policy set would have done to the logged sign-ins: the sign-ins whose
    /// outcome changes (grant, requirements, block), by user and application
    Replay {
        /// Policy files or folders of them (Graph JSON: one policy, an array, or a {"value":[…]}
        /// export). Each replaces the tenant's policy with the same id, or is added [default:
        /// the tenant's policies as they are]
        #[arg(long = "policies", value_name = "PATH", num_args = 1..)]
        policies: Vec<PathBuf>,
        /// The files are the whole candidate set, instead of changes to the tenant's
        #[arg(long, requires = "policies")]
        whole_set: bool,
        /// Remove this policy from the candidate (repeat for several)
        #[arg(long = "delete", value_name = "ID", conflicts_with = "whole_set")]
        delete: Vec<String>,
        /// Replay the last N days of the log
        #[arg(long, value_name = "N", default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=3650))]
        days: u32,
        /// List at most N changed sign-ins (the counts cover them all)
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10000))]
        top: Option<u32>,
    },
}

/// Text of a policy file: UTF-8 (with or without a byte-order mark) or UTF-16 with one, as
/// Entra's exports come.
fn read_text(path: &Path) -> Result<String, ClientError> {
    let bytes = std::fs::read(path)
        .map_err(|e| ClientError::Usage(format!("cannot read {}: {e}", path.display())))?;
    let utf16 = |rest: &[u8], little: bool| {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| {
                if little {
                    u16::from_le_bytes([c[0], c[1]])
                } else {
                    u16::from_be_bytes([c[0], c[1]])
                }
            })
            .collect();
        String::from_utf16(&units)
            .map_err(|_| ClientError::Usage(format!("{}: not valid UTF-16", path.display())))
    };
    match bytes.as_slice() {
        [0xEF, 0xBB, 0xBF, rest @ ..] => String::from_utf8(rest.to_vec()),
        [0xFF, 0xFE, rest @ ..] => return utf16(rest, true),
        [0xFE, 0xFF, rest @ ..] => return utf16(rest, false),
        _ => String::from_utf8(bytes),
    }
    .map_err(|_| ClientError::Usage(format!("{}: not valid UTF-8", path.display())))
}

/// The `.json` files the paths name, in the order given (a folder's by name).
fn policy_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ClientError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| ClientError::Usage(format!("cannot read {}: {e}", path.display())))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension()
                        .is_some_and(|x| x.eq_ignore_ascii_case("json"))
                })
                .collect();
            inside.sort();
            files.extend(inside);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// The policies in one file: one policy, an array of them or a `{"value":[…]}` export.
fn read_policy_file(file: &Path) -> Result<Vec<Value>, ClientError> {
    let value: Value = serde_json::from_str(&read_text(file)?)
        .map_err(|e| ClientError::Usage(format!("{}: not JSON: {e}", file.display())))?;
    match value {
        Value::Array(items) => Ok(items),
        Value::Object(mut map) if map.get("value").is_some_and(Value::is_array) => {
            match map.remove("value") {
                Some(Value::Array(items)) => Ok(items),
                _ => Ok(Vec::new()),
            }
        }
        other @ Value::Object(_) => Ok(vec![other]),
        _ => Err(ClientError::Usage(format!(
            "{}: expected a policy, an array of policies or a {{\"value\":[…]}} export",
            file.display()
        ))),
    }
}

/// The policies in the files and folders given, in the order given.
fn read_policies(paths: &[PathBuf]) -> Result<Vec<Value>, ClientError> {
    let mut policies = Vec::new();
    for file in policy_files(paths)? {
        policies.extend(read_policy_file(&file)?);
    }
    Ok(policies)
}

/// The request body for the options given.
pub fn replay_body(
    policies: &[PathBuf],
    whole_set: bool,
    delete: &[String],
    days: u32,
    top: Option<u32>,
) -> Result<Value, ClientError> {
    let mut body = json!({ "days": days });
    if let Some(top) = top {
        body["top"] = json!(top);
    }
    let read = read_policies(policies)?;
    if whole_set {
        body["policies"] = Value::Array(read);
    } else if !read.is_empty() || !delete.is_empty() {
        let mut changes: Vec<Value> = read
            .into_iter()
            .map(|policy| {
                let id = policy.get("id").cloned().unwrap_or(Value::Null);
                json!({ "id": id, "policy": policy })
            })
            .collect();
        changes.extend(
            delete
                .iter()
                .map(|id| json!({ "id": id, "policy": Value::Null })),
        );
        body["changes"] = Value::Array(changes);
    }
    Ok(body)
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn count(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or_default()
}

/// The report as people read it: a summary line, the flipped sign-ins, and the counts.
fn print_report(out: &mut (dyn Write + Send), report: &Value) -> std::io::Result<()> {
    writeln!(
        out,
        "Replayed {} sign-ins from {} to {} against {} policies: {} would change; {} skipped (logged without a replay context).",
        count(report, "evaluated"),
        text(report, "from"),
        text(report, "to"),
        count(report, "candidatePolicies"),
        count(report, "changed"),
        count(report, "skipped"),
    )?;
    let sign_ins = report["signIns"].as_array().cloned().unwrap_or_default();
    if sign_ins.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    let mut table = Table::new(&["TIME", "USER", "APPLICATION", "BEFORE", "AFTER", "POLICIES"]);
    for s in &sign_ins {
        let policies = s["policies"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|p| text(p, "displayName"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        table.row([
            text(s, "createdDateTime"),
            text(s, "userPrincipalName"),
            text(s, "appId"),
            text(s, "before"),
            text(s, "after"),
            policies,
        ]);
    }
    table.write(out)?;
    if report["signInsTruncated"].as_bool() == Some(true) {
        writeln!(
            out,
            "(only the first {} are listed; --top lists more)",
            sign_ins.len()
        )?;
    }
    let tallies = |out: &mut (dyn Write + Send), key: &str, header: &str, name: &str| {
        let mut table = Table::new(&[
            header,
            "CHANGED",
            "OF",
            "NOW BLOCKED",
            "NOW CHALLENGED",
            "NOW GRANTED",
        ]);
        for t in report[key].as_array().into_iter().flatten() {
            table.row([
                text(t, name),
                count(t, "changed").to_string(),
                count(t, "evaluated").to_string(),
                count(t, "nowBlocked").to_string(),
                count(t, "nowChallenged").to_string(),
                count(t, "nowGranted").to_string(),
            ]);
        }
        writeln!(out)?;
        table.write(out)
    };
    tallies(out, "byUser", "USER", "userPrincipalName")?;
    tallies(out, "byApplication", "APPLICATION", "appId")?;
    Ok(())
}

/// What became of one policy of an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Stored, in this state.
    Imported { id: String, state: String },
    /// The server refused it with this message.
    Refused { message: String },
}

/// One policy of an import, as the report shows it.
#[derive(Debug, Clone)]
pub struct ImportedPolicy {
    pub file: PathBuf,
    pub display_name: String,
    pub outcome: ImportOutcome,
    /// Fields kept but not evaluated (a condition that fails closed, a control that cannot be
    /// met, a session control not enforced).
    pub unsupported: Vec<String>,
    /// `property id` of each reference that does not resolve in this tenant.
    pub unresolved: Vec<String>,
}

impl ImportedPolicy {
    fn to_json(&self) -> Value {
        let mut v = json!({
            "file": self.file.display().to_string(),
            "displayName": self.display_name,
            "unsupported": self.unsupported,
            "unresolved": self.unresolved,
        });
        match &self.outcome {
            ImportOutcome::Imported { id, state } => {
                v["result"] = json!("imported");
                v["id"] = json!(id);
                v["state"] = json!(state);
            }
            ImportOutcome::Refused { message } => {
                v["result"] = json!("refused");
                v["message"] = json!(message);
            }
        }
        v
    }
}

/// The fields of a policy this server keeps without evaluating them, by Portcullis' own
/// engine (descriptive ones such as `templateId` left out: they change nothing).
fn unsupported_fields(policy: &Value) -> Vec<String> {
    let Ok(bytes) = serde_json::to_vec(policy) else {
        return Vec::new();
    };
    match portcullis_policy::graph::import_policies(&bytes) {
        Ok(parsed) => parsed
            .iter()
            .flat_map(|p| p.unsupported_fields())
            .filter(|f| f.effect != portcullis_policy::model::UnsupportedEffect::Informational)
            .map(|f| f.path)
            .collect(),
        // The server says what is wrong with it.
        Err(_) => Vec::new(),
    }
}

/// The unresolved references of a policy as read, `property id` each.
fn unresolved(policy: &Value) -> Vec<String> {
    policy[UNRESOLVED]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|r| format!("{} {}", text(r, "property"), text(r, "id")))
                .collect()
        })
        .unwrap_or_default()
}

/// Imports each policy of the files (read in full first: a file that cannot be read stops the
/// import before anything is sent).
async fn import(
    client: &AdminClient,
    paths: &[PathBuf],
    keep_state: bool,
) -> Result<Vec<ImportedPolicy>, ClientError> {
    let mut read = Vec::new();
    for file in policy_files(paths)? {
        let policies = read_policy_file(&file)?;
        read.push((file, policies));
    }
    let mut report = Vec::new();
    for (file, policies) in read {
        for mut policy in policies {
            if let Value::Object(map) = &mut policy {
                // What a read adds is not part of the policy.
                map.remove("@odata.context");
                map.remove(UNRESOLVED);
                if !keep_state {
                    map.insert("state".into(), json!(REPORT_ONLY));
                }
            }
            let display_name = text(&policy, "displayName");
            let unsupported = unsupported_fields(&policy);
            let created = client
                .request(
                    reqwest::Method::POST,
                    POLICIES,
                    &[("portcullisImport", "true".to_string())],
                    Some(&policy),
                )
                .await;
            let (outcome, unresolved) = match created {
                Ok(created) => {
                    let id = text(&created, "id");
                    let stored = client.get(&format!("{POLICIES}/{}", segment(&id))).await?;
                    (
                        ImportOutcome::Imported {
                            id,
                            state: text(&stored, "state"),
                        },
                        unresolved(&stored),
                    )
                }
                Err(ClientError::Api {
                    status, message, ..
                }) if (400..500).contains(&status) => {
                    (ImportOutcome::Refused { message }, Vec::new())
                }
                Err(other) => return Err(other),
            };
            report.push(ImportedPolicy {
                file: file.clone(),
                display_name,
                outcome,
                unsupported,
                unresolved,
            });
        }
    }
    Ok(report)
}

fn print_import(
    out: &mut (dyn Write + Send),
    report: &[ImportedPolicy],
    keep_state: bool,
) -> std::io::Result<()> {
    let mut table = Table::new(&["FILE", "POLICY", "RESULT", "DETAIL"]);
    for p in report {
        let file = p
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (result, mut detail) = match &p.outcome {
            ImportOutcome::Imported { state, .. } => {
                (format!("imported ({})", state_word(state)), Vec::new())
            }
            ImportOutcome::Refused { message } => ("refused".to_string(), vec![message.clone()]),
        };
        if !p.unsupported.is_empty() {
            detail.push(format!(
                "unsupported (kept, not evaluated): {}",
                p.unsupported.join(", ")
            ));
        }
        if !p.unresolved.is_empty() {
            detail.push(format!("unresolved: {}", p.unresolved.join(", ")));
        }
        if detail.is_empty() {
            detail.push("kept as it is".to_string());
        }
        table.row([file, p.display_name.clone(), result, detail.join("; ")]);
    }
    table.write(out)?;
    let imported = report
        .iter()
        .filter(|p| matches!(p.outcome, ImportOutcome::Imported { .. }))
        .count();
    writeln!(
        out,
        "\nImported {imported} of {} policies{}; {} refused.",
        report.len(),
        if keep_state {
            " in the states their files give"
        } else {
            " in report-only (--keep-state keeps the states the files give)"
        },
        report.len() - imported
    )
}

/// `enabledForReportingButNotEnforced` → `report-only`, as `ca state` names it.
fn state_word(state: &str) -> &str {
    match state {
        "enabled" => "on",
        "disabled" => "off",
        REPORT_ONLY => "report-only",
        other => other,
    }
}

/// A file name from a display name: lower-case letters and digits, runs of anything else one
/// `-`, at most 60 characters.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
        if out.len() >= 60 {
            break;
        }
    }
    let out = out.trim_end_matches('-');
    if out.is_empty() {
        "policy".to_string()
    } else {
        out.to_string()
    }
}

/// A policy as `ca export` writes it: what a read adds removed.
fn exported(mut policy: Value) -> Value {
    if let Value::Object(map) = &mut policy {
        map.remove("@odata.context");
        map.remove(UNRESOLVED);
    }
    policy
}

fn policy_table(items: &[Value]) -> Table {
    let mut table = Table::new(&["ID", "DISPLAY NAME", "STATE", "MODIFIED"]);
    for p in items {
        let modified = match text(p, "modifiedDateTime") {
            m if m.is_empty() => text(p, "createdDateTime"),
            m => m,
        };
        table.row([
            text(p, "id"),
            text(p, "displayName"),
            state_word(&text(p, "state")).to_string(),
            modified,
        ]);
    }
    table
}

fn joined(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| match x {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn write_policy(out: &mut (dyn Write + Send), p: &Value) -> std::io::Result<()> {
    let strength = p
        .pointer("/grantControls/authenticationStrength/displayName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    write_record(
        out,
        &[
            ("ID", text(p, "id")),
            ("Display name", text(p, "displayName")),
            ("State", state_word(&text(p, "state")).to_string()),
            ("Users", joined(p, "/conditions/users/includeUsers")),
            (
                "Excluded users",
                joined(p, "/conditions/users/excludeUsers"),
            ),
            ("Groups", joined(p, "/conditions/users/includeGroups")),
            (
                "Excluded groups",
                joined(p, "/conditions/users/excludeGroups"),
            ),
            ("Roles", joined(p, "/conditions/users/includeRoles")),
            (
                "Applications",
                joined(p, "/conditions/applications/includeApplications"),
            ),
            (
                "Grant controls",
                joined(p, "/grantControls/builtInControls"),
            ),
            ("Authentication strength", strength),
            ("Unresolved", unresolved(p).join(", ")),
            ("Created", text(p, "createdDateTime")),
            ("Modified", text(p, "modifiedDateTime")),
        ],
    )
}

fn print_json(out: &mut (dyn Write + Send), value: &Value) -> Result<(), ClientError> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(std::io::Error::from)?;
    writeln!(out)?;
    Ok(())
}

pub(crate) async fn run(
    client: &AdminClient,
    cmd: CaCommand,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<(), ClientError> {
    match cmd {
        CaCommand::List => {
            let items = client.list_all(POLICIES).await?;
            if json {
                return print_json(out, &json!({ "value": items }));
            }
            if items.is_empty() {
                writeln!(out, "No Conditional Access policies.")?;
            } else {
                policy_table(&items).write(out)?;
            }
            Ok(())
        }
        CaCommand::Show { id } => {
            let policy = client.get(&format!("{POLICIES}/{}", segment(&id))).await?;
            if json {
                return print_json(out, &policy);
            }
            write_policy(out, &policy)?;
            Ok(())
        }
        CaCommand::Import { paths, keep_state } => {
            let report = import(client, &paths, keep_state).await?;
            if json {
                let items: Vec<Value> = report.iter().map(ImportedPolicy::to_json).collect();
                print_json(out, &json!({ "value": items }))?;
            } else {
                print_import(out, &report, keep_state)?;
            }
            let refused = report
                .iter()
                .filter(|p| matches!(p.outcome, ImportOutcome::Refused { .. }))
                .count();
            if refused > 0 {
                return Err(ClientError::PartlyRefused(format!(
                    "the server refused {refused} of {} policies (see above).",
                    report.len()
                )));
            }
            Ok(())
        }
        CaCommand::Export { dir } => {
            let items = client.list_all(POLICIES).await?;
            std::fs::create_dir_all(&dir)
                .map_err(|e| ClientError::Usage(format!("cannot create {}: {e}", dir.display())))?;
            let mut written = Vec::new();
            for policy in items {
                let policy = exported(policy);
                let name = format!(
                    "{}-{}.json",
                    slug(&text(&policy, "displayName")),
                    slug(&text(&policy, "id"))
                );
                let path = dir.join(&name);
                let mut body =
                    serde_json::to_string_pretty(&policy).map_err(std::io::Error::from)?;
                body.push('\n');
                std::fs::write(&path, body).map_err(|e| {
                    ClientError::Usage(format!("cannot write {}: {e}", path.display()))
                })?;
                written.push(json!({
                    "id": text(&policy, "id"),
                    "displayName": text(&policy, "displayName"),
                    "file": path.display().to_string(),
                }));
            }
            if json {
                return print_json(out, &json!({ "value": written }));
            }
            for w in &written {
                writeln!(out, "{}", text(w, "file"))?;
            }
            writeln!(
                out,
                "Exported {} policies to {}.",
                written.len(),
                dir.display()
            )?;
            Ok(())
        }
        CaCommand::State { id, state } => {
            let path = format!("{POLICIES}/{}", segment(&id));
            client
                .patch(&path, &json!({ "state": state.graph() }))
                .await?;
            let policy = client.get(&path).await?;
            if json {
                return print_json(out, &policy);
            }
            writeln!(
                out,
                "Policy '{}' is now {} ({}).",
                text(&policy, "displayName"),
                state_word(&text(&policy, "state")),
                text(&policy, "state")
            )?;
            Ok(())
        }
        CaCommand::Delete { id } => {
            client
                .delete(&format!("{POLICIES}/{}", segment(&id)))
                .await?;
            if !json {
                writeln!(out, "Deleted policy {id}.")?;
            }
            Ok(())
        }
        CaCommand::Replay {
            policies,
            whole_set,
            delete,
            days,
            top,
        } => {
            let body = replay_body(&policies, whole_set, &delete, days, top)?;
            let report = client
                .post("identity/conditionalAccess/replay", &body)
                .await?;
            if json {
                print_json(out, &report)?;
            } else {
                print_report(out, &report)?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_file_names() {
        assert_eq!(slug("Require MFA for admins!"), "require-mfa-for-admins");
        assert_eq!(slug("  --Block / legacy  "), "block-legacy");
        assert_eq!(slug("€€€"), "policy");
        assert!(slug(&"x".repeat(200)).len() <= 60);
    }

    #[test]
    fn states_map_to_graph() {
        assert_eq!(StateArg::On.graph(), "enabled");
        assert_eq!(StateArg::Off.graph(), "disabled");
        assert_eq!(StateArg::ReportOnly.graph(), REPORT_ONLY);
        assert_eq!(state_word(REPORT_ONLY), "report-only");
    }

    #[test]
    fn unsupported_fields_leave_out_descriptive_ones() {
        let policy = json!({
            "displayName": "x",
            "state": "enabled",
            "templateId": "abc",
            "conditions": {
                "users": {"includeUsers": ["All"]},
                "applications": {"includeApplications": ["All"]},
                "clientAppTypes": ["all"],
                "insiderRiskLevels": "elevated"
            },
            "grantControls": {"operator": "OR", "builtInControls": ["block"]}
        });
        assert_eq!(
            unsupported_fields(&policy),
            ["conditions.insiderRiskLevels"]
        );
    }
}
