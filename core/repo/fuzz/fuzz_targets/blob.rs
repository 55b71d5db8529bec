//! Fuzz target: a stored blob (compression flag, zstd frame, length checks) as read from a pack.
#![no_main]

use cloudkeep_repo::crypto::ChunkId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cloudkeep_repo::blob::open(keys::keys(), &ChunkId([7; 32]), data);
});

#[path = "keys.rs"]
mod keys;
