//! Fuzz target: a keyring (JSON). Whatever parses must serialise and parse back the same,
//! and an unencrypted keyring's key must unwrap without panicking.
#![no_main]

use cloudkeep_repo::crypto::Keyring;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(keyring) = Keyring::from_json(text) {
        let again = Keyring::from_json(&keyring.to_json()).expect("a parsed keyring round-trips");
        assert_eq!(again.to_json(), keyring.to_json());
        if !keyring.is_encrypted() {
            let _ = keyring.unlock_unencrypted();
        }
    }
});
