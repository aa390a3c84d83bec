//! `release-tag`: see the crate documentation in `lib.rs`.

fn main() -> std::process::ExitCode {
    common::main::<release_tag::ReleaseTag>()
}
