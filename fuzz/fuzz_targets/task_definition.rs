//! The task-definition file reader (`ecs_roll::files::read_task_definition`): any file gives
//! a task definition or a usage error naming the file, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// One runtime and one file for the whole run: making them for every input would be most of
/// the work of an iteration.
struct Fixture {
    runtime: tokio::runtime::Runtime,
    file: tempfile::NamedTempFile,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| Fixture {
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime"),
        file: tempfile::NamedTempFile::new().expect("a temporary file"),
    })
}

fuzz_target!(|data: &[u8]| {
    let Fixture { runtime, file } = fixture();
    std::fs::write(file.path(), data).expect("write the file");
    if let Err(error) = runtime.block_on(ecs_roll::files::read_task_definition(file.path())) {
        // What it refuses is bad input (exit 2), never anything else.
        assert!(matches!(error, common::Error::Usage(_)), "{error}");
    }
});
