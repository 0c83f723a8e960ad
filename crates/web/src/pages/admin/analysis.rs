//! Conditional Access → Analysis: the analyzer run on the tenant's policies against the
//! directory, its findings grouped by severity, each with its policies, its witness sign-in in
//! words and What-If's decision for it, and a link that asks the What-If page the same
//! question. Reading it changes nothing; it needs what reading the policies needs.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use portcullis_core::directory::authz::{ReadPolicies, ReadUserMethods, ReadUsers};
use portcullis_core::directory::roles::BUILT_IN_ROLES;
use portcullis_core::guard::analysis::terms::{
    ANY_OTHER_APP, ANYONE_ELSE, AuthenticationMethodMode, Control, Finding, FindingKind, Outcome,
    RiskLevel, SatisfiedMethod, Severity, Target, UserAction,
};
use portcullis_core::guard::analysis::{AnalysisReport, Names};
use serde_json::{Value, json};

use super::policy_form::{CLIENT_APPS, PLATFORMS};
use super::{PageResult, Portal};
use crate::{AppState, PortalState};

pub fn router() -> Router<AppState> {
    Router::new().route("/admin/conditional-access/analysis", get(analysis))
}

async fn analysis(State(state): State<Arc<PortalState>>, portal: Portal) -> PageResult {
    let grant = portal.grant::<ReadPolicies>("Conditional Access analysis")?;
    // Witnesses are real people with their registered methods.
    let methods = portal.grant::<ReadUserMethods>("Conditional Access analysis")?;
    let report = crate::graph::analysis::run(
        &state.analyzer,
        &grant,
        &methods,
        &state.conditional_access,
        b"",
    )
    .await?;
    // The What-If page asks for reading users too; a link it would refuse is not offered.
    let mut context = view(&report, portal.may::<ReadUsers>());
    context["subnav"] = json!({ "current": "analysis" });
    portal.page("admin/ca_analysis.html", "conditional-access", context)
}

const SEVERITIES: &[(Severity, &str)] = &[
    (Severity::High, "High"),
    (Severity::Medium, "Medium"),
    (Severity::Low, "Low"),
    (Severity::Info, "Information"),
];

fn kind_label(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::Lockout => "Lockout",
        FindingKind::Gap => "Gap",
        FindingKind::DeadPolicy => "Policy that never applies",
        FindingKind::ShadowedPolicy => "Policy that changes nothing",
        FindingKind::UnexcludedBlock => "Block without an emergency-access exclusion",
        FindingKind::UnresolvedReference => "Unresolved reference",
        FindingKind::Baseline => "Baseline",
    }
}

/// The page's context: counts per severity and the findings grouped by it, most severe first.
fn view(report: &AnalysisReport, what_if: bool) -> Value {
    let analysis = &report.analysis;
    let counts: Vec<Value> = SEVERITIES
        .iter()
        .map(|(severity, label)| {
            json!({
                "severity": severity.as_str(),
                "label": label,
                "count": analysis.findings.iter().filter(|f| f.severity == *severity).count(),
            })
        })
        .collect();
    let groups: Vec<Value> = SEVERITIES
        .iter()
        .filter_map(|(severity, label)| {
            let findings: Vec<Value> = analysis
                .findings
                .iter()
                .filter(|f| f.severity == *severity)
                .map(|f| finding(f, &report.names, what_if))
                .collect();
            (!findings.is_empty()).then(
                || json!({ "severity": severity.as_str(), "label": label, "findings": findings }),
            )
        })
        .collect();
    json!({
        "policies": analysis.policies,
        "total": analysis.findings.len(),
        "counts": counts,
        "groups": groups,
    })
}

