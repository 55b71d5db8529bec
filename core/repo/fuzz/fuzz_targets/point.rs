//! Fuzz target: a restore point file ("CKRP") with its manifest.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cloudkeep_repo::repo::decode_point(keys::keys(), "fuzz", data);
});

#[path = "keys.rs"]
mod keys;
