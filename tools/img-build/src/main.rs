//! `img-build`: see the crate documentation in `lib.rs`.

fn main() -> std::process::ExitCode {
    common::main::<img_build::ImgBuild>()
}