fn finding(f: &Finding, names: &Names, what_if: bool) -> Value {
    let w = &f.witness;
    let mut witness = vec![
        ("Who", who(&w.user, w.guest, names)),
        ("Signs in to", target(&w.target, names)),
        (
            "Device platform",
            w.platform.as_ref().map_or_else(
                || "Unknown (the browser does not say)".to_owned(),
                |p| label(PLATFORMS, p.as_str()),
            ),
        ),
        ("Client app", label(CLIENT_APPS, w.client_app.as_str())),
        (
            "IP address",
            w.ip.map_or_else(|| "None".to_owned(), |ip| ip.to_string()),
        ),
        ("Presents", methods(&w.methods)),
    ];
    if !w.groups.is_empty() {
        witness.insert(
            1,
            (
                "Groups",
                w.groups
                    .iter()
                    .map(|g| names.groups.get(g).cloned().unwrap_or_else(|| g.clone()))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        );
    }
    if !w.roles.is_empty() {
        witness.insert(
            1,
            (
                "Roles",
                w.roles
                    .iter()
                    .map(|r| role(r))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        );
    }
    for (what, risk) in [
        ("Sign-in risk", &w.sign_in_risk),
        ("User risk", &w.user_risk),
    ] {
        if *risk != RiskLevel::None {
            witness.push((what, risk.to_string()));
        }
    }
    json!({
        "kind": f.kind.as_str(),
        "kindLabel": kind_label(f.kind),
        "message": named(&f.message, names),
        "policies": f.policies.iter().map(|p| json!({"id": p.id, "displayName": p.display_name})).collect::<Vec<_>>(),
        "witness": witness.into_iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
        "decision": decision(&f.decision),
        "whatIf": if what_if { what_if_link(f, names) } else { None },
    })
}

/// One finding in a line, for the policy editor's review: its severity, kind and message.
pub(super) fn summary(f: &Finding, names: &Names) -> Value {
    json!({
        "severity": f.severity.as_str(),
        "severityLabel": SEVERITIES.iter().find(|(s, _)| *s == f.severity).map_or("", |(_, l)| l),
        "kindLabel": kind_label(f.kind),
        "message": named(&f.message, names),
    })
}

/// Why an analysis could not run, in a person's words.
pub(super) fn reason(e: &portcullis_core::Error) -> String {
    match e {
        portcullis_core::Error::Invalid { message, .. } => message.clone(),
        _ => "an internal error (the server's log has it)".to_owned(),
    }
}

/// The analyzer names people and groups by id; administrators know them by name.
fn named(message: &str, names: &Names) -> String {
    let mut out = message.to_owned();
    for (id, name) in names.users.iter().chain(&names.groups) {
        if out.contains(id.as_str()) {
            out = out.replace(id.as_str(), name);
        }
    }
    out
}

fn who(user: &str, guest: bool, names: &Names) -> String {
    let person = match names.users.get(user) {
        Some(upn) => upn.clone(),
        None if user == ANYONE_ELSE => "Anyone the policies do not name".to_owned(),
        None => user.to_owned(),
    };
    if guest {
        format!("{person} (a guest)")
    } else {
        person
    }
}

fn target(target: &Target, names: &Names) -> String {
    match target {
        Target::Application(app) if app == ANY_OTHER_APP => {
            "Any application no policy names".to_owned()
        }
        Target::Application(app) => match names.applications.get(app) {
            Some(name) => format!("{name} ({app})"),
            None => format!("Application {app}"),
        },
        Target::UserAction(UserAction::RegisterSecurityInformation) => {
            "Registering security information".to_owned()
        }
        Target::UserAction(UserAction::RegisterOrJoinDevices) => {
            "Registering or joining devices".to_owned()
        }
        Target::UserAction(other) => format!("User action {other}"),
        Target::AuthenticationContext(context) => format!("Authentication context {context}"),
    }
}

fn label(options: &[(&str, &str)], value: &str) -> String {
    options
        .iter()
        .find(|(v, _)| *v == value)
        .map_or_else(|| value.to_owned(), |(_, l)| (*l).to_owned())
}

fn role(template_id: &str) -> String {
    BUILT_IN_ROLES
        .iter()
        .find(|r| r.template_id.to_string().eq_ignore_ascii_case(template_id))
        .map_or_else(|| template_id.to_owned(), |r| r.display_name.to_owned())
}

fn methods(methods: &[SatisfiedMethod]) -> String {
    if methods.is_empty() {
        return "Nothing".to_owned();
    }
    methods
        .iter()
        .map(|m| {
            let word = match m.mode {
                AuthenticationMethodMode::Password => "Password",
                AuthenticationMethodMode::SoftwareOath => "Authenticator app code",
                AuthenticationMethodMode::Fido2 => "Passkey",
                AuthenticationMethodMode::TemporaryAccessPassOneTime => {
                    "Temporary Access Pass (one use)"
                }
                AuthenticationMethodMode::TemporaryAccessPassMultiUse => {
                    "Temporary Access Pass (several uses)"
                }
                ref other => other.as_str(),
            };
            match &m.aaguid {
                Some(aaguid) => format!("{word} (model {aaguid})"),
                None => word.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What-If's decision, in the portal's words.
fn decision(outcome: &Outcome) -> Value {
    let (text, class) = match outcome {
        Outcome::Grant => ("Access granted".to_owned(), "state-on"),
        Outcome::Block { .. } => ("Access blocked".to_owned(), "state-bad"),
        Outcome::Requirements { requirements } => {
            let asked: Vec<String> = requirements
                .iter()
                .map(|r| {
                    r.alternatives
                        .iter()
                        .map(|c| match c {
                            Control::Mfa => "multifactor authentication".to_owned(),
                            Control::AuthenticationStrength(s) => s
                                .display_name
                                .clone()
                                .unwrap_or_else(|| format!("strength {}", s.id)),
                            Control::UnknownAuthenticationStrength(id) => {
                                format!("strength {id}, which does not exist")
                            }
                            _ => "a control Portcullis cannot satisfy".to_owned(),
                        })
                        .collect::<Vec<_>>()
                        .join(" or ")
                })
                .collect();
            (
                format!("Asked for {}", asked.join(", and ")),
                "state-report",
            )
        }
    };
    json!({ "name": outcome.name(), "text": text, "class": class })
}

/// The What-If page's address for the witness, when What-If can ask it: a real person, and a
/// question its form can put (methods and risk are not on it; What-If shows the policies).
fn what_if_link(f: &Finding, names: &Names) -> Option<String> {
    let w = &f.witness;
    let upn = names.users.get(&w.user)?;
    let mut query: Vec<(&str, String)> = vec![("user", upn.clone())];
    match &w.target {
        Target::Application(app) if app != ANY_OTHER_APP => {
            query.push(("target", "applications".into()));
            query.push(("app", app.clone()));
        }
        Target::UserAction(action) => {
            query.push(("target", "userAction".into()));
            query.push(("userAction", action.to_string()));
        }
        Target::AuthenticationContext(context) => {
            query.push(("target", "authenticationContext".into()));
            query.push(("authContext", context.clone()));
        }
        Target::Application(_) => return None,
    }
    if let Some(platform) = &w.platform {
        query.push(("platform", platform.to_string()));
    }
    query.push(("clientApp", w.client_app.to_string()));
    if let Some(ip) = w.ip {
        query.push(("ip", ip.to_string()));
    }
    Some(format!(
        "/admin/conditional-access/what-if?{}",
        serde_urlencoded::to_string(&query).ok()?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::guard::analysis::terms::{
        Analysis, AnalysisStats, ClientAppType, DevicePlatform, PolicyRef, Witness,
    };

    fn report(findings: Vec<Finding>) -> AnalysisReport {
        let mut names = Names::default();
        names.users.insert("u-1".into(), "alice@contoso.com".into());
        names.applications.insert("app-1".into(), "Payroll".into());
        AnalysisReport {
            analysis: Analysis {
                policies: 1,
                findings,
                stats: AnalysisStats::default(),
            },
            names,
        }
    }

    fn blocked_alice() -> Finding {
        Finding {
            kind: FindingKind::Lockout,
            severity: Severity::High,
            message: "Payroll cannot be reached by people like u-1".into(),
            policies: vec![PolicyRef {
                id: "p-1".into(),
                display_name: "Block Payroll".into(),
            }],
            witness: Witness {
                user: "u-1".into(),
                groups: vec![],
                roles: vec![],
                guest: false,
                target: Target::Application("app-1".into()),
                platform: Some(DevicePlatform::Windows),
                client_app: ClientAppType::Browser,
                ip: Some("203.0.113.9".parse().unwrap()),
                methods: vec![SatisfiedMethod::new(AuthenticationMethodMode::Password)],
                sign_in_risk: RiskLevel::None,
                user_risk: RiskLevel::None,
            },
            decision: Outcome::Block { policies: vec![] },
        }
    }

    #[test]
    fn findings_are_counted_and_grouped_by_severity_with_people_by_name() {
        let page = view(&report(vec![blocked_alice()]), true);
        assert_eq!(page["total"], 1);
        assert_eq!(page["counts"][0]["count"], 1);
        assert_eq!(page["counts"][1]["count"], 0);
        let groups = page["groups"].as_array().unwrap();
        assert_eq!(groups.len(), 1, "only severities with findings: {page}");
        let shown = &groups[0]["findings"][0];
        assert_eq!(
            shown["message"],
            "Payroll cannot be reached by people like alice@contoso.com"
        );
        assert_eq!(shown["decision"]["text"], "Access blocked");
        assert_eq!(shown["witness"][0], json!(["Who", "alice@contoso.com"]));
        assert_eq!(
            shown["whatIf"],
            "/admin/conditional-access/what-if?user=alice%40contoso.com&target=applications&app=app-1&platform=windows&clientApp=browser&ip=203.0.113.9"
        );
    }

    #[test]
    fn no_what_if_link_for_a_reader_who_cannot_use_it_or_a_person_who_is_no_one() {
        let page = view(&report(vec![blocked_alice()]), false);
        assert!(page["groups"][0]["findings"][0]["whatIf"].is_null());
        let mut anyone = blocked_alice();
        anyone.witness.user = ANYONE_ELSE.into();
        let page = view(&report(vec![anyone]), true);
        assert!(page["groups"][0]["findings"][0]["whatIf"].is_null());
    }

    #[test]
    fn no_findings_is_said_in_words_with_every_count_at_zero() {
        let mut context = view(&report(Vec::new()), true);
        context["subnav"] = json!({ "current": "analysis" });
        context["frame"] = json!({ "nav": [], "me": { "upn": "alice@contoso.com" } });
        let html = crate::pages::TEMPLATES
            .get_template("admin/ca_analysis.html")
            .unwrap()
            .render(&context)
            .unwrap();
        assert!(html.contains("id=\"analysis-empty\""), "{html}");
        assert!(html.contains("No findings:"));
        for severity in ["high", "medium", "low", "info"] {
            assert!(
                html.contains(&format!("<li id=\"count-{severity}\"><strong>0</strong>")),
                "{html}"
            );
        }
        let mut found = view(&report(vec![blocked_alice()]), true);
        found["subnav"] = json!({ "current": "analysis" });
        found["frame"] = json!({ "nav": [], "me": { "upn": "alice@contoso.com" } });
        let html = crate::pages::TEMPLATES
            .get_template("admin/ca_analysis.html")
            .unwrap()
            .render(&found)
            .unwrap();
        assert!(!html.contains("id=\"analysis-empty\""));
        assert!(
            html.contains("<li id=\"count-high\"><strong>1</strong>"),
            "{html}"
        );
    }
}
