//! The conventional-commit parser (`release_tag::conventional::parse`): any commit message,
//! merge or not, gives a message with a bump level, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (bool, &str)| {
    let (merge, text) = input;
    let message = release_tag::conventional::parse(text, merge);
    let _ = message.level();
});
