//! Fuzz target: a folder listing (tree blob plaintext, "CKTR"); decoding never panics, and
//! whatever decodes encodes back to a listing that decodes to the same entries.
#![no_main]

use cloudkeep_repo::catalog;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(part) = catalog::decode_part(data) {
        let parts = catalog::encode_dir(part.nodes.clone()).expect("a decoded listing re-encodes");
        let again: Vec<_> = parts
            .iter()
            .flat_map(|p| catalog::decode_part(p).expect("re-encoded parts decode").nodes)
            .collect();
        assert_eq!(again, part.nodes);
    }
});
