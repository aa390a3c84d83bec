//! The manifest reader (`k8s_apply::manifests::parse`): any text gives manifests or an error
//! naming where, never a panic; every manifest it returns has a kind and a name.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(manifests) = k8s_apply::manifests::parse("fuzz.yaml", text) {
        for manifest in &manifests {
            assert!(!manifest.kind().is_empty(), "{text:?}");
            assert!(!manifest.name().is_empty(), "{text:?}");
            let _ = (
                manifest.api_version(),
                manifest.namespace(),
                manifest.display_name(),
            );
        }
        let _ = k8s_apply::manifests::refuse_duplicates(&manifests);
    }
});
