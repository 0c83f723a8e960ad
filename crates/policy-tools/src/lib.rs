//! The offline `portcullis policy` commands: `what-if`, `lint` and `analyze` on exported Graph
//! JSON, without a server or a database.
//!
//! This crate is the one place where the policy engine meets files: it reads the exports,
//! builds the sign-in the flags describe, calls the pure engine and prints the result. The main
//! binary mounts [`PolicyCommand`] as `portcullis policy …` and calls [`run`].
//!
//! Exit codes: `what-if` gives 0 after an evaluation, whatever the decision; `lint` gives 0 when
//! there is no error-level finding and 1 otherwise; `analyze` gives 0 when there is no high
//! finding and 1 otherwise; all give 2 on bad input, with a message naming the file and the
//! member (or the flag) at fault.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use portcullis_policy::analyze::{
    Analysis, AnalysisInput, Application, Directory, PersonFacts, Severity as AnalysisSeverity,
    analyze,
};
use portcullis_policy::graph::{Imported, import_any};
use portcullis_policy::lint::{DEFAULT_MAX_POLICIES, LintOptions, Severity, lint};
use portcullis_policy::{
    AuthenticationMethodMode, BlockReason, ClientAppType, Control, Decision, DevicePlatform,
    Outcome, PolicySet, RiskLevel, SatisfiedMethod, SignInContext, Target, UserAction, UserKind,
    evaluate,
};
use serde_json::{Value, json};

/// `portcullis policy …`.
// Parsed once per process: the size of the larger variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, clap::Subcommand)]
pub enum PolicyCommand {
    /// Evaluate exported policies against a described sign-in and print the per-policy trace.
    WhatIf(WhatIfArgs),
    /// Check exported policies for problems.
    Lint(LintArgs),
    /// Analyse exported policies over every sign-in they can meet: lockouts, gaps, dead and
    /// shadowed policies, each proved by a sign-in `what-if` confirms.
    Analyze(AnalyzeArgs),
}

