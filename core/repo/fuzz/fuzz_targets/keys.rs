//! Keys shared by the fuzz targets: an unencrypted repository's, so that inputs reach the
//! parsers behind the (then transparent) authentication.

use std::sync::OnceLock;

use cloudkeep_repo::crypto::{MasterKey, RepoKeys};

/// The process's keys.
pub fn keys() -> &'static RepoKeys {
    static KEYS: OnceLock<RepoKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        MasterKey::generate()
            .expect("the OS gives random bytes")
            .repo_keys(false)
    })
}
