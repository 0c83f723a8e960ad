//! Conditional Access through the admin API: the story's two policies, Entra exports as they
//! are, referential integrity, and What-If backed by the same engine.

use portcullis_testkit::fixtures::{PHISHING_RESISTANT, id, story_tenant};
use portcullis_testkit::{StatusCode, TestServer};
use serde_json::{Value, json};

fn what_if(user: &str, platform: &str) -> Value {
    json!({
        "signInIdentity": {"@odata.type": "#microsoft.graph.userSignIn", "userId": user},
        "signInContext": {"@odata.type": "#microsoft.graph.applicationContext", "includeApplications": ["00000003-0000-0000-c000-000000000000"]},
        "signInConditions": {"devicePlatform": platform, "clientAppType": "browser"},
        "appliedPoliciesOnly": false
    })
}

fn result_for<'a>(reply: &'a Value, name: &str) -> &'a Value {
    reply["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["displayName"] == name)
        .unwrap_or_else(|| panic!("{name} in {reply}"))
}

#[tokio::test]
async fn the_story_policies_and_what_if() {
    let t = TestServer::start().await;
    let story = story_tenant(&t, "enabled", PHISHING_RESISTANT).await;
    let (joni, enforcement) = (story.joni, story.enforcement);
    assert!(enforcement["createdDateTime"].is_string());
    assert_eq!(
        t.get(&format!(
            "/identity/conditionalAccess/policies/{}",
            id(&enforcement)
        ))
        .await
        .body["grantControls"]["authenticationStrength"]["id"],
        PHISHING_RESISTANT
    );
    assert_eq!(
        t.get("/identity/conditionalAccess/policies").await.body["value"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Android: both apply; the block is the answer.
    let android = t
        .post(
            "/identity/conditionalAccess/evaluate",
            what_if(&joni, "android"),
        )
        .await;
    assert_eq!(android.status, StatusCode::OK, "{:?}", android.body);
    assert_eq!(
        result_for(&android.body, "Passkey test: unsupported platforms")["policyApplies"],
        true
    );
    // Windows: the platform policy does not apply (excluded), enforcement does.
    let windows = t
        .post(
            "/identity/conditionalAccess/evaluate",
            what_if(&joni, "windows"),
        )
        .await;
    let block = result_for(&windows.body, "Passkey test: unsupported platforms");
    assert_eq!(block["policyApplies"], false);
    assert_ne!(
        block["analysisReasons"], "none",
        "the trace says why: {block}"
    );
    assert_eq!(
        result_for(&windows.body, "Passkey test: enforcement")["policyApplies"],
        true
    );
    // Someone outside the group: neither applies.
    let grady = t
        .post(
            "/users",
            json!({"userPrincipalName": "grady@contoso.com", "displayName": "Grady"}),
        )
        .await
        .body;
    let outside = t
        .post(
            "/identity/conditionalAccess/evaluate",
            what_if(&id(&grady), "android"),
        )
        .await;
    assert!(
        outside.body["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["policyApplies"] == false)
    );
    // appliedPoliciesOnly leaves out what does not apply.
    let mut only = what_if(&joni, "windows");
    only["appliedPoliciesOnly"] = json!(true);
    let only = t.post("/identity/conditionalAccess/evaluate", only).await;
    assert_eq!(only.body["value"].as_array().unwrap().len(), 1);

    // Bad What-If requests name the member.
    let mut bad = what_if(&joni, "android");
    bad["signInIdentity"]["userId"] = json!(uuid::Uuid::new_v4().to_string());
    assert_eq!(
        t.post("/identity/conditionalAccess/evaluate", bad)
            .await
            .error_target(),
        Some("signInIdentity.userId")
    );
    let mut bad = what_if(&joni, "android");
    bad["signInConditions"]["ipAddress"] = json!("300.1.1.1");
    assert_eq!(
        t.post("/identity/conditionalAccess/evaluate", bad)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    // Every change is audited under Policy.
    let audits = t
        .get("/auditLogs/directoryAudits?$filter=category eq 'Policy'")
        .await;
    assert_eq!(audits.body["value"].as_array().unwrap().len(), 2);
    assert_eq!(
        audits.body["value"][0]["activityDisplayName"],
        "Add conditional access policy"
    );
    t.stop().await;
}

#[tokio::test]
async fn report_only_is_traced_but_never_blocks() {
    let t = TestServer::start().await;
    let story = story_tenant(&t, "enabledForReportingButNotEnforced", PHISHING_RESISTANT).await;
    let (joni, platforms) = (story.joni, story.platforms);
    let android = t
        .post(
            "/identity/conditionalAccess/evaluate",
            what_if(&joni, "android"),
        )
        .await;
    let block = result_for(&android.body, "Passkey test: unsupported platforms");
    assert_eq!(block["state"], "enabledForReportingButNotEnforced");
    assert_eq!(block["policyApplies"], true);
    // Switching it on with PATCH keeps everything else.
    let r = t
        .patch(
            &format!("/identity/conditionalAccess/policies/{}", id(&platforms)),
            json!({"state": "enabled"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let now = t
        .get(&format!(
            "/identity/conditionalAccess/policies/{}",
            id(&platforms)
        ))
        .await
        .body;
    assert_eq!(now["state"], "enabled");
    assert_eq!(
        now["conditions"]["platforms"]["excludePlatforms"],
        json!(["windows"])
    );
    assert!(now["modifiedDateTime"].is_string());
    let audit = t.get("/auditLogs/directoryAudits?$filter=activityDisplayName eq 'Update conditional access policy'").await;
    let props = &audit.body["value"][0]["targetResources"][0]["modifiedProperties"][0];
    assert!(
        props["oldValue"]
            .as_str()
            .unwrap()
            .contains("enabledForReportingButNotEnforced")
    );
    t.stop().await;
}

#[tokio::test]
async fn entra_exports_are_accepted_as_they_are() {
    let t = TestServer::start().await;
    let export = json!({
        "@odata.context": "https://graph.microsoft.com/beta/$metadata#identity/conditionalAccess/policies/$entity",
        "id": "6b0a47c1-4cf5-4a3b-9e28-1d6c0b7a5f10",
        "templateId": null,
        "displayName": "Block legacy authentication",
        "createdDateTime": "2024-03-01T10:00:00Z",
        "modifiedDateTime": null,
        "state": "enabled",
        "partialEnablementStrategy": null,
        "conditions": {
            "userRiskLevels": [], "signInRiskLevels": [], "clientAppTypes": ["exchangeActiveSync", "other"],
            "servicePrincipalRiskLevels": [], "insiderRiskLevels": null,
            "platforms": null, "locations": null, "devices": null, "clientApplications": null, "times": null,
            "applications": {"includeApplications": ["All"], "excludeApplications": [], "includeUserActions": [], "includeAuthenticationContextClassReferences": [], "applicationFilter": null},
            "users": {"includeUsers": ["All"], "excludeUsers": [], "includeGroups": [], "excludeGroups": [], "includeRoles": [], "excludeRoles": [], "includeGuestsOrExternalUsers": null, "excludeGuestsOrExternalUsers": null}
        },
        "grantControls": {"operator": "OR", "builtInControls": ["block"], "customAuthenticationFactors": [], "termsOfUse": [], "authenticationStrength@odata.context": "https://graph.microsoft.com/beta/$metadata#identity/conditionalAccess/policies('6b0a')/grantControls/authenticationStrength/$entity", "authenticationStrength": null},
        "sessionControls": null
    });
    // UTF-16 little-endian with a byte-order mark, as PowerShell writes it.
    let mut utf16 = vec![0xFF, 0xFE];
    for unit in export.to_string().encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }
    let r = t
        .graph_raw(
            reqwest::Method::POST,
            "/identity/conditionalAccess/policies",
            "application/json",
            utf16,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(
        r.body["id"], "6b0a47c1-4cf5-4a3b-9e28-1d6c0b7a5f10",
        "an exported id is kept, so references survive"
    );
    let stored = t
        .get("/identity/conditionalAccess/policies/6b0a47c1-4cf5-4a3b-9e28-1d6c0b7a5f10")
        .await
        .body;
    assert_eq!(
        stored["conditions"]["clientAppTypes"],
        json!(["exchangeActiveSync", "other"])
    );
    // Importing the same export again is a conflict, not a duplicate.
    let mut again = vec![0xFF, 0xFE];
    for unit in export.to_string().encode_utf16() {
        again.extend_from_slice(&unit.to_le_bytes());
    }
    assert_eq!(
        t.graph_raw(
            reqwest::Method::POST,
            "/identity/conditionalAccess/policies",
            "application/json",
            again
        )
        .await
        .status,
        StatusCode::CONFLICT
    );
    t.stop().await;
}

#[tokio::test]
async fn references_are_checked_both_ways() {
    let t = TestServer::start().await;
    let office = t
        .post(
            "/identity/conditionalAccess/namedLocations",
            json!({"@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "Office", "isTrusted": true,
                   "ipRanges": [{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "203.0.113.0/24"}]}),
        )
        .await;
    assert_eq!(office.status, StatusCode::CREATED, "{:?}", office.body);
    let wide = t
        .post(
            "/identity/conditionalAccess/namedLocations",
            json!({"@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "Too wide",
                   "ipRanges": [{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "10.0.0.0/8"}]}),
        )
        .await;
    assert_eq!(
        wide.status,
        StatusCode::BAD_REQUEST,
        "a /8 mask is refused: {:?}",
        wide.body
    );
    let country = t
        .post("/identity/conditionalAccess/namedLocations", json!({"@odata.type": "#microsoft.graph.countryNamedLocation", "displayName": "Nordics", "countriesAndRegions": ["SE", "NO", "FI"]}))
        .await;
    assert_eq!(country.status, StatusCode::CREATED, "{:?}", country.body);
    let strength = t
        .post(
            "/policies/authenticationStrengthPolicies",
            json!({"displayName": "Passkeys only", "allowedCombinations": ["fido2"]}),
        )
        .await;
    assert_eq!(strength.status, StatusCode::CREATED, "{:?}", strength.body);
    assert_eq!(strength.body["policyType"], "custom");
    let strengths = t.get("/policies/authenticationStrengthPolicies").await;
    assert_eq!(
        strengths.body["value"].as_array().unwrap().len(),
        4,
        "three built-ins and one custom"
    );

    let policy = |name: &str, location: &str, strength_id: &str| {
        json!({
            "displayName": name, "state": "enabled",
            "conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["All"]}, "clientAppTypes": ["all"],
                           "locations": {"includeLocations": ["All"], "excludeLocations": [location]}},
            "grantControls": {"operator": "OR", "builtInControls": [], "authenticationStrength": {"id": strength_id}}
        })
    };
    let unknown_location = t
        .post(
            "/identity/conditionalAccess/policies",
            policy("A", &uuid::Uuid::new_v4().to_string(), &id(&strength.body)),
        )
        .await;
    assert_eq!(
        unknown_location.status,
        StatusCode::BAD_REQUEST,
        "{:?}",
        unknown_location.body
    );
    let unknown_strength = t
        .post(
            "/identity/conditionalAccess/policies",
            policy("B", &id(&office.body), &uuid::Uuid::new_v4().to_string()),
        )
        .await;
    assert_eq!(
        unknown_strength.status,
        StatusCode::BAD_REQUEST,
        "{:?}",
        unknown_strength.body
    );
    let mut mfa_and_strength = policy("C", &id(&office.body), &id(&strength.body));
    mfa_and_strength["grantControls"]["builtInControls"] = json!(["mfa"]);
    let r = t
        .post("/identity/conditionalAccess/policies", mfa_and_strength)
        .await;
    assert_eq!(
        (r.status, r.error_target()),
        (StatusCode::BAD_REQUEST, Some("grantControls")),
        "{:?}",
        r.body
    );
    let no_name = t.post("/identity/conditionalAccess/policies", json!({"state": "enabled", "conditions": {"applications": {"includeApplications": ["All"]}, "users": {"includeUsers": ["All"]}, "clientAppTypes": ["all"]}})).await;
    assert_eq!(no_name.error_target(), Some("displayName"));
    let bad_state = t
        .post(
            "/identity/conditionalAccess/policies",
            json!({"displayName": "X", "state": "on", "conditions": {}}),
        )
        .await;
    assert_eq!(bad_state.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        t.get("/identity/conditionalAccess/policies").await.body["value"],
        json!([]),
        "nothing was created"
    );

    let ok = t
        .post(
            "/identity/conditionalAccess/policies",
            policy("Outside the office", &id(&office.body), &id(&strength.body)),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{:?}", ok.body);
    // In use: neither the location nor the strength can go.
    let r = t
        .delete(&format!(
            "/identity/conditionalAccess/namedLocations/{}",
            id(&office.body)
        ))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Outside the office")
    );
    assert_eq!(
        t.delete(&format!(
            "/policies/authenticationStrengthPolicies/{}",
            id(&strength.body)
        ))
        .await
        .status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        t.delete(&format!(
            "/policies/authenticationStrengthPolicies/{PHISHING_RESISTANT}"
        ))
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    // A What-If from the office's range: the policy does not apply there.
    let joni = t
        .post(
            "/users",
            json!({"userPrincipalName": "joni@contoso.com", "displayName": "Joni"}),
        )
        .await
        .body;
    let mut req = what_if(&id(&joni), "windows");
    req["signInConditions"]["ipAddress"] = json!("203.0.113.7");
    let inside = t
        .post("/identity/conditionalAccess/evaluate", req.clone())
        .await;
    assert_eq!(
        result_for(&inside.body, "Outside the office")["policyApplies"],
        false
    );
    req["signInConditions"]["ipAddress"] = json!("198.51.100.7");
    let outside = t.post("/identity/conditionalAccess/evaluate", req).await;
    assert_eq!(
        result_for(&outside.body, "Outside the office")["policyApplies"],
        true
    );
    // Once the policy is gone, the location can be deleted.
    assert_eq!(
        t.delete(&format!(
            "/identity/conditionalAccess/policies/{}",
            id(&ok.body)
        ))
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        t.delete(&format!(
            "/identity/conditionalAccess/namedLocations/{}",
            id(&office.body)
        ))
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    t.stop().await;
}