/// The files for `analyze`.
#[derive(Debug, Clone, clap::Args)]
pub struct AnalyzeArgs {
    /// Policy files or folders of exported JSON (strengths and locations found there are used).
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
    /// Authentication strength policies (file or folder).
    #[arg(long, value_name = "PATH")]
    pub strengths: Option<PathBuf>,
    /// Named locations (file or folder).
    #[arg(long, value_name = "PATH")]
    pub locations: Option<PathBuf>,
    /// A directory to analyse against: `{"users": [{"id", "groups", "roles", "guest",
    /// "methods"}], "groups": [...], "roles": [...], "applications": [{"appId", "displayName"}]}`.
    #[arg(long, value_name = "PATH")]
    pub directory: Option<PathBuf>,
    /// Print `{"policies", "findings"}` as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The sign-in and the policies for `what-if`.
#[derive(Debug, Clone, clap::Args)]
pub struct WhatIfArgs {
    /// Policy files or folders of exported JSON (Graph shape; UTF-8 or UTF-16).
    #[arg(long, value_name = "PATH", num_args = 1.., required = true)]
    pub policies: Vec<PathBuf>,
    /// Authentication strength policies (file or folder).
    #[arg(long, value_name = "PATH")]
    pub strengths: Option<PathBuf>,
    /// Named locations (file or folder).
    #[arg(long, value_name = "PATH")]
    pub locations: Option<PathBuf>,
    /// The user's object id.
    #[arg(long, value_name = "ID")]
    pub user: String,
    /// A group the user is in (transitively); repeat for several.
    #[arg(long = "group", value_name = "ID")]
    pub groups: Vec<String>,
    /// The template id of a directory role actively assigned; repeat for several.
    #[arg(long = "role", value_name = "TEMPLATE_ID")]
    pub roles: Vec<String>,
    /// The user is a guest.
    #[arg(long)]
    pub guest: bool,
    /// The application's client id (appId).
    #[arg(long, value_name = "APP_ID", group = "target")]
    pub app: Option<String>,
    /// registerSecurityInformation or registerOrJoinDevices.
    #[arg(long, value_name = "ACTION", group = "target")]
    pub user_action: Option<String>,
    /// An authentication context, c1 to c99.
    #[arg(long, value_name = "cN", group = "target")]
    pub auth_context: Option<String>,
    /// android, iOS, windows, windowsPhone, macOS, linux or unknown.
    #[arg(long, value_name = "P", conflicts_with = "user_agent")]
    pub platform: Option<String>,
    /// A user-agent string to take the platform (and client app type) from.
    #[arg(long, value_name = "UA")]
    pub user_agent: Option<String>,
    /// browser, mobileAppsAndDesktopClients, exchangeActiveSync or other.
    #[arg(long, value_name = "TYPE")]
    pub client_app: Option<String>,
    /// The sign-in's IP address; named locations are worked out from it.
    #[arg(long, value_name = "ADDR")]
    pub ip: Option<String>,
    /// none, low, medium, high.
    #[arg(long, value_name = "L")]
    pub sign_in_risk: Option<String>,
    /// none, low, medium, high.
    #[arg(long, value_name = "L")]
    pub user_risk: Option<String>,
    /// Methods already used in the session, comma-separated authenticationMethodModes
    /// (password,sms,fido2,…); give a passkey's AAGUID as fido2:AAGUID.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub methods: Vec<String>,
    /// Print JSON in the shape of Graph's evaluate API instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The files for `lint`.
#[derive(Debug, Clone, clap::Args)]
pub struct LintArgs {
    /// Policy, strength and location files or folders.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
    /// The tenant's policy limit.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_POLICIES)]
    pub max_policies: usize,
}

/// Bad input: printed to `err`, exit code 2.
#[derive(Debug)]
struct BadInput(String);

fn bad(message: impl Into<String>) -> BadInput {
    BadInput(message.into())
}

/// Runs a command; returns the process exit code.
pub fn run(cmd: PolicyCommand, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let result = match cmd {
        PolicyCommand::WhatIf(args) => what_if(&args, out),
        PolicyCommand::Lint(args) => run_lint(&args, out),
        PolicyCommand::Analyze(args) => run_analyze(&args, out),
    };
    match result {
        Ok(code) => code,
        Err(BadInput(message)) => {
            // Nothing sensible can be done if stderr itself is gone.
            let _ = writeln!(err, "error: {message}");
            2
        }
    }
}

/// Files under a path: the path itself, or the `.json` files of a folder and its subfolders,
/// in name order so the policy order is stable.
fn json_files(path: &Path) -> Result<Vec<PathBuf>, BadInput> {
    let metadata = std::fs::metadata(path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
    if !metadata.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| bad(format!("{}: {e}", path.display())))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(|e| bad(format!("{}: {e}", path.display())))?;
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            files.extend(json_files(&entry)?);
        } else if entry
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("json"))
        {
            files.push(entry);
        }
    }
    Ok(files)
}

fn load(paths: &[&Path], into: &mut Imported) -> Result<(), BadInput> {
    for path in paths {
        for file in json_files(path)? {
            let bytes =
                std::fs::read(&file).map_err(|e| bad(format!("{}: {e}", file.display())))?;
            let imported =
                import_any(&bytes).map_err(|e| bad(format!("{}: {e}", file.display())))?;
            into.policies.extend(imported.policies);
            into.strengths.extend(imported.strengths);
            into.named_locations.extend(imported.named_locations);
        }
    }
    Ok(())
}

fn parse_known<T>(
    flag: &str,
    value: &str,
    parse: impl Fn(&str) -> Option<T>,
    expected: &str,
) -> Result<T, BadInput> {
    parse(value).ok_or_else(|| bad(format!("--{flag} `{value}`: expected {expected}")))
}

