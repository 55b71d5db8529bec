//! Fuzz target: a backup file (`backupfile`, `backend::file`) — a file a user hands to
//! `restore --from-file`, `verify --file` or `points import`. The bytes are written to a file
//! and opened as a backup file; every part's check is read, each pack is read whole, and an
//! unencrypted file is opened as a repository: its point, index and every blob read. Nothing
//! may crash, hang or allocate without bound.
#![no_main]

use std::sync::Arc;

use cloudkeep_repo::backupfile::store::FileStore;
use cloudkeep_repo::backupfile::{BackupFile, Tag};
use cloudkeep_repo::repo::{Repository, Unlock};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("cloudkeep-fuzz-{}.ckb", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(file) = BackupFile::open(&path) {
        for part in file.parts().iter().filter(|p| p.tag == Tag::Pack) {
            let _ = file.read_pack(part);
        }
    }
    let Ok(store) = FileStore::open(&path) else {
        return;
    };
    let Ok(repo) = Repository::open(Arc::new(store), Unlock::Unencrypted) else {
        return;
    };
    let _ = cloudkeep_repo::engine::portable::file_point(&repo);
    if let Ok(index) = repo.load_index() {
        for (id, _) in index.iter().take(64) {
            let _ = repo.read_blob(&index, id);
        }
    }
});
