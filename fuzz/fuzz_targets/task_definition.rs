//! The task-definition file reader (`ecs_roll::files::read_task_definition`): any file gives
//! a task definition or a usage error naming the file, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    let mut file = tempfile::NamedTempFile::new().expect("a temporary file");
    file.write_all(data).expect("write the file");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let _ = runtime.block_on(ecs_roll::files::read_task_definition(file.path()));
});