fn sign_in(args: &WhatIfArgs, set: &PolicySet) -> Result<SignInContext, BadInput> {
    let target = match (&args.app, &args.user_action, &args.auth_context) {
        (Some(app), None, None) => Target::Application(app.trim().to_owned()),
        (None, Some(action), None) => {
            let known = UserAction::parse(action.trim());
            let action = match known {
                UserAction::RegisterSecurityInformation | UserAction::RegisterOrJoinDevices => known,
                _ => UserAction::from_urn(action.trim()).ok_or_else(|| {
                    bad(format!(
                        "--user-action `{action}`: expected registerSecurityInformation or registerOrJoinDevices"
                    ))
                })?,
            };
            Target::UserAction(action)
        }
        (None, None, Some(context)) => {
            let context = context.trim();
            if !portcullis_policy::whatif::is_auth_context_id(context) {
                return Err(bad(format!(
                    "--auth-context `{context}`: expected c1 to c99"
                )));
            }
            Target::AuthenticationContext(context.to_owned())
        }
        _ => {
            return Err(bad(
                "give exactly one of --app, --user-action, --auth-context",
            ));
        }
    };
    let mut ctx = SignInContext::new(args.user.trim(), target);
    ctx.group_ids = args.groups.clone();
    ctx.role_template_ids = args.roles.clone();
    ctx.user_kind = if args.guest {
        UserKind::Guest
    } else {
        UserKind::Member
    };

    if let Some(ua) = &args.user_agent {
        let info = portcullis_useragent::parse(ua);
        ctx.platform = info.platform;
        ctx.client_app_type = info.client_app_type;
    }
    if let Some(platform) = &args.platform {
        ctx.platform = parse_known(
            "platform",
            platform,
            |p| {
                if p.eq_ignore_ascii_case("unknown") {
                    return Some(None);
                }
                let parsed = DevicePlatform::parse(p);
                matches!(
                    parsed,
                    DevicePlatform::Android
                        | DevicePlatform::IOS
                        | DevicePlatform::Windows
                        | DevicePlatform::WindowsPhone
                        | DevicePlatform::MacOS
                        | DevicePlatform::Linux
                )
                .then_some(Some(parsed))
            },
            "android, iOS, windows, windowsPhone, macOS, linux or unknown",
        )?;
    }
    if let Some(client) = &args.client_app {
        ctx.client_app_type = parse_known(
            "client-app",
            client,
            |c| {
                let parsed = ClientAppType::parse(c);
                matches!(
                    parsed,
                    ClientAppType::Browser
                        | ClientAppType::MobileAppsAndDesktopClients
                        | ClientAppType::ExchangeActiveSync
                        | ClientAppType::OtherClients
                )
                .then_some(parsed)
            },
            "browser, mobileAppsAndDesktopClients, exchangeActiveSync or other",
        )?;
    }
    if let Some(ip) = &args.ip {
        let ip: IpAddr = ip
            .trim()
            .parse()
            .map_err(|_| bad(format!("--ip `{ip}`: not an IP address")))?;
        ctx.ip_address = Some(ip);
        ctx.named_locations = set.locations_for(ip, None);
    }
    let risk = |flag: &str, value: &Option<String>| -> Result<RiskLevel, BadInput> {
        match value {
            None => Ok(RiskLevel::None),
            Some(v) => parse_known(
                flag,
                v,
                |l| {
                    let parsed = RiskLevel::parse(l);
                    matches!(
                        parsed,
                        RiskLevel::None
                            | RiskLevel::Low
                            | RiskLevel::Medium
                            | RiskLevel::High
                            | RiskLevel::Hidden
                    )
                    .then_some(parsed)
                },
                "none, low, medium, high or hidden",
            ),
        }
    };
    ctx.sign_in_risk = risk("sign-in-risk", &args.sign_in_risk)?;
    ctx.user_risk = risk("user-risk", &args.user_risk)?;
    for method in args
        .methods
        .iter()
        .map(|m| m.trim())
        .filter(|m| !m.is_empty())
    {
        let method = parse_method(method).map_err(|e| bad(format!("--methods {e}")))?;
        ctx.methods.push(method);
    }
    Ok(ctx)
}

/// `mode` or `fido2:AAGUID`, as `--methods` and directory files write a method.
fn parse_method(method: &str) -> Result<SatisfiedMethod, String> {
    let (mode, aaguid) = match method.split_once(':') {
        Some((mode, aaguid)) => (mode, Some(aaguid.trim().to_owned())),
        None => (method, None),
    };
    let mode = AuthenticationMethodMode::parse(mode.trim());
    if !mode.is_known() || mode == AuthenticationMethodMode::UnknownFutureValue {
        return Err(format!(
            "`{method}`: not an authenticationMethodModes value"
        ));
    }
    if aaguid.is_some() && mode != AuthenticationMethodMode::Fido2 {
        return Err(format!("`{method}`: only fido2 takes an AAGUID"));
    }
    Ok(SatisfiedMethod { mode, aaguid })
}

