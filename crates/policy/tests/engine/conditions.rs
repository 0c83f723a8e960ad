//! Platforms, locations, client apps and risk levels.

use std::net::IpAddr;

use portcullis_policy::graph::import_named_locations;
use portcullis_policy::location::{IpNamedLocation, IpRange, LocationError};
use portcullis_policy::{
    AnalysisReason, ClientAppType, DevicePlatform, NamedLocation, PolicySet, RiskLevel, evaluate,
    named_locations_containing,
};
use serde_json::json;

use crate::support::*;

fn with_platforms(
    include: &[&str],
    exclude: &[&str],
) -> portcullis_policy::ConditionalAccessPolicy {
    policy(
        "p",
        json!({"conditions": {"platforms": {"includePlatforms": include, "excludePlatforms": exclude}}}),
    )
}

#[test]
fn table_of_platform_rules() {
    use DevicePlatform::*;
    const SUPPORTED: [&str; 6] = [
        "android",
        "iOS",
        "windows",
        "macOS",
        "linux",
        "windowsPhone",
    ];
    type Case = (
        &'static str,
        &'static [&'static str],
        &'static [&'static str],
        Option<DevicePlatform>,
        bool,
    );
    let cases: Vec<Case> = vec![
        ("android included", &["android"], &[], Some(Android), true),
        ("iOS not in android", &["android"], &[], Some(IOS), false),
        ("unknown not in android", &["android"], &[], None, false),
        ("unknown matches all", &["all"], &[], None, true),
        (
            "windows excluded from all",
            &["all"],
            &["windows"],
            Some(Windows),
            false,
        ),
        (
            "android in all except windows",
            &["all"],
            &["windows"],
            Some(Android),
            true,
        ),
        (
            "unknown in all except windows",
            &["all"],
            &["windows"],
            None,
            true,
        ),
        (
            "ChromeOS pattern: unknown caught",
            &["all"],
            &SUPPORTED,
            None,
            true,
        ),
        (
            "ChromeOS pattern: linux spared",
            &["all"],
            &SUPPORTED,
            Some(Linux),
            false,
        ),
        (
            "exclusion beats inclusion",
            &["iOS"],
            &["iOS"],
            Some(IOS),
            false,
        ),
        (
            "exclusions alone mean all except",
            &[],
            &["macOS"],
            Some(Windows),
            true,
        ),
        (
            "exclusions alone still exclude",
            &[],
            &["macOS"],
            Some(MacOS),
            false,
        ),
        (
            "exclude all excludes unknown",
            &["all"],
            &["all"],
            None,
            false,
        ),
        ("unconfigured matches unknown", &[], &[], None, true),
        (
            "future platform value never matches a known one",
            &["holoLens"],
            &[],
            Some(Windows),
            false,
        ),
    ];
    for (name, include, exclude, platform, expected) in cases {
        let mut c = ctx();
        c.platform = platform;
        assert_eq!(
            applies(with_platforms(include, exclude), &c),
            expected,
            "{name}"
        );
    }
}

fn tenant_locations() -> Vec<NamedLocation> {
    import_named_locations(&fixture_bytes("namedLocations.json")).expect("locations")
}

const HEAD_OFFICE: &str = "3c4d5e6f-7081-4923-a4b5-c6d7e8f90a1b";
const PARTNER_VPN: &str = "4d5e6f70-8192-4a34-b5c6-d7e8f90a1b2c";
const BLOCKED_COUNTRIES: &str = "5e6f7081-92a3-4b45-86d7-e8f90a1b2c3d";

fn located(set: &PolicySet, ip: &str, country: Option<&str>) -> portcullis_policy::SignInContext {
    let mut c = ctx();
    let ip: IpAddr = ip.parse().unwrap();
    c.ip_address = Some(ip);
    c.country = country.map(str::to_owned);
    c.named_locations = set.locations_for(ip, country);
    c
}

#[test]
fn named_location_helper() {
    let locations = tenant_locations();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(
        named_locations_containing(ip("203.0.113.77"), Some("NL"), &locations),
        vec![HEAD_OFFICE]
    );
    assert_eq!(
        named_locations_containing(ip("2001:db8:1234:5::1"), None, &locations),
        vec![HEAD_OFFICE, BLOCKED_COUNTRIES]
    );
    assert_eq!(
        named_locations_containing(ip("198.51.100.20"), Some("US"), &locations),
        vec![PARTNER_VPN]
    );
    assert!(named_locations_containing(ip("198.51.100.40"), Some("US"), &locations).is_empty());
    assert_eq!(
        named_locations_containing(ip("192.0.2.1"), Some("kp"), &locations),
        vec![BLOCKED_COUNTRIES]
    );
    // Unknown country counts only where the location says so.
    assert_eq!(
        named_locations_containing(ip("192.0.2.1"), None, &locations),
        vec![BLOCKED_COUNTRIES]
    );
}

