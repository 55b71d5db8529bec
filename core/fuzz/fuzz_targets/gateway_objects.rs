//! Fuzz target: a small object a tenant stores (the first byte picks keyring, index, chunk set
//! or lock; the rest is its bytes), through the gateway's checks; a keyring that passes is
//! merged over a real stored keyring as the gateway does, which must keep every old slot or
//! refuse.
#![no_main]

use cloudkeep_repo::backend::MetaKind;
use cloudkeep_repo::crypto::{KdfParams, Keyring};
use cloudkeep_gateway::tenant;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    let (kind, name) = match which % 4 {
        0 => (MetaKind::Keyring, "keyring".to_owned()),
        1 => (MetaKind::Index, blake3::hash(bytes).to_hex().to_string()),
        2 => (MetaKind::ChunkSet, blake3::hash(bytes).to_hex().to_string()),
        _ => (MetaKind::Lock, "shared-0".to_owned()),
    };
    if tenant::check_object(kind, &name, bytes).is_err() || kind != MetaKind::Keyring {
        return;
    }
    let Ok(new) = Keyring::from_json(std::str::from_utf8(bytes).expect("a checked keyring is text")) else {
        panic!("a checked keyring parses");
    };
    let (mut old, _) = Keyring::create_encrypted("pw", KdfParams::minimum(), "first").expect("a keyring");
    old.repo_id = new.repo_id.clone();
    old.encryption = new.encryption;
    old.plain_key = new.plain_key.clone();
    if let Ok(merged) = new.merged_over(&old, 7, chrono::Utc::now()) {
        for slot in &old.slots {
            assert!(
                merged.slots.contains(slot) || merged.retired.iter().any(|r| &r.slot == slot),
                "a slot was dropped under insider protection"
            );
        }
        assert!(merged.to_json().len() <= Keyring::MAX_JSON_LEN);
    }
});
