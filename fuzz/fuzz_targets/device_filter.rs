//! Device-filter rules: any text parses to a rule or an error, never a panic or a stack
//! overflow, and a parsed rule evaluates on registered and unregistered devices.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_policy::DeviceFacts;
use portcullis_policy::device_filter::Rule;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(rule) = Rule::parse(&text) else { return };
    let mut device = DeviceFacts {
        display_name: Some("LAPTOP-Ω".into()),
        trust_type: Some("AzureAD".into()),
        is_compliant: Some(true),
        physical_ids: vec!["[ZTDId]:x".into()],
        ..DeviceFacts::default()
    };
    device.extension_attributes[0] = Some("SAW".into());
    let _ = rule.matches(None);
    let _ = rule.matches(Some(&device));
});
