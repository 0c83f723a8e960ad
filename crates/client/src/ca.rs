//! `portcullis ca`: Conditional Access commands that need the server. Today `ca replay`, which
//! asks `POST …/conditionalAccess/replay` what a candidate policy set would have done to the
//! logged sign-ins, and prints the flips as a table (or the API's JSON with `--json`).
//!
//! Must never: change a policy (replay only reads), or read the candidate files as anything
//! but Graph JSON sent on as it is — the server judges the policies, as it would on import.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::AdminClient;
use crate::cli::ConnectionArgs;
use crate::error::ClientError;
use crate::table::Table;

#[derive(Debug, Args)]
pub struct CaArgs {
    #[command(subcommand)]
    pub command: CaCommand,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

#[derive(Debug, Subcommand)]
pub enum CaCommand {
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

/// The policies in the files and folders given, in the order given (a folder's `.json` files
/// by name).
fn read_policies(paths: &[PathBuf]) -> Result<Vec<Value>, ClientError> {
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
    let mut policies = Vec::new();
    for file in files {
        let value: Value = serde_json::from_str(&read_text(&file)?)
            .map_err(|e| ClientError::Usage(format!("{}: not JSON: {e}", file.display())))?;
        match value {
            Value::Array(items) => policies.extend(items),
            Value::Object(mut map) if map.get("value").is_some_and(Value::is_array) => {
                if let Some(Value::Array(items)) = map.remove("value") {
                    policies.extend(items);
                }
            }
            other @ Value::Object(_) => policies.push(other),
            _ => {
                return Err(ClientError::Usage(format!(
                    "{}: expected a policy, an array of policies or a {{\"value\":[…]}} export",
                    file.display()
                )));
            }
        }
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

pub(crate) async fn run(
    client: &AdminClient,
    cmd: CaCommand,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<(), ClientError> {
    match cmd {
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
                serde_json::to_writer_pretty(&mut *out, &report).map_err(std::io::Error::from)?;
                writeln!(out)?;
            } else {
                print_report(out, &report)?;
            }
            Ok(())
        }
    }
}
