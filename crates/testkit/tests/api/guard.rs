//! The lockout guard: a change that would take the Admin Portal from the last Global
//! Administrators, or from the person making it, is refused with 409 `policyWouldLockOut` and
//! the proof, and passes only when the request acknowledges it.

use portcullis_testkit::authenticator::TEST_AAGUID;
use portcullis_testkit::fixtures::{self, assign_role, create_user, id};
use portcullis_testkit::{StatusCode, TestServer};
use serde_json::{Value, json};

const POLICIES: &str = "/identity/conditionalAccess/policies";
const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
const FIDO2: &str =
    "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/fido2";

fn block_everyone(name: &str, state: &str, excluded_users: &[&str]) -> Value {
    json!({
        "displayName": name,
        "state": state,
        "conditions": {
            "users": {"includeUsers": ["All"], "excludeUsers": excluded_users},
            "applications": {"includeApplications": ["All"]},
            "clientAppTypes": ["all"],
        },
        "grantControls": {"operator": "OR", "builtInControls": ["block"]},
    })
}

async fn policy_names(t: &TestServer) -> Vec<String> {
    let r = t.get(POLICIES).await;
    r.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["displayName"].as_str().unwrap().to_string())
        .collect()
}

/// Every entry of the audit log whose result is `failure`.
async fn failures(t: &TestServer) -> Vec<Value> {
    let r = t
        .get("/auditLogs/directoryAudits?$top=999&$filter=result%20eq%20%27failure%27")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["value"].as_array().unwrap().clone()
}

/// The refusal as a caller reads it: 409, the code, and the finding.
fn refused(reply: &portcullis_testkit::Reply) -> &Value {
    assert_eq!(reply.status, StatusCode::CONFLICT, "{:?}", reply.body);
    assert_eq!(reply.body["error"]["code"], "policyWouldLockOut");
    &reply.body["error"]["finding"]
}

#[tokio::test]
async fn a_block_on_everyone_is_refused_with_its_proof_and_changes_nothing() {
    let t = TestServer::start().await;
    let admin = t.bootstrap.admin_user_principal_name.clone();
    let reply = t
        .post(POLICIES, block_everyone("Block everyone", "enabled", &[]))
        .await;
    let finding = refused(&reply);
    assert_eq!(finding["kind"], "lockout");
    assert_eq!(finding["severity"], "high");
    assert_eq!(finding["decision"], "block");
    assert_eq!(finding["witness"]["user"], admin.as_str());
    assert_eq!(finding["policies"][0]["displayName"], "Block everyone");
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("acknowledgeLockout=true"), "{message}");
    assert!(policy_names(&t).await.is_empty(), "nothing was stored");

    // Anything but "true" is not an acknowledgement: a typo must not switch the guard off.
    let typo = t
        .post(
            &format!("{POLICIES}?acknowledgeLockout=yes"),
            block_everyone("Block everyone", "enabled", &[]),
        )
        .await;
    refused(&typo);
    // Said knowingly, it is stored.
    let acknowledged = t
        .post(
            &format!("{POLICIES}?acknowledgeLockout=true"),
            block_everyone("Block everyone", "enabled", &[]),
        )
        .await;
    assert_eq!(
        acknowledged.status,
        StatusCode::CREATED,
        "{:?}",
        acknowledged.body
    );
    assert_eq!(policy_names(&t).await, vec!["Block everyone".to_string()]);
    t.stop().await;
}

