//! The DESIGN.md story on the exported fixture tenant: the two "Passkey test" policies.

use portcullis_policy::{
    AppliedPolicyResult, BlockReason, Control, DevicePlatform, Outcome,
    PHISHING_RESISTANT_STRENGTH_ID, SatisfiedMethod, SignInContext, Target, UserAction, evaluate,
};

use crate::support::*;

const ENFORCEMENT: &str = "b1d7f3a2-4c5e-4f60-8a71-92b3c4d5e6f7";
const UNSUPPORTED_PLATFORMS: &str = "c2e8a4b3-5d6f-4071-9b82-a3c4d5e6f708";
const BREAKGLASS: &str = "0c8a3b2e-7d41-4f5a-9b6c-1e2d3f4a5b6c";

fn joni(platform: Option<DevicePlatform>) -> SignInContext {
    let mut c = SignInContext::new(USER, Target::Application(APP.to_owned()));
    c.group_ids = vec![STAFF.to_owned(), ADMINS.to_owned()];
    c.platform = platform;
    c.ip_address = Some("192.0.2.44".parse().unwrap());
    c
}

#[test]
fn new_admin_with_a_tap_on_windows_must_get_phishing_resistant_mfa() {
    let tenant = design_tenant();
    let mut c = joni(Some(DevicePlatform::Windows));
    c.methods = vec![SatisfiedMethod::new(
        portcullis_policy::AuthenticationMethodMode::TemporaryAccessPassOneTime,
    )];
    let decision = evaluate(&c, &tenant);
    match &decision.outcome {
        Outcome::Requirements { requirements } => {
            assert_eq!(requirements.len(), 1);
            let strength = requirements[0].strengths().next().unwrap();
            assert_eq!(strength.id, PHISHING_RESISTANT_STRENGTH_ID);
            assert_eq!(requirements[0].policy_ids, [ENFORCEMENT]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        trace(&decision, UNSUPPORTED_PLATFORMS).result,
        AppliedPolicyResult::NotApplied
    );
    // The report-only "MFA for all users" policy would be satisfied by the TAP.
    assert_eq!(
        trace(&decision, "d3f9b5c4-6e70-4182-8c93-b4d5e6f70819").result,
        AppliedPolicyResult::ReportOnlySuccess
    );
    assert_eq!(
        trace(&decision, "e40ac6d5-7f81-4293-9da4-c5e6f708192a").result,
        AppliedPolicyResult::NotEnabled
    );
}

#[test]
fn with_the_new_passkey_she_is_signed_in_on_windows() {
    let tenant = design_tenant();
    let mut c = joni(Some(DevicePlatform::Windows));
    c.methods = vec![SatisfiedMethod::passkey(AUTHENTICATOR_IOS)];
    let decision = evaluate(&c, &tenant);
    assert_eq!(decision.outcome, Outcome::Grant);
    assert_eq!(
        trace(&decision, ENFORCEMENT).result,
        AppliedPolicyResult::Success
    );
    assert!(matches!(
        trace(&decision, ENFORCEMENT).enforced_grant_controls[..],
        [Control::AuthenticationStrength(ref s)] if s.id == PHISHING_RESISTANT_STRENGTH_ID
    ));
}

#[test]
fn from_android_ios_or_an_unknown_platform_she_is_blocked_by_the_platform_policy() {
    let tenant = design_tenant();
    for platform in [
        Some(DevicePlatform::Android),
        Some(DevicePlatform::IOS),
        Some(DevicePlatform::MacOS),
        None,
    ] {
        let mut c = joni(platform.clone());
        c.methods = vec![SatisfiedMethod::passkey(AUTHENTICATOR_ANDROID)];
        match evaluate(&c, &tenant).outcome {
            Outcome::Block { policies } => {
                assert_eq!(policies.len(), 1, "{platform:?}");
                assert_eq!(policies[0].policy_id, UNSUPPORTED_PLATFORMS);
                assert_eq!(
                    policies[0].display_name,
                    "Passkey test: unsupported platforms"
                );
                assert_eq!(policies[0].reason, BlockReason::BlockControl);
            }
            other => panic!("{platform:?}: {other:?}"),
        }
    }
}

#[test]
fn registering_security_info_with_the_tap_asks_for_the_strength_to_be_registered() {
    // Only the two DESIGN policies: "All resources" reaches the security-info action, so the
    // strength to meet is phishing-resistant; core turns that into the registration interrupt.
    let tenant = design_tenant();
    let mut c = joni(Some(DevicePlatform::Windows));
    c.target = Target::UserAction(UserAction::RegisterSecurityInformation);
    c.methods = vec![SatisfiedMethod::new(
        portcullis_policy::AuthenticationMethodMode::TemporaryAccessPassOneTime,
    )];
    assert!(matches!(
        evaluate(&c, &tenant).outcome,
        Outcome::Requirements { .. }
    ));
}

#[test]
fn the_break_glass_account_and_other_users_are_out_of_scope() {
    let tenant = design_tenant();
    let mut c = joni(Some(DevicePlatform::Android));
    c.user_id = BREAKGLASS.to_owned();
    assert_eq!(evaluate(&c, &tenant).outcome, Outcome::Grant);
    let mut c = joni(Some(DevicePlatform::Android));
    c.group_ids = vec![STAFF.to_owned()];
    assert_eq!(evaluate(&c, &tenant).outcome, Outcome::Grant);
}
