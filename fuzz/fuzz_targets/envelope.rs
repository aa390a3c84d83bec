//! The envelope reader (`common::input::parse_input`): any bytes on stdin give a typed
//! envelope, an upstream failure or a usage error, never a panic; an envelope it accepts is
//! written out (as the next tool in the pipeline gets it) and read back unchanged.
#![no_main]

use common::input::{Input, parse_input};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Input::Envelope(envelope)) = parse_input(data.to_vec(), "fuzz") {
        let written = serde_json::to_vec(&envelope).expect("an envelope serializes");
        match parse_input(written.clone(), "fuzz-again") {
            Ok(Input::Envelope(again)) => assert_eq!(
                again,
                envelope,
                "read back differently: {}",
                String::from_utf8_lossy(&written)
            ),
            Ok(Input::UpstreamFailed { .. }) => panic!(
                "an envelope written out reads back as a failure: {}",
                String::from_utf8_lossy(&written)
            ),
            Err(e) => panic!(
                "an envelope written out does not read back ({e}): {}",
                String::from_utf8_lossy(&written)
            ),
        }
    }
});