#[tokio::test]
async fn report_only_disabled_and_break_glass_excluded_blocks_are_not_lockouts() {
    let t = TestServer::start().await;
    let admin = t.bootstrap.admin_user_id.to_string();
    for (name, state, excluded) in [
        ("Report only", "enabledForReportingButNotEnforced", vec![]),
        ("Disabled", "disabled", vec![]),
        (
            "Everyone but the administrator",
            "enabled",
            vec![admin.as_str()],
        ),
    ] {
        let r = t
            .post(POLICIES, block_everyone(name, state, &excluded))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{name}: {:?}", r.body);
    }
    // Turning the report-only block on would lock the administrator out: refused, and the
    // policy stays report-only.
    let names = t.get(POLICIES).await;
    let report_only = names.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["displayName"] == "Report only")
        .unwrap()
        .clone();
    let path = format!("{POLICIES}/{}", id(&report_only));
    let on = t.patch(&path, json!({"state": "enabled"})).await;
    refused(&on);
    assert_eq!(
        t.get(&path).await.body["state"],
        "enabledForReportingButNotEnforced"
    );
    // Deleting the break-glass exclusion's policy is harmless; editing the exclusion away is
    // not.
    let excluded = names.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["displayName"] == "Everyone but the administrator")
        .unwrap()
        .clone();
    let excluded_path = format!("{POLICIES}/{}", id(&excluded));
    let edit = t
        .patch(
            &excluded_path,
            json!({"conditions": {"users": {"includeUsers": ["All"], "excludeUsers": []}}}),
        )
        .await;
    refused(&edit);
    let acknowledged = t
        .patch(
            &format!("{path}?acknowledgeLockout=true"),
            json!({"state": "enabled"}),
        )
        .await;
    assert_eq!(
        acknowledged.status,
        StatusCode::NO_CONTENT,
        "{:?}",
        acknowledged.body
    );
    t.stop().await;
}

#[tokio::test]
async fn one_global_administrator_keeping_access_is_enough() {
    let t = TestServer::start().await;
    // A second Global Administrator who can sign in (a pass).
    let second = create_user(&t, "second@portcullis.local", "Second Admin").await;
    assign_role(&t, &second, GLOBAL_ADMINISTRATOR).await;
    fixtures::issue_pass(&t, &second, json!({"isUsableOnce": false})).await;

    // Blocking everyone but the second administrator leaves them the portal: allowed.
    let r = t
        .post(
            POLICIES,
            block_everyone("All but second", "enabled", &[second.as_str()]),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);

    // Then blocking the second one too takes the portal from the last who had it.
    let reply = t
        .post(POLICIES, block_everyone("Everyone", "enabled", &[]))
        .await;
    let finding = refused(&reply);
    assert_eq!(finding["witness"]["user"], "second@portcullis.local");
    assert_eq!(policy_names(&t).await, vec!["All but second".to_string()]);
    t.stop().await;
}

#[tokio::test]
async fn a_passkey_allow_list_that_leaves_out_the_administrators_passkeys_is_refused() {
    let t = TestServer::start().await;
    fixtures::allow_test_authenticator(&t).await;
    // The administrator registers a passkey with the first-start pass, which that uses up.
    let session = fixtures::admin_session(&t).await;
    portcullis_testkit::fixtures::register_test_passkey(&t, &session, "Laptop").await;

    // Another model only: the administrator's passkey would stop working, and with the pass
    // used up they would have nothing to sign in with.
    let other_model = "cb69481e-8ff7-4039-93ec-0a2729a154a8";
    let list = json!({"keyRestrictions": {"isEnforced": true, "enforcementType": "allow", "aaGuids": [other_model]}});
    let reply = t.patch(FIDO2, list.clone()).await;
    let finding = refused(&reply);
    assert!(
        finding["message"]
            .as_str()
            .unwrap()
            .contains("no way to sign in"),
        "{finding}"
    );
    let stored = t.get(FIDO2).await;
    assert_eq!(
        stored.body["keyRestrictions"]["aaGuids"],
        json!([TEST_AAGUID.to_string()]),
        "nothing changed"
    );
    // Turning passkeys off: the same.
    refused(&t.patch(FIDO2, json!({"state": "disabled"})).await);
    // Both refusals are in the audit log as failed attempts on the policy, with the guard's
    // reason and what they tried to change; nothing of them as a success.
    let failures = failures(&t).await;
    let on_fido2: Vec<&Value> = failures
        .iter()
        .filter(|e| e["targetResources"][0]["id"] == "Fido2")
        .collect();
    assert_eq!(on_fido2.len(), 2, "{failures:#?}");
    for entry in &on_fido2 {
        assert_eq!(
            entry["activityDisplayName"],
            "Authentication Methods Policy Update"
        );
        let reason = entry["resultReason"].as_str().unwrap();
        assert!(
            reason.starts_with("Refused by the lockout guard"),
            "{reason}"
        );
    }
    let tried: Vec<&str> = on_fido2
        .iter()
        .flat_map(|e| {
            e["targetResources"][0]["modifiedProperties"]
                .as_array()
                .unwrap()
        })
        .map(|p| p["displayName"].as_str().unwrap())
        .collect();
    assert!(tried.contains(&"keyRestrictions"), "{tried:?}");
    assert!(tried.contains(&"state"), "{tried:?}");
    // Adding a model keeps the administrator's: allowed.
    let both = json!({"keyRestrictions": {"isEnforced": true, "enforcementType": "allow", "aaGuids": [TEST_AAGUID.to_string(), other_model]}});
    let r = t.patch(FIDO2, both).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let r = t
        .patch(&format!("{FIDO2}?acknowledgeLockout=true"), list)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    t.stop().await;
}

