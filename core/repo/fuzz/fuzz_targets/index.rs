//! Fuzz target: an index file ("CKIX").
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cloudkeep_repo::repo::decode_index(keys::keys(), data);
});

#[path = "keys.rs"]
mod keys;
