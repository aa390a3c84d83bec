//! The manifest reader (k8s-apply's `manifests::parse`): any text gives manifests or an error
//! naming where, never a panic; every manifest it returns has a kind and a name.
#![no_main]

// k8s-apply's own source file, compiled here without the rest of k8s-apply (kube,
// aws-sdk-eks): the module is pure and needs only serde, serde_yaml_ng and k8s-openapi.
#[allow(dead_code)]
#[path = "../../tools/k8s-apply/src/manifests.rs"]
mod manifests;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(manifests) = manifests::parse("fuzz.yaml", text) {
        for manifest in &manifests {
            assert!(!manifest.kind().trim().is_empty(), "{text:?}");
            assert!(!manifest.name().trim().is_empty(), "{text:?}");
            assert!(!manifest.api_version().trim().is_empty(), "{text:?}");
            let _ = manifest.display_name();
        }
        let _ = manifests::refuse_duplicates(&manifests);
    }
});
