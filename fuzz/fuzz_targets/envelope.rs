//! The envelope reader (`common::input::parse_input`): any bytes on stdin give a typed
//! envelope, an upstream failure or a usage error, never a panic; an envelope it accepts
//! survives being written out and read again.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(common::input::Input::Envelope(envelope)) =
        common::input::parse_input(data.to_vec(), "fuzz")
    {
        let written = serde_json::to_vec(&envelope).expect("an envelope serializes");
        match common::input::parse_input(written, "fuzz-again") {
            Ok(common::input::Input::Envelope(_)) => {}
            _ => panic!("an envelope written out does not read back"),
        }
    }
});
