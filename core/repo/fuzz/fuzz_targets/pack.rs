//! Fuzz target: a whole pack ("CKPK" … "CKPE"), named by its own hash so that the parser
//! gets past the identity check to the header, footer and index.
#![no_main]

use cloudkeep_repo::pack::{self, PackId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let keys = keys::keys();
    let _ = pack::parse(keys, &PackId::of(data), data);
});

#[path = "keys.rs"]
mod keys;
