//! `health-wait`: see the crate documentation in `lib.rs`.

fn main() -> std::process::ExitCode {
    common::main::<health_wait::HealthWait>()
}
