fn main() -> std::process::ExitCode {
    common::main::<img_push::ImgPush>()
}
