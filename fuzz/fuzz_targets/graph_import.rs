//! Graph JSON import: any bytes give policies or an error, never a panic; whatever imports
//! exports and imports again to the same value, and can be compiled and evaluated.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_policy::graph::{
    export_named_locations, export_policies, export_strengths, import_any,
};
use portcullis_policy::{PolicySet, SignInContext, Target, evaluate};

fuzz_target!(|data: &[u8]| {
    let Ok(imported) = import_any(data) else {
        return;
    };
    let again = import_any(export_policies(&imported.policies).as_bytes())
        .expect("exported policies import");
    assert_eq!(again.policies, imported.policies);
    let again = import_any(export_strengths(&imported.strengths).as_bytes())
        .expect("exported strengths import");
    assert_eq!(again.strengths, imported.strengths);
    let again = import_any(export_named_locations(&imported.named_locations).as_bytes())
        .expect("exported locations import");
    assert_eq!(again.named_locations, imported.named_locations);
    let set = PolicySet::new(
        imported.policies,
        imported.strengths,
        imported.named_locations,
    );
    let ctx = SignInContext::new(
        "11111111-1111-4111-8111-111111111111",
        Target::Application("app".into()),
    );
    let decision = evaluate(&ctx, &set);
    assert_eq!(decision.trace.len(), set.policies().len());
});
