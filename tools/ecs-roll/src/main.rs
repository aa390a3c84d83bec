//! `ecs-roll`: see the crate documentation in `lib.rs`.

fn main() -> std::process::ExitCode {
    common::main::<ecs_roll::EcsRoll>()
}
