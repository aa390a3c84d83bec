//! `k8s-apply`: see the crate documentation in `lib.rs`.

fn main() -> std::process::ExitCode {
    common::main::<k8s_apply::K8sApply>()
}
