//! Fuzz target: a chunk set ("CKCS"); a decoded delta is applied to a fixed base, which must
//! fail cleanly or give sorted, unique ids.
#![no_main]

use cloudkeep_repo::chunkset::ChunkSetFile;
use cloudkeep_repo::crypto::ChunkId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(set) = ChunkSetFile::decode(data) {
        let base: Vec<ChunkId> = (0..8u8).map(|n| ChunkId([n; 32])).collect();
        if let Ok(ids) = set.apply(&base) {
            assert!(ids.windows(2).all(|w| w[0] < w[1]));
        }
    }
});
