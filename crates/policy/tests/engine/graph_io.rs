//! Graph JSON in and out: encodings, shapes, annotations, errors, and the identity
//! import → export → import on the fixture folder of Entra-shaped exports.

use portcullis_policy::graph::{
    ImportError, decode_text, export_collection, export_named_locations, export_policies,
    export_strengths, import_any, import_named_locations, import_policies, import_strengths,
};
use portcullis_policy::{ConditionalAccessPolicy, NamedLocation, PolicyState};

use crate::support::*;

fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

#[test]
fn the_fixture_folder_reads_without_edits() {
    let mut policies = 0;
    let mut strengths = 0;
    let mut locations = 0;
    for name in fixture_names() {
        let imported = import_any(&fixture_bytes(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        policies += imported.policies.len();
        strengths += imported.strengths.len();
        locations += imported.named_locations.len();
    }
    assert_eq!((policies, strengths, locations), (6, 3, 3));
    let exported = import_policies(&fixture_bytes("policies.json")).unwrap();
    let names: Vec<&str> = exported.iter().map(|p| p.display_name.as_str()).collect();
    assert_eq!(
        names[..2],
        [
            "Passkey test: enforcement",
            "Passkey test: unsupported platforms"
        ]
    );
    assert_eq!(
        exported[2].state,
        PolicyState::EnabledForReportingButNotEnforced
    );
}

#[test]
fn import_export_import_is_the_identity_on_fixtures() {
    for name in fixture_names() {
        let first = import_any(&fixture_bytes(&name)).unwrap();
        let again_policies = import_policies(export_policies(&first.policies).as_bytes()).unwrap();
        let again_strengths =
            import_strengths(export_strengths(&first.strengths).as_bytes()).unwrap();
        let again_locations =
            import_named_locations(export_named_locations(&first.named_locations).as_bytes())
                .unwrap();
        assert_eq!(again_policies, first.policies, "{name}");
        assert_eq!(again_strengths, first.strengths, "{name}");
        assert_eq!(again_locations, first.named_locations, "{name}");
    }
}

#[test]
fn export_keeps_annotations_and_unmodelled_members() {
    let policies = import_policies(&fixture_bytes("policies.json")).unwrap();
    let json = export_collection(&policies);
    let first = &json["value"][0];
    assert!(first.as_object().unwrap().contains_key("templateId"));
    assert!(
        first["grantControls"]
            .as_object()
            .unwrap()
            .contains_key("authenticationStrength@odata.context")
    );
    assert_eq!(
        first["grantControls"]["authenticationStrength"]["allowedCombinations"][1],
        "fido2"
    );
    assert_eq!(first["conditions"]["platforms"], serde_json::Value::Null);
    let report_only = &json["value"][2];
    assert_eq!(
        report_only["sessionControls"]["signInFrequency"]["type"],
        "hours"
    );
    let beta = import_policies(&fixture_bytes("policy-security-info-beta.json")).unwrap();
    let exported = export_collection(&beta);
    assert!(
        exported["value"][0]["@odata.context"]
            .as_str()
            .unwrap()
            .contains("beta")
    );
    assert_eq!(
        exported["value"][0]["description"],
        "Register security info only from trusted locations, or with MFA (TAP counts)"
    );
    let locations = import_named_locations(&fixture_bytes("namedLocations.json")).unwrap();
    let exported = export_collection(&locations);
    assert_eq!(
        exported["value"][0]["@odata.type"],
        "#microsoft.graph.ipNamedLocation"
    );
    assert_eq!(
        exported["value"][2]["@odata.type"],
        "#microsoft.graph.countryNamedLocation"
    );
    assert!(matches!(locations[2], NamedLocation::Country(_)));
}

#[test]
fn encodings() {
    let json = r#"{"displayName":"é","state":"enabled","conditions":{}}"#;
    let utf16le: Vec<u8> = json.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let utf16be: Vec<u8> = json.encode_utf16().flat_map(u16::to_be_bytes).collect();
    let with_bom = |bom: &[u8], body: &[u8]| [bom, body].concat();
    for bytes in [
        json.as_bytes().to_vec(),
        with_bom(&[0xEF, 0xBB, 0xBF], json.as_bytes()),
        with_bom(&[0xFF, 0xFE], &utf16le),
        with_bom(&[0xFE, 0xFF], &utf16be),
        utf16le.clone(),
        utf16be.clone(),
    ] {
        let policies = import_policies(&bytes).unwrap();
        assert_eq!(policies[0].display_name, "é");
    }
    assert!(matches!(
        decode_text(&[0xFF, 0xFE, 0x00]),
        Err(ImportError::Encoding(_))
    ));
    assert!(matches!(
        decode_text(&[0xFF, 0xFE, 0x00, 0xD8]),
        Err(ImportError::Encoding(_))
    ));
    assert!(matches!(
        decode_text(&[0xC3, 0x28]),
        Err(ImportError::Encoding(_))
    ));
}

#[test]
fn document_shapes() {
    let one = r#"{"state":"enabled","conditions":{}}"#;
    let array = format!("[{one},{one}]");
    let collection =
        format!(r#"{{"@odata.context":"x","@odata.nextLink":"y","value":[{one},{one},{one}]}}"#);
    assert_eq!(import_policies(one.as_bytes()).unwrap().len(), 1);
    assert_eq!(import_policies(array.as_bytes()).unwrap().len(), 2);
    assert_eq!(import_policies(collection.as_bytes()).unwrap().len(), 3);
    assert_eq!(import_policies(br#"{"value":[]}"#).unwrap().len(), 0);
}

#[test]
fn nulls_read_as_not_configured() {
    let p: ConditionalAccessPolicy = serde_json::from_str(
        r#"{"id":null,"displayName":null,"state":"enabled","conditions":{"users":{"includeUsers":null,"excludeUsers":null},
            "applications":null,"clientAppTypes":null,"signInRiskLevels":null,"userRiskLevels":null,"platforms":null},
            "grantControls":{"operator":null,"builtInControls":null,"authenticationStrength":null},"sessionControls":null}"#,
    )
    .unwrap();
    assert!(p.conditions.users.unwrap().include_users.is_empty());
    assert!(p.grant_controls.unwrap().is_empty());
}

#[test]
fn errors_name_the_item_and_field() {
    let cases: Vec<(&str, &str)> = vec![
        (
            r#"{"value":[{"state":"enabled","conditions":{}},{"state":"enabled","conditions":{"users":{"includeUsers":5}}}]}"#,
            "value[1].conditions.users.includeUsers",
        ),
        (r#"{"state":"enabled"}"#, "document"),
        (r#"{"state":["enabled"],"conditions":{}}"#, "state"),
        (
            r#"{"state":"enabled","conditions":{"platforms":{"includePlatforms":[true]}}}"#,
            "conditions.platforms.includePlatforms[0]",
        ),
    ];
    for (json, field) in cases {
        let error = import_policies(json.as_bytes()).unwrap_err();
        assert_eq!(error.field().as_deref(), Some(field), "{error}");
    }
    assert!(error_message(r#"{"state":"enabled"}"#).contains("conditions"));
    assert!(matches!(
        import_policies(b"{not json"),
        Err(ImportError::Syntax(_))
    ));
    assert!(import_any(br#"{"hello":"world"}"#).is_err());
}

fn error_message(json: &str) -> String {
    import_policies(json.as_bytes()).unwrap_err().to_string()
}

#[test]
fn unknown_enum_members_are_kept() {
    let p = import_policies(br#"{"state":"enabled","conditions":{"platforms":{"includePlatforms":["visionOS"]},"clientAppTypes":["unknownFutureValue"]},"grantControls":{"operator":"OR","builtInControls":["riskRemediation","brandNew"]}}"#).unwrap();
    let exported = export_policies(&p);
    assert!(
        exported.contains("visionOS")
            && exported.contains("brandNew")
            && exported.contains("riskRemediation")
    );
    assert_eq!(import_policies(exported.as_bytes()).unwrap(), p);
}

/// Inputs the fuzzer once broke, kept so they stay fixed: whatever imports must export and
/// import again to the same objects, each of the same kind.
#[test]
fn fuzz_regressions_round_trip() {
    use portcullis_policy::graph::{
        export_named_locations, export_policies, export_strengths, import_any,
    };
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz-regressions");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("the regressions folder exists") {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let Ok(imported) = import_any(&bytes) else {
            continue;
        };
        let again = import_any(export_policies(&imported.policies).as_bytes()).unwrap();
        assert_eq!(again.policies, imported.policies);
        let again = import_any(export_strengths(&imported.strengths).as_bytes()).unwrap();
        assert_eq!(again.strengths, imported.strengths);
        let again =
            import_any(export_named_locations(&imported.named_locations).as_bytes()).unwrap();
        assert_eq!(again.named_locations, imported.named_locations);
        checked += 1;
    }
    assert!(checked > 0, "at least one regression input imports");
}

#[test]
fn a_null_member_does_not_decide_the_kind() {
    use portcullis_policy::graph::{ObjectKind, classify};
    let policy = serde_json::json!({"displayName": "p", "state": "enabled", "policyType": null, "conditions": {}});
    assert_eq!(classify(&policy), Some(ObjectKind::Policy));
    let location = serde_json::json!({"displayName": "l", "ipRanges": null, "conditions": {}});
    assert_eq!(classify(&location), Some(ObjectKind::Policy));
}