fn what_if(args: &WhatIfArgs, out: &mut dyn Write) -> Result<i32, BadInput> {
    let mut imported = Imported::default();
    let policy_paths: Vec<&Path> = args.policies.iter().map(PathBuf::as_path).collect();
    load(&policy_paths, &mut imported)?;
    let extra: Vec<&Path> = args
        .strengths
        .iter()
        .chain(&args.locations)
        .map(PathBuf::as_path)
        .collect();
    load(&extra, &mut imported)?;
    let set = PolicySet::new(
        imported.policies,
        imported.strengths,
        imported.named_locations,
    );
    let ctx = sign_in(args, &set)?;
    let decision = evaluate(&ctx, &set);
    let written = if args.json {
        let report = json_report(&decision, &set);
        serde_json::to_writer_pretty(&mut *out, &report)
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(out))
    } else {
        text_report(&decision, &set, out)
    };
    written.map_err(|e| bad(format!("writing the report: {e}")))?;
    Ok(0)
}

fn control_json(control: &Control) -> Value {
    match control.strength() {
        Some(strength) => json!({
            "type": "authenticationStrength",
            "id": strength.id,
            "displayName": strength.name(),
        }),
        None => json!({"type": control_type(control), "displayName": control.label()}),
    }
}

fn control_type(control: &Control) -> &'static str {
    match control {
        Control::Block => "block",
        Control::Mfa | Control::AuthenticationStrength(_) => "authenticationStrength",
        Control::UnknownAuthenticationStrength(_) => "unknownAuthenticationStrength",
        Control::CompliantDevice => "compliantDevice",
        Control::DomainJoinedDevice => "domainJoinedDevice",
        Control::ApprovedApplication => "approvedApplication",
        Control::CompliantApplication => "compliantApplication",
        Control::PasswordChange => "passwordChange",
        Control::RiskRemediation => "riskRemediation",
        Control::TermsOfUse(_) => "termsOfUse",
        Control::CustomControl(_) => "customControl",
        Control::Unsupported(_) => "unsupported",
    }
}

