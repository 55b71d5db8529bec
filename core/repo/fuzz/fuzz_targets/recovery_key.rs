//! Fuzz target: a recovery key as typed or read from its file ("CKRK1-…").
#![no_main]

use cloudkeep_repo::crypto::RecoveryKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(key) = RecoveryKey::parse(text)
    {
        assert_eq!(
            RecoveryKey::parse(&key.to_text()).map(|k| k.to_text()).ok(),
            Some(key.to_text())
        );
    }
});
