//! The Graph What-If request and response shapes.

use portcullis_policy::whatif::{
    DirectoryFacts, EvaluateRequest, what_if_response, what_if_results,
};
use portcullis_policy::{AnalysisReason, DevicePlatform, Target, UserAction, UserKind, evaluate};

use crate::support::*;

fn request(json: &str) -> EvaluateRequest {
    EvaluateRequest::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

fn admin() -> DirectoryFacts {
    DirectoryFacts {
        group_ids: vec![ADMINS.to_owned()],
        role_template_ids: vec![],
        user_kind: UserKind::Member,
    }
}

#[test]
fn graph_request_becomes_a_sign_in() {
    let tenant = design_tenant();
    let body = format!(
        r##"{{"signInIdentity":{{"@odata.type":"#microsoft.graph.userSignIn","userId":"{USER}"}},
            "signInContext":{{"@odata.type":"#microsoft.graph.applicationContext","includeApplications":["{APP}"]}},
            "signInConditions":{{"devicePlatform":"android","clientAppType":"browser","signInRiskLevel":"none",
                                 "userRiskLevel":"none","country":"US","ipAddress":"203.0.113.9",
                                 "deviceInfo":{{"isCompliant":false,"trustType":"Workplace","extensionAttribute1":"SAW"}}}},
            "appliedPoliciesOnly":true}}"##
    );
    let req = request(&body);
    let ctx = req.to_sign_in_context(admin(), &tenant).unwrap();
    assert_eq!(ctx.target, Target::Application(APP.to_owned()));
    assert_eq!(ctx.platform, Some(DevicePlatform::Android));
    assert_eq!(
        ctx.named_locations,
        ["3c4d5e6f-7081-4923-a4b5-c6d7e8f90a1b"]
    );
    let device = ctx.device.clone().unwrap();
    assert_eq!(device.is_compliant, Some(false));
    assert_eq!(device.extension_attributes[0].as_deref(), Some("SAW"));

    let decision = evaluate(&ctx, &tenant);
    let results = what_if_results(&decision, req.applied_policies_only);
    let names: Vec<&str> = results
        .iter()
        .map(|r| r.policy.display_name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "Passkey test: enforcement",
            "Passkey test: unsupported platforms"
        ]
    );
    assert!(
        results
            .iter()
            .all(|r| r.policy_applies && r.analysis_reasons == AnalysisReason::NotSet)
    );

    let body = what_if_response(
        &decision,
        false,
        Some("https://id.example/graph/v1.0/$metadata"),
    );
    let value = body["value"].as_array().unwrap();
    assert_eq!(value.len(), 4);
    assert_eq!(value[0]["policyApplies"], true);
    assert_eq!(value[0]["analysisReasons"], "notSet");
    assert_eq!(value[0]["displayName"], "Passkey test: enforcement");
    assert_eq!(value[3]["analysisReasons"], "policyNotEnabled");
    // The report-only MFA policy excludes trusted locations; the office is trusted.
    assert_eq!(value[2]["policyApplies"], false);
    assert_eq!(value[2]["analysisReasons"], "location");
    assert!(
        body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("#Collection(microsoft.graph.whatIfAnalysisResult)")
    );
}

#[test]
fn user_action_and_auth_context_targets() {
    let tenant = design_tenant();
    let action = request(&format!(
        r##"{{"signInIdentity":{{"@odata.type":"#microsoft.graph.userSignIn","userId":"{USER}"}},
            "signInContext":{{"@odata.type":"#microsoft.graph.userActionContext","userAction":"registerSecurityInformation"}},
            "signInConditions":{{}}}}"##
    ));
    let ctx = action.to_sign_in_context(admin(), &tenant).unwrap();
    assert_eq!(
        ctx.target,
        Target::UserAction(UserAction::RegisterSecurityInformation)
    );
    assert_eq!(ctx.platform, None, "no platform given: only `all` matches");
    let auth = request(&format!(
        r##"{{"signInIdentity":{{"@odata.type":"#microsoft.graph.userSignIn","userId":"{USER}"}},
            "signInContext":{{"@odata.type":"#microsoft.graph.authContext","authenticationContextValue":"c37"}}}}"##
    ));
    assert_eq!(
        auth.to_sign_in_context(admin(), &tenant).unwrap().target,
        Target::AuthenticationContext("c37".into())
    );
}

#[test]
fn bad_requests_name_the_member() {
    let tenant = design_tenant();
    let cases = [
        (
            format!(
                r##"{{"signInIdentity":{{"@odata.type":"#microsoft.graph.userSignIn","userId":"{USER}"}},"signInContext":{{"includeApplications":["{APP}"]}},"signInConditions":{{"ipAddress":"999.1.1.1"}}}}"##
            ),
            "signInConditions.ipAddress",
        ),
        (
            format!(
                r##"{{"signInIdentity":{{"@odata.type":"#microsoft.graph.servicePrincipalSignIn","servicePrincipalId":"x"}},"signInContext":{{"includeApplications":["{APP}"]}}}}"##
            ),
            "signInIdentity",
        ),
        (
            format!(
                r##"{{"signInIdentity":{{"@odata.type":"#microsoft.graph.userSignIn"}},"signInContext":{{"includeApplications":["{APP}"]}}}}"##
            ),
            "signInIdentity.userId",
        ),
        (
            format!(
                r##"{{"signInIdentity":{{"userId":"{USER}"}},"signInContext":{{"@odata.type":"#microsoft.graph.authContext","authenticationContextValue":"c100"}}}}"##
            ),
            "signInContext.authenticationContextValue",
        ),
        (
            format!(
                r##"{{"signInIdentity":{{"userId":"{USER}"}},"signInContext":{{"includeApplications":[]}}}}"##
            ),
            "signInContext.includeApplications",
        ),
        (
            format!(
                r##"{{"signInIdentity":{{"userId":"{USER}"}},"signInContext":{{"includeApplications":["{APP}"]}},"signInConditions":{{"deviceInfo":{{"colour":"red"}}}}}}"##
            ),
            "signInConditions.deviceInfo.colour",
        ),
    ];
    for (body, field) in cases {
        let error = request(&body)
            .to_sign_in_context(admin(), &tenant)
            .unwrap_err();
        assert_eq!(error.field, field, "{error}");
    }
    let error = EvaluateRequest::from_json(br##"{"signInIdentity":5}"##).unwrap_err();
    assert_eq!(error.field, "signInIdentity");
}