fn block_reason(reason: &BlockReason) -> String {
    match reason {
        BlockReason::BlockControl => "Block access".to_owned(),
        BlockReason::UnmetControls(controls) => format!(
            "cannot be met: {}",
            controls
                .iter()
                .map(Control::label)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        BlockReason::UnevaluableCondition { condition, field } => {
            format!("{condition}: cannot evaluate {field}; failing closed")
        }
    }
}

/// `{"decision", "requirements", "policies": [{id, displayName, state, policyApplies, result,
/// analysisReasons, enforcedGrantControls}]}` with Graph's spellings.
pub fn json_report(decision: &Decision, set: &PolicySet) -> Value {
    let requirements: Vec<Value> = match &decision.outcome {
        Outcome::Requirements { requirements } => requirements
            .iter()
            .map(|r| json!({"anyOf": r.alternatives.iter().map(control_json).collect::<Vec<_>>(), "policyIds": r.policy_ids}))
            .collect(),
        _ => Vec::new(),
    };
    let policies: Vec<Value> = decision
        .trace
        .iter()
        .enumerate()
        .map(|(index, t)| {
            let mut entry = json!({
                "id": t.policy_id(),
                "displayName": t.display_name(),
                "state": t.policy.state.as_str(),
                "policyApplies": t.applies,
                "result": t.result.as_str(),
                "analysisReasons": t.analysis_reason().as_str(),
                "enforcedGrantControls": set.configured_controls(index).iter().map(Control::label).collect::<Vec<_>>(),
            });
            if let Some(failure) = &t.failed_condition {
                entry["reason"] = Value::String(failure.to_string());
            }
            entry
        })
        .collect();
    let mut report = json!({
        "decision": decision.outcome.name(),
        "requirements": requirements,
        "conditionalAccessStatus": decision.status.as_str(),
        "policies": policies,
    });
    if let Outcome::Block { policies } = &decision.outcome {
        report["blockingPolicies"] = policies
            .iter()
            .map(|b| json!({"id": b.policy_id, "displayName": b.display_name, "reason": block_reason(&b.reason)}))
            .collect();
    }
    report
}

fn text_report(decision: &Decision, set: &PolicySet, out: &mut dyn Write) -> std::io::Result<()> {
    match &decision.outcome {
        Outcome::Grant => writeln!(out, "Decision: grant")?,
        Outcome::Block { policies } => {
            writeln!(out, "Decision: block")?;
            for b in policies {
                writeln!(
                    out,
                    "  blocked by \"{}\" ({}): {}",
                    b.display_name,
                    b.policy_id,
                    block_reason(&b.reason)
                )?;
            }
        }
        Outcome::Requirements { requirements } => {
            writeln!(out, "Decision: requirements")?;
            for (n, r) in requirements.iter().enumerate() {
                let options: Vec<String> = r.alternatives.iter().map(Control::label).collect();
                writeln!(
                    out,
                    "  {}. {} (policies: {})",
                    n + 1,
                    options.join(" or "),
                    r.policy_ids.join(", ")
                )?;
            }
        }
    }
    writeln!(out)?;
    writeln!(out, "Policies that apply:")?;
    let mut any = false;
    for (index, t) in decision.trace.iter().enumerate().filter(|(_, t)| t.applies) {
        any = true;
        let controls: Vec<String> = set
            .configured_controls(index)
            .iter()
            .map(Control::label)
            .collect();
        let controls = if controls.is_empty() {
            "no grant controls".to_owned()
        } else {
            controls.join(", ")
        };
        writeln!(
            out,
            "  [{}] \"{}\" ({}): {}",
            t.result,
            t.display_name(),
            t.policy_id(),
            controls
        )?;
        if let Some(failure) = &t.failed_condition {
            writeln!(out, "      {failure}")?;
        }
        if t.strength_superseded {
            writeln!(
                out,
                "      strength set aside: a register-security-info policy's strength takes precedence"
            )?;
        }
    }
    if !any {
        writeln!(out, "  (none)")?;
    }
    writeln!(out)?;
    writeln!(out, "Policies that do not apply:")?;
    let mut any = false;
    for t in decision.trace.iter().filter(|t| !t.applies) {
        any = true;
        let reason = t
            .failed_condition
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        writeln!(
            out,
            "  [{}] \"{}\" ({}): {reason}",
            t.result,
            t.display_name(),
            t.policy_id()
        )?;
    }
    if !any {
        writeln!(out, "  (none)")?;
    }
    Ok(())
}

fn run_lint(args: &LintArgs, out: &mut dyn Write) -> Result<i32, BadInput> {
    let mut imported = Imported::default();
    let paths: Vec<&Path> = args.paths.iter().map(PathBuf::as_path).collect();
    load(&paths, &mut imported)?;
    let set = PolicySet::new(
        imported.policies,
        imported.strengths,
        imported.named_locations,
    );
    let findings = lint(
        &set,
        &LintOptions {
            max_policies: args.max_policies,
        },
    );
    let write = |out: &mut dyn Write| -> std::io::Result<()> {
        for finding in &findings {
            writeln!(out, "{finding}")?;
        }
        let errors = findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count();
        writeln!(
            out,
            "{} policies, {} findings ({errors} errors)",
            set.policies().len(),
            findings.len()
        )
    };
    write(out).map_err(|e| bad(format!("writing the report: {e}")))?;
    Ok(if findings.iter().any(|f| f.severity == Severity::Error) {
        1
    } else {
        0
    })
}

/// Reads a directory file (see [`AnalyzeArgs::directory`]), naming the member at fault.
fn read_directory(path: &Path) -> Result<Directory, BadInput> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| bad(format!("{file}: {e}")))?;
    let text =
        portcullis_policy::graph::decode_text(&bytes).map_err(|e| bad(format!("{file}: {e}")))?;
    let value: Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("{file}: not JSON: {e}")))?;
    let at = |member: &str, message: &str| bad(format!("{file}: {member}: {message}"));
    let Value::Object(root) = &value else {
        return Err(at(
            "",
            "expected an object with users, groups and applications",
        ));
    };
    let strings = |v: Option<&Value>, member: &str| -> Result<Vec<String>, BadInput> {
        match v {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    // A list of ids, or of objects with an `id` (as Graph lists them).
                    item.as_str()
                        .or_else(|| item.get("id").and_then(Value::as_str))
                        .map(str::to_owned)
                        .ok_or_else(|| at(&format!("{member}[{i}]"), "expected an id"))
                })
                .collect(),
            Some(_) => Err(at(member, "expected a list")),
        }
    };
    let mut directory = Directory {
        group_ids: strings(root.get("groups"), "groups")?,
        role_template_ids: match root.get("roles") {
            None | Some(Value::Null) => None,
            some => Some(strings(some, "roles")?),
        },
        ..Directory::default()
    };
    let users = match root.get("users") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(items)) => items.as_slice(),
        Some(_) => return Err(at("users", "expected a list")),
    };
    for (i, user) in users.iter().enumerate() {
        let member = format!("users[{i}]");
        let id = user
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.trim().is_empty())
            .ok_or_else(|| at(&format!("{member}.id"), "every user needs an id"))?;
        let guest = match (user.get("guest"), user.get("userType")) {
            (Some(Value::Bool(b)), _) => *b,
            (_, Some(Value::String(t))) => t.eq_ignore_ascii_case("guest"),
            (None, None) | (Some(Value::Null), _) => false,
            _ => return Err(at(&format!("{member}.guest"), "expected true or false")),
        };
        let methods = strings(user.get("methods"), &format!("{member}.methods"))?
            .iter()
            .map(|m| parse_method(m.trim()).map_err(|e| at(&format!("{member}.methods"), &e)))
            .collect::<Result<Vec<_>, _>>()?;
        directory.people.push(PersonFacts {
            user_id: id.trim().to_owned(),
            group_ids: strings(user.get("groups"), &format!("{member}.groups"))?,
            role_template_ids: strings(user.get("roles"), &format!("{member}.roles"))?,
            guest,
            methods,
        });
    }
    if let Some(apps) = root.get("applications").filter(|v| !v.is_null()) {
        let Value::Array(apps) = apps else {
            return Err(at("applications", "expected a list"));
        };
        for (i, app) in apps.iter().enumerate() {
            let app_id = app
                .get("appId")
                .and_then(Value::as_str)
                .ok_or_else(|| at(&format!("applications[{i}].appId"), "expected a string"))?;
            directory.applications.push(Application {
                app_id: app_id.trim().to_owned(),
                display_name: app
                    .get("displayName")
                    .and_then(Value::as_str)
                    .unwrap_or(app_id)
                    .to_owned(),
            });
        }
    }
    Ok(directory)
}

