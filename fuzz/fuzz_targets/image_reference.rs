//! The image-reference parser (`common::reference::Reference::parse`): any text is a
//! reference or an error, never a panic; a reference prints as something that parses back to
//! it; its normalized form parses to itself; Docker Hub's short name for it reads back as the
//! same repository.
#![no_main]

use common::reference::{Reference, is_registry_host};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let Ok(reference) = Reference::parse(text) else {
        return;
    };
    let written = reference.to_string();
    assert_eq!(
        Reference::parse(&written).as_ref(),
        Ok(&reference),
        "{text:?} prints as {written:?}"
    );

    let normalized = reference.normalized();
    let again = Reference::parse(&normalized)
        .unwrap_or_else(|e| panic!("{text:?} normalizes to {normalized:?}, which fails: {e}"));
    assert_eq!(again.normalized(), normalized, "{text:?}");

    // Docker Hub's short names (`alpine`, `team/api`) read back as the same repository,
    // unless the namespace itself reads as a host (`docker.io/lib.rary/x` shows as
    // `lib.rary/x`, as Docker shows it too: Hub namespaces have no '.' or ':').
    let hub = matches!(
        reference.domain.as_deref(),
        None | Some("docker.io" | "index.docker.io")
    );
    let familiar = reference.familiar_repository();
    let host_like = familiar
        .split_once('/')
        .is_some_and(|(first, _)| is_registry_host(first));
    if hub && !host_like {
        let short = Reference::parse(&familiar)
            .unwrap_or_else(|e| panic!("{text:?}'s familiar name {familiar:?} fails: {e}"));
        assert_eq!(
            short.normalized_repository(),
            reference.normalized_repository(),
            "{text:?} shown as {familiar:?}"
        );
    }
});