/// Found by an attacker's script: a policy that was no lockout became one when the strength it
/// requires, or the location it blocks, was changed, and the guard was not asked. Both changes
/// now pass the guard with the whole configuration before and after; a refusal changes nothing
/// and is audited, and an acknowledged change is stored.
#[tokio::test]
async fn changing_a_strength_or_a_location_a_policy_names_is_guarded_too() {
    const STRENGTHS: &str = "/policies/authenticationStrengthPolicies";
    const LOCATIONS: &str = "/identity/conditionalAccess/namedLocations";
    let t = TestServer::start().await;

    // A strength the administrator can meet (a Temporary Access Pass), required of everyone.
    let strength = t
        .post(
            STRENGTHS,
            json!({"displayName": "Pass or passkey", "allowedCombinations": ["fido2", "temporaryAccessPassOneTime", "temporaryAccessPassMultiUse"]}),
        )
        .await;
    assert_eq!(strength.status, StatusCode::CREATED, "{:?}", strength.body);
    let strength_id = id(&strength.body);
    let require = json!({
        "displayName": "Everyone meets the strength",
        "state": "enabled",
        "conditions": {
            "users": {"includeUsers": ["All"]},
            "applications": {"includeApplications": ["All"]},
            "clientAppTypes": ["all"],
        },
        "grantControls": {"operator": "OR", "authenticationStrength": {"id": strength_id}},
    });
    let r = t.post(POLICIES, require).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    // Then a method no one has registered: every administrator would be refused.
    let path = format!("{STRENGTHS}/{strength_id}");
    let narrowed = json!({"allowedCombinations": ["x509CertificateMultiFactor"]});
    let reply = t.patch(&path, narrowed.clone()).await;
    let finding = refused(&reply);
    assert_eq!(
        finding["policies"][0]["displayName"],
        "Everyone meets the strength"
    );
    assert_eq!(
        t.get(&path).await.body["allowedCombinations"],
        strength.body["allowedCombinations"],
        "nothing changed"
    );

    // A block on a small location, then the location stretched over every address.
    let location = t
        .post(
            LOCATIONS,
            json!({"@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "Lab",
                   "ipRanges": [{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "203.0.113.0/24"}]}),
        )
        .await;
    assert_eq!(location.status, StatusCode::CREATED, "{:?}", location.body);
    let location_id = id(&location.body);
    let block = json!({
        "displayName": "Block the lab",
        "state": "enabled",
        "conditions": {
            "users": {"includeUsers": ["All"]},
            "applications": {"includeApplications": ["All"]},
            "clientAppTypes": ["all"],
            "locations": {"includeLocations": [location_id]},
        },
        "grantControls": {"operator": "OR", "builtInControls": ["block"]},
    });
    let r = t.post(POLICIES, block).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    // Every address, in the widest ranges a location takes (/9).
    let everywhere: Vec<Value> = (0..512)
        .map(|n| json!({"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": format!("{}.{}.0.0/9", n / 2, (n % 2) * 128)}))
        .chain((0..512).map(|n| json!({"@odata.type": "#microsoft.graph.iPv6CidrRange", "cidrAddress": format!("{:x}::/9", n << 7)})))
        .collect();
    let stretched =
        json!({"@odata.type": "#microsoft.graph.ipNamedLocation", "ipRanges": everywhere});
    let path_l = format!("{LOCATIONS}/{location_id}");
    let reply = t.patch(&path_l, stretched.clone()).await;
    let finding = refused(&reply);
    assert_eq!(finding["policies"][0]["displayName"], "Block the lab");
    assert_eq!(
        t.get(&path_l).await.body["ipRanges"],
        location.body["ipRanges"],
        "nothing changed"
    );

    // Both refusals are failures in the audit log.
    let failures = failures(&t)
        .await
        .iter()
        .map(|e| e["activityDisplayName"].as_str().unwrap().to_string())
        .collect::<Vec<_>>();
    assert!(
        failures.contains(&"Authentication Strength Policy Update".to_string()),
        "{failures:?}"
    );
    assert!(
        failures.contains(&"Update named location".to_string()),
        "{failures:?}"
    );

    // Said knowingly, each is stored; a change that locks no one out needs no acknowledgement.
    let r = t
        .patch(&format!("{path}?acknowledgeLockout=true"), narrowed)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let r = t
        .patch(&format!("{path_l}?acknowledgeLockout=true"), stretched)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    // The administrators were already shut out by then: a change that takes nothing more
    // away (a new name) is not refused for what was acknowledged before.
    let renamed = t
        .patch(
            &path_l,
            json!({"@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "Anywhere"}),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::NO_CONTENT, "{:?}", renamed.body);
    t.stop().await;
}

const PASSES: &str =
    "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass";
const PASSWORDS: &str =
    "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/Password";

/// Found by an attacker's script: turning Temporary Access Passes off was not guarded, though
/// the first-start administrator's pass is their only way in. Now refused with the proof, and
/// audited; acknowledged, it is stored.
#[tokio::test]
async fn turning_passes_off_under_an_administrator_who_has_only_a_pass_is_refused() {
    let t = TestServer::start().await;
    let reply = t.patch(PASSES, json!({"state": "disabled"})).await;
    let finding = refused(&reply);
    assert_eq!(
        finding["witness"]["user"],
        t.bootstrap.admin_user_principal_name.as_str()
    );
    assert!(
        finding["message"]
            .as_str()
            .unwrap()
            .contains("no way to sign in"),
        "{finding}"
    );
    assert_eq!(
        t.get(PASSES).await.body["state"],
        "enabled",
        "nothing changed"
    );
    let failures = failures(&t).await;
    let on_passes: Vec<&Value> = failures
        .iter()
        .filter(|e| e["targetResources"][0]["id"] == "TemporaryAccessPass")
        .collect();
    assert_eq!(on_passes.len(), 1, "{failures:#?}");
    assert!(
        on_passes[0]["resultReason"]
            .as_str()
            .unwrap()
            .starts_with("Refused by the lockout guard"),
        "{:?}",
        on_passes[0]
    );
    // A change that keeps the pass usable is not refused.
    let r = t
        .patch(PASSES, json!({"defaultLifetimeInMinutes": 120}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let r = t
        .patch(
            &format!("{PASSES}?acknowledgeLockout=true"),
            json!({"state": "disabled"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    assert_eq!(t.get(PASSES).await.body["state"], "disabled");
    t.stop().await;
}

/// The same for passwords: a Global Administrator whose only method is a password keeps the
/// password policy on, unless the change says it knows.
#[tokio::test]
async fn turning_passwords_off_under_an_administrator_who_has_only_a_password_is_refused() {
    let t = TestServer::start().await;
    // The first-start administrator's pass is used up by signing in once: they keep their
    // session, but no longer a way to begin a sign-in, so only Pat counts.
    let _session = fixtures::admin_session(&t).await;
    let r = t.patch(PASSWORDS, json!({"state": "enabled"})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let pat = t
        .post(
            "/users",
            json!({"userPrincipalName": "pat@contoso.com", "displayName": "Pat",
                   "passwordProfile": {"password": "violet staple orbit 42"}}),
        )
        .await;
    assert_eq!(pat.status, StatusCode::CREATED, "{:?}", pat.body);
    assign_role(&t, &id(&pat.body), GLOBAL_ADMINISTRATOR).await;

    let reply = t.patch(PASSWORDS, json!({"state": "disabled"})).await;
    let finding = refused(&reply);
    assert_eq!(finding["witness"]["user"], "pat@contoso.com");
    assert_eq!(
        t.get(PASSWORDS).await.body["state"],
        "enabled",
        "nothing changed"
    );
    let r = t
        .patch(
            &format!("{PASSWORDS}?acknowledgeLockout=true"),
            json!({"state": "disabled"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    t.stop().await;
}

/// The ids of the Global Administrator assignments of `principal`.
async fn global_administrator_assignments(t: &TestServer, principal: &str) -> Vec<String> {
    let r = t
        .get(&format!(
            "/roleManagement/directory/roleAssignments?$filter=principalId eq '{principal}'"
        ))
        .await;
    r.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["roleDefinitionId"] == GLOBAL_ADMINISTRATOR)
        .map(id)
        .collect()
}

#[track_caller]
fn last_one(reply: &portcullis_testkit::Reply) {
    assert_eq!(reply.status, StatusCode::CONFLICT, "{:?}", reply.body);
    assert_eq!(
        reply.error_code(),
        Some("lastGlobalAdministrator"),
        "{:?}",
        reply.body
    );
}

/// Found by an attacker's script: the only Global Administrator could be unassigned, deleted
/// or disabled, leaving a tenant nobody administers; Entra refuses that. Every way of taking
/// the role from its last enabled holder is refused (and audited), and each is allowed once
/// someone else holds it.
#[tokio::test]
async fn the_last_global_administrator_is_kept() {
    let t = TestServer::start().await;
    let admin = t.bootstrap.admin_user_id.to_string();
    let direct = global_administrator_assignments(&t, &admin).await;
    assert_eq!(direct.len(), 1);
    last_one(
        &t.delete(&format!(
            "/roleManagement/directory/roleAssignments/{}",
            direct[0]
        ))
        .await,
    );
    last_one(&t.delete(&format!("/users/{admin}")).await);
    last_one(
        &t.patch(&format!("/users/{admin}"), json!({"accountEnabled": false}))
            .await,
    );
    assert_eq!(global_administrator_assignments(&t, &admin).await, direct);
    assert_eq!(
        t.get(&format!("/users/{admin}")).await.body["accountEnabled"],
        true
    );
    let failures = failures(&t)
        .await
        .iter()
        .filter(|e| {
            e["resultReason"]
                .as_str()
                .unwrap_or_default()
                .contains("lastGlobalAdministrator")
        })
        .count();
    assert_eq!(failures, 3);

    // Through a group: Keeper holds it there, so the direct assignment may go.
    let tier0 = fixtures::create_role_assignable_group(&t, "Tier 0").await;
    assign_role(&t, &tier0, GLOBAL_ADMINISTRATOR).await;
    let keeper = fixtures::user(&t, "keeper@contoso.com").await;
    fixtures::add_member(&t, &tier0, &keeper).await;
    let r = t
        .delete(&format!(
            "/roleManagement/directory/roleAssignments/{}",
            direct[0]
        ))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    // Now Keeper is the last one: not out of the group, nor the group deleted, nor disabled.
    last_one(
        &t.delete(&format!("/groups/{tier0}/members/{keeper}/$ref"))
            .await,
    );
    last_one(&t.delete(&format!("/groups/{tier0}")).await);
    last_one(
        &t.patch(
            &format!("/users/{keeper}"),
            json!({"accountEnabled": false}),
        )
        .await,
    );
    // With someone else holding it directly, each is allowed.
    let pat = create_user(&t, "pat@contoso.com", "Pat").await;
    assign_role(&t, &pat, GLOBAL_ADMINISTRATOR).await;
    let r = t
        .delete(&format!("/groups/{tier0}/members/{keeper}/$ref"))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let r = t.delete(&format!("/groups/{tier0}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let r = t
        .patch(&format!("/users/{admin}"), json!({"accountEnabled": false}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    last_one(&t.delete(&format!("/users/{pat}")).await);
    t.stop().await;
}

/// Found by an attacker's script: two Global Administrators disabled at the same moment both
/// passed the rule, each seeing the other still enabled, because disabling an account did not
/// move the revision the rule commits under. In each round exactly one of the two is disabled.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_administrators_disabled_at_once_leave_one() {
    let t = TestServer::start().await;
    let admin = t.bootstrap.admin_user_id.to_string();
    let pat = create_user(&t, "pat@contoso.com", "Pat").await;
    assign_role(&t, &pat, GLOBAL_ADMINISTRATOR).await;
    for round in 0..5 {
        let disable = |who: String| {
            let t = &t;
            async move {
                t.patch(&format!("/users/{who}"), json!({"accountEnabled": false}))
                    .await
            }
        };
        let (a, b) = tokio::join!(disable(admin.clone()), disable(pat.clone()));
        let mut statuses = [a.status, b.status];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::NO_CONTENT, StatusCode::CONFLICT],
            "round {round}: {:?} {:?}",
            a.body,
            b.body
        );
        let refused = if a.status == StatusCode::CONFLICT {
            &a
        } else {
            &b
        };
        assert_eq!(refused.error_code(), Some("lastGlobalAdministrator"));
        let enabled = [
            t.get(&format!("/users/{admin}")).await.body["accountEnabled"] == true,
            t.get(&format!("/users/{pat}")).await.body["accountEnabled"] == true,
        ];
        assert_eq!(enabled.iter().filter(|e| **e).count(), 1, "round {round}");
        for who in [&admin, &pat] {
            let r = t
                .patch(&format!("/users/{who}"), json!({"accountEnabled": true}))
                .await;
            assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
        }
    }
    t.stop().await;
}

/// Found by an attacker's script: with attestation enforced and no attestation root trusted,
/// no passkey can be registered, yet the guard counted on the administrator registering one
/// during the sign-in a policy asks a passkey of. Now that change is a lockout.
#[tokio::test]
async fn enforcing_attestation_with_no_trusted_root_counts_as_no_passkey_to_register() {
    let t = TestServer::start().await;
    let strength = t
        .post(
            "/policies/authenticationStrengthPolicies",
            json!({"displayName": "Passkeys only", "allowedCombinations": ["fido2"]}),
        )
        .await;
    assert_eq!(strength.status, StatusCode::CREATED, "{:?}", strength.body);
    // The administrator has only their first-start pass, and registers a passkey on the way:
    // not a lockout.
    let policy = t
        .post(
            POLICIES,
            json!({
                "displayName": "Passkeys for everyone",
                "state": "enabled",
                "conditions": {
                    "users": {"includeUsers": ["All"]},
                    "applications": {"includeApplications": ["All"]},
                    "clientAppTypes": ["all"],
                },
                "grantControls": {"operator": "OR", "authenticationStrength": {"id": id(&strength.body)}},
            }),
        )
        .await;
    assert_eq!(policy.status, StatusCode::CREATED, "{:?}", policy.body);
    let reply = t.patch(FIDO2, json!({"isAttestationEnforced": true})).await;
    let finding = refused(&reply);
    assert_eq!(
        finding["witness"]["user"],
        t.bootstrap.admin_user_principal_name.as_str()
    );
    assert_eq!(t.get(FIDO2).await.body["isAttestationEnforced"], false);
    t.stop().await;
}