fn run_analyze(args: &AnalyzeArgs, out: &mut dyn Write) -> Result<i32, BadInput> {
    let mut imported = Imported::default();
    let paths: Vec<&Path> = args
        .paths
        .iter()
        .chain(&args.strengths)
        .chain(&args.locations)
        .map(PathBuf::as_path)
        .collect();
    load(&paths, &mut imported)?;
    let directory = args.directory.as_deref().map(read_directory).transpose()?;
    let set = PolicySet::new(
        imported.policies,
        imported.strengths,
        imported.named_locations,
    );
    let analysis = analyze(&AnalysisInput {
        directory: directory.as_ref(),
        ..AnalysisInput::new(&set)
    });
    let written = if args.json {
        serde_json::to_writer_pretty(&mut *out, &analysis.to_json())
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(out))
    } else {
        analysis_text(&analysis, out)
    };
    written.map_err(|e| bad(format!("writing the report: {e}")))?;
    Ok(if analysis.has_high() { 1 } else { 0 })
}

fn analysis_text(analysis: &Analysis, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "{:<8} {:<20} FINDING", "SEVERITY", "KIND")?;
    for finding in &analysis.findings {
        writeln!(
            out,
            "{:<8} {:<20} {}",
            finding.severity.as_str(),
            finding.kind.as_str(),
            finding.message
        )?;
        if !finding.policies.is_empty() {
            let names: Vec<String> = finding
                .policies
                .iter()
                .map(|p| format!("\"{}\" ({})", p.display_name, p.id))
                .collect();
            writeln!(out, "{:<29} policies: {}", "", names.join(", "))?;
        }
        writeln!(
            out,
            "{:<29} witness: portcullis policy what-if {} -> {}",
            "",
            finding.witness.what_if_args().join(" "),
            finding.decision.name()
        )?;
    }
    let high = analysis
        .findings
        .iter()
        .filter(|f| f.severity == AnalysisSeverity::High)
        .count();
    let stats = &analysis.stats;
    writeln!(
        out,
        "{} policies, {} findings ({high} high); {} person classes x {} targets x {} condition classes = {} sign-in classes, {} evaluations",
        analysis.policies,
        analysis.findings.len(),
        stats.person_classes,
        stats.targets,
        stats.condition_classes,
        stats.combinations,
        stats.evaluations
    )
}
