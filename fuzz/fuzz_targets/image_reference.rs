//! The image-reference parser (`common::reference::Reference::parse`): any text is a
//! reference or an error; a reference's normalized form parses again to the same one.
#![no_main]

use common::reference::Reference;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(reference) = Reference::parse(text) {
        let normalized = reference.normalized();
        let again = Reference::parse(&normalized)
            .unwrap_or_else(|e| panic!("{text:?} normalizes to {normalized:?}, which fails: {e}"));
        assert_eq!(again.normalized(), normalized, "{text:?}");
        let _ = (
            reference.name(),
            reference.repository(),
            reference.familiar_repository(),
        );
    }
});