#[test]
fn named_location_limits() {
    let with = |ranges: Vec<IpRange>| {
        NamedLocation::Ip(IpNamedLocation {
            id: "x".into(),
            display_name: "x".into(),
            ip_ranges: ranges,
            ..Default::default()
        })
    };
    assert!(with(vec![IpRange::new("10.0.0.0/9")]).validate().is_ok());
    assert_eq!(
        with(vec![IpRange::new("10.0.0.0/8")]).validate(),
        Err(LocationError::MaskTooShort("10.0.0.0/8".into()))
    );
    assert!(matches!(
        with(vec![IpRange::new("10.0.0.0")]).validate(),
        Err(LocationError::InvalidCidr(_))
    ));
    assert!(matches!(
        with(vec![IpRange::new("2001:db8::/8")]).validate(),
        Err(LocationError::MaskTooShort(_))
    ));
    let many: Vec<IpRange> = (0..2001)
        .map(|i| IpRange::new(&format!("10.{}.{}.0/24", i / 256, i % 256)))
        .collect();
    assert_eq!(with(many[..2000].to_vec()).validate(), Ok(()));
    assert_eq!(
        with(many).validate(),
        Err(LocationError::TooManyRanges(2001))
    );
    // Import refuses a location Entra would refuse, naming the member.
    let bad = br##"{"@odata.type":"#microsoft.graph.ipNamedLocation","displayName":"x","ipRanges":[{"cidrAddress":"1.0.0.0/8"}]}"##;
    let error = import_named_locations(bad).unwrap_err();
    assert_eq!(error.field().as_deref(), Some("ipRanges"), "{error}");
}

#[test]
fn table_of_location_rules() {
    let set_for = |include: &[&str], exclude: &[&str]| {
        PolicySet::new(
            vec![policy(
                "p",
                json!({"conditions": {"locations": {"includeLocations": include, "excludeLocations": exclude}}}),
            )],
            Vec::new(),
            tenant_locations(),
        )
    };
    type Case = (
        &'static str,
        &'static [&'static str],
        &'static [&'static str],
        &'static str,
        Option<&'static str>,
        bool,
    );
    let cases: Vec<Case> = vec![
        ("any location", &["All"], &[], "192.0.2.1", Some("US"), true),
        (
            "trusted excluded: office",
            &["All"],
            &["AllTrusted"],
            "203.0.113.5",
            None,
            false,
        ),
        (
            "trusted excluded: elsewhere",
            &["All"],
            &["AllTrusted"],
            "192.0.2.1",
            Some("US"),
            true,
        ),
        (
            "untrusted named location is not trusted",
            &["All"],
            &["AllTrusted"],
            "198.51.100.17",
            Some("US"),
            true,
        ),
        (
            "include a named location",
            &[PARTNER_VPN],
            &[],
            "198.51.100.17",
            Some("US"),
            true,
        ),
        (
            "outside the named location",
            &[PARTNER_VPN],
            &[],
            "192.0.2.1",
            Some("US"),
            false,
        ),
        (
            "country location",
            &[BLOCKED_COUNTRIES],
            &[],
            "192.0.2.1",
            Some("IR"),
            true,
        ),
        (
            "other country",
            &[BLOCKED_COUNTRIES],
            &[],
            "192.0.2.1",
            Some("DE"),
            false,
        ),
        (
            "exclusion beats inclusion",
            &[HEAD_OFFICE],
            &[HEAD_OFFICE],
            "203.0.113.5",
            None,
            false,
        ),
        (
            "include trusted",
            &["AllTrusted"],
            &[],
            "203.0.113.5",
            None,
            true,
        ),
    ];
    for (name, include, exclude, ip, country, expected) in cases {
        let set = set_for(include, exclude);
        let decision = evaluate(&located(&set, ip, country), &set);
        assert_eq!(trace(&decision, "p").applies, expected, "{name}");
    }
}

#[test]
fn a_location_condition_without_an_ip_does_not_apply() {
    let set = PolicySet::new(
        vec![policy(
            "p",
            json!({"conditions": {"locations": {"includeLocations": ["All"], "excludeLocations": []}}}),
        )],
        Vec::new(),
        tenant_locations(),
    );
    let decision = evaluate(&ctx(), &set);
    let t = trace(&decision, "p");
    assert!(!t.applies);
    assert_eq!(t.analysis_reason(), AnalysisReason::NotEnoughInformation);
}

#[test]
fn table_of_client_app_rules() {
    use ClientAppType::*;
    let cases: Vec<(&[&str], ClientAppType, bool)> = vec![
        (&["all"], Browser, true),
        (&["all"], All, true),
        (&["browser"], Browser, true),
        (&["browser"], MobileAppsAndDesktopClients, false),
        (
            &["mobileAppsAndDesktopClients"],
            MobileAppsAndDesktopClients,
            true,
        ),
        (&["exchangeActiveSync", "other"], ExchangeActiveSync, true),
        (&["exchangeActiveSync", "other"], OtherClients, true),
        (&["exchangeActiveSync", "other"], Browser, false),
        (&["easSupported"], ExchangeActiveSync, true),
        (&["browser"], All, false),
        (&[], MobileAppsAndDesktopClients, true),
    ];
    for (types, client, expected) in cases {
        let mut c = ctx();
        c.client_app_type = client.clone();
        let p = policy("p", json!({"conditions": {"clientAppTypes": types}}));
        assert_eq!(applies(p, &c), expected, "{types:?} vs {client}");
    }
}

#[test]
fn table_of_risk_rules() {
    use RiskLevel::*;
    let cases: Vec<(&[&str], RiskLevel, bool)> = vec![
        (&[], High, true),
        (&[], None, true),
        (&["high"], High, true),
        (&["high"], None, false),
        (&["medium", "high"], Medium, true),
        (&["low"], Medium, false),
    ];
    for (levels, level, expected) in cases {
        let mut c = ctx();
        c.sign_in_risk = level.clone();
        assert_eq!(
            applies(
                policy("p", json!({"conditions": {"signInRiskLevels": levels}})),
                &c
            ),
            expected
        );
        let mut c = ctx();
        c.user_risk = level.clone();
        assert_eq!(
            applies(
                policy("p", json!({"conditions": {"userRiskLevels": levels}})),
                &c
            ),
            expected
        );
    }
}
