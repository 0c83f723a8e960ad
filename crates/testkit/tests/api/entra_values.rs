//! Entra's values on named locations and authentication strengths: a create or a change that
//! gives a known field a value Entra would refuse (a country that is not an ISO code, a lookup
//! method or range type Graph does not have, a combination of methods that does not exist, one
//! named twice) is a 400 naming the field and what it takes, and changes nothing; a field this
//! server does not know is kept, as an import keeps it.

use portcullis_testkit::fixtures::id;
use portcullis_testkit::{Reply, StatusCode, TestServer};
use serde_json::{Value, json};

const LOCATIONS: &str = "/identity/conditionalAccess/namedLocations";
const STRENGTHS: &str = "/policies/authenticationStrengthPolicies";

/// The refusal names `field` as its target, and its message says what the field takes.
fn refused(reply: &Reply, field: &str, takes: &str) {
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "{field}: {:?}",
        reply.body
    );
    assert_eq!(reply.error_target(), Some(field), "{:?}", reply.body);
    let message = reply.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(takes), "{field}: {message}");
}

fn country(countries: Value) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.countryNamedLocation",
        "displayName": "Nordics",
        "countriesAndRegions": countries,
    })
}

#[tokio::test]
async fn a_named_location_takes_only_entras_values_and_a_refusal_changes_nothing() {
    let t = TestServer::start().await;
    let kept = t
        .post(
            LOCATIONS,
            json!({
                "@odata.type": "#microsoft.graph.countryNamedLocation",
                "displayName": "Nordics",
                "countriesAndRegions": ["SE", "no", "FI"],
                "countryLookupMethod": "clientIpAddress",
                "portcullisFutureField": {"kept": true}
            }),
        )
        .await;
    assert_eq!(kept.status, StatusCode::CREATED, "{:?}", kept.body);
    let office = t
        .post(
            LOCATIONS,
            json!({
                "@odata.type": "#microsoft.graph.ipNamedLocation",
                "displayName": "Office",
                "isTrusted": true,
                "ipRanges": [{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "203.0.113.0/24"}]
            }),
        )
        .await;
    assert_eq!(office.status, StatusCode::CREATED, "{:?}", office.body);
    let before = t.get(LOCATIONS).await.body;
    assert_eq!(before["value"][0]["portcullisFutureField"]["kept"], true);

    let with = |field: &str, value: Value| {
        let mut body = country(json!(["SE"]));
        body[field] = value;
        body
    };
    let bad_creates = [
        (
            country(json!(["SE", "UK"])),
            "countriesAndRegions[1]",
            "ISO 3166-1 alpha-2",
        ),
        (
            country(json!(["Sweden"])),
            "countriesAndRegions[0]",
            "ISO 3166-1 alpha-2",
        ),
        (
            with("countryLookupMethod", json!("carrierPigeon")),
            "countryLookupMethod",
            "clientIpAddress, authenticatorAppGps",
        ),
        (
            with("includeUnknownCountriesAndRegions", json!("maybe")),
            "includeUnknownCountriesAndRegions",
            "boolean",
        ),
        (
            with("isTrusted", json!(true)),
            "isTrusted",
            "only an ipNamedLocation",
        ),
        (
            json!({"@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "Lab",
                   "isTrusted": "yes", "ipRanges": [{"cidrAddress": "198.51.100.0/24"}]}),
            "isTrusted",
            "boolean",
        ),
        (
            json!({"@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "Lab",
                   "ipRanges": [{"cidrAddress": "198.51.100.300/24"}]}),
            "ipRanges",
            "CIDR",
        ),
        (
            json!({"@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "Lab",
                   "ipRanges": [{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "2001:db8::/48"}]}),
            "ipRanges[0].@odata.type",
            "#microsoft.graph.iPv6CidrRange",
        ),
    ];
    for (body, field, takes) in bad_creates {
        refused(&t.post(LOCATIONS, body).await, field, takes);
    }
    assert_eq!(
        t.get(LOCATIONS).await.body,
        before,
        "a refused create stored nothing"
    );

    let nordics = format!("{LOCATIONS}/{}", id(&kept.body));
    let bad_changes = [
        (
            nordics.clone(),
            json!({"countriesAndRegions": ["SE", "EU"]}),
            "countriesAndRegions[1]",
            "ISO 3166-1 alpha-2",
        ),
        (
            nordics.clone(),
            json!({"countryLookupMethod": "GPS"}),
            "countryLookupMethod",
            "authenticatorAppGps",
        ),
        (
            format!("{LOCATIONS}/{}", id(&office.body)),
            json!({"isTrusted": 1}),
            "isTrusted",
            "boolean",
        ),
    ];
    for (path, patch, field, takes) in bad_changes {
        refused(&t.patch(&path, patch).await, field, takes);
    }
    assert_eq!(
        t.get(LOCATIONS).await.body,
        before,
        "a refused change changed nothing"
    );

    // The portal's form reaches the same rule, and says it beside the field.
    let admin = crate::portal::admin(&t).await;
    let page = admin
        .post(
            "/admin/conditional-access/named-locations",
            &[
                ("displayName", "Elsewhere"),
                ("kind", "country"),
                ("countriesAndRegions", "SE\nUK"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(
        page.html
            .contains("is not a value of countriesAndRegions[1]"),
        "{}",
        page.html
    );
    assert_eq!(t.get(LOCATIONS).await.body, before);
    t.stop().await;
}

fn strength(combinations: Value) -> Value {
    json!({"displayName": "Keys and codes", "allowedCombinations": combinations})
}

#[tokio::test]
async fn a_strength_takes_only_entras_combinations_each_once_and_a_refusal_changes_nothing() {
    let t = TestServer::start().await;
    let kept = t
        .post(
            STRENGTHS,
            json!({
                "displayName": "Keys and codes",
                "allowedCombinations": ["fido2", "sms,password"],
                "combinationConfigurations": [{
                    "@odata.type": "#microsoft.graph.fido2CombinationConfiguration",
                    "appliesToCombinations": ["fido2"],
                    "allowedAAGUIDs": ["90a3ccdf-635c-4729-a248-9b709135078f"]
                }],
                "portcullisFutureField": 7
            }),
        )
        .await;
    assert_eq!(kept.status, StatusCode::CREATED, "{:?}", kept.body);
    assert_eq!(kept.body["portcullisFutureField"], 7);
    let before = t.get(STRENGTHS).await.body;

    let bad_creates = [
        (
            strength(json!(["fido2", "telepathy"])),
            "allowedCombinations[1]",
            "windowsHelloForBusiness",
        ),
        (
            strength(json!(["password,fido2"])),
            "allowedCombinations[0]",
            "password,softwareOath",
        ),
        (strength(json!([])), "allowedCombinations", "at least one"),
        (
            strength(json!(["fido2", "password,sms", "FIDO2"])),
            "allowedCombinations[2]",
            "allowedCombinations[0]",
        ),
        (
            strength(json!(["password,password"])),
            "allowedCombinations[0]",
            "password,sms",
        ),
        (
            json!({"displayName": "Keys", "allowedCombinations": ["fido2"],
                   "combinationConfigurations": [{
                       "@odata.type": "#microsoft.graph.fido2CombinationConfiguration",
                       "appliesToCombinations": ["fido2"], "allowedAAGUIDs": ["not-an-aaguid"]}]}),
            "combinationConfigurations[0].allowedAAGUIDs[0]",
            "GUID",
        ),
        (
            json!({"displayName": "Keys", "allowedCombinations": ["fido2"],
                   "combinationConfigurations": [{
                       "@odata.type": "#microsoft.graph.fido2CombinationConfiguration",
                       "appliesToCombinations": ["password,sms"], "allowedAAGUIDs": []}]}),
            "combinationConfigurations[0].appliesToCombinations[0]",
            "fido2",
        ),
        (
            json!({"displayName": "Keys", "allowedCombinations": ["sms"],
                   "combinationConfigurations": [{
                       "@odata.type": "#microsoft.graph.smsCombinationConfiguration",
                       "appliesToCombinations": ["sms"]}]}),
            "combinationConfigurations[0].@odata.type",
            "fido2CombinationConfiguration",
        ),
    ];
    for (body, field, takes) in bad_creates {
        refused(&t.post(STRENGTHS, body).await, field, takes);
    }
    assert_eq!(
        t.get(STRENGTHS).await.body,
        before,
        "a refused create stored nothing"
    );

    let path = format!("{STRENGTHS}/{}", id(&kept.body));
    for (patch, field, takes) in [
        (
            json!({"allowedCombinations": ["fido2", "voice"]}),
            "allowedCombinations[1]",
            "password,voice",
        ),
        (
            json!({"allowedCombinations": ["fido2", "fido2"]}),
            "allowedCombinations[1]",
            "allowedCombinations[0]",
        ),
        (
            json!({"allowedCombinations": []}),
            "allowedCombinations",
            "at least one",
        ),
    ] {
        refused(&t.patch(&path, patch).await, field, takes);
    }
    assert_eq!(
        t.get(STRENGTHS).await.body,
        before,
        "a refused change changed nothing"
    );
    t.stop().await;
}
