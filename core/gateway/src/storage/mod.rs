//! Storage areas: where a quota's packs and objects live in its cloud repository — a folder
//! on the gateway's machine ([`folder`]) or a key prefix of an S3-compatible bucket ([`s3`]).
//! Handlers see one [`AreaStore`]: the repository interface of `cloudkeep-repo`
//! (`RepoBackend`) plus what only a gateway does with its storage: receive a pack as a
//! stream and make it visible only once complete ([`PackUpload`]), re-hash a pack, read many
//! ranges as one body, clean up after writers that died.
//!
//! Invariant: every method blocks; handlers call them on blocking threads (`blocking`), never
//! on the async threads. Locks and quota accounting are in the database, never in the store.

pub mod folder;
pub mod s3;

use std::sync::Arc;

use cloudkeep_api::CloudRepo;
use cloudkeep_repo::backend::{MetaKind, RepoBackend, StoreError};
use cloudkeep_repo::pack::PackId;

/// A pack arriving as a stream: bytes written in order, visible under its id only after
/// [`PackUpload::finish`]; [`PackUpload::abort`] (or a crash) leaves nothing visible.
pub trait PackUpload: Send {
    /// Appends bytes (the caller hashes them and checks the whole against the id).
    fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError>;
    /// Makes the complete pack visible under its id, durably.
    fn finish(self: Box<Self>) -> Result<(), StoreError>;
    /// Drops what was written.
    fn abort(self: Box<Self>);
}

/// A quota's storage area, as the gateway uses it.
pub trait AreaStore: RepoBackend + std::fmt::Debug {
    /// Starts receiving pack `id` under `reservation` (a hex id: what a crash leaves is
    /// found again by it, [`AreaStore::remove_upload`]).
    fn begin_upload(
        &self,
        reservation: &str,
        id: &PackId,
    ) -> Result<Box<dyn PackUpload>, StoreError>;

    /// Removes what the upload of `reservation` left, unless its writer is still alive;
    /// returns the bytes freed when known.
    fn remove_upload(&self, reservation: &str) -> Result<u64, StoreError>;

    /// Removes what writers that died left and nobody will finish, older than `age`.
    fn remove_leftovers(&self, age: std::time::Duration) -> Result<u64, StoreError>;

    /// Re-reads pack `id` and compares it with its id (BLAKE3): `None` when it is missing.
    fn pack_matches_id(&self, id: &PackId) -> Result<Option<bool>, StoreError>;

    /// When pack `id` was stored, if it exists.
    fn pack_modified(&self, id: &PackId) -> Option<std::time::SystemTime>;

    /// Whether an object is stored.
    fn has_meta(&self, kind: MetaKind, name: &str) -> Result<bool, StoreError>;

    /// Reads ranges (pack, offset, length) end to end into one buffer (`total` bytes), all
    /// or nothing.
    fn read_concat(&self, ranges: &[(PackId, u64, u64)], total: u64)
    -> Result<Vec<u8>, StoreError>;

    /// Removes the whole area (its account is being deleted).
    fn remove_all(&self) -> Result<(), StoreError>;

    /// Locks a pack or object against change and deletion, in `mode`, until `until` (S3
    /// Object Lock; only ever extended); `Ok(false)` when it is gone, or when the store keeps
    /// no locks (a folder: insider protection there is the gateway's alone).
    fn lock(
        &self,
        what: Lockable<'_>,
        mode: cloudkeep_api::LockMode,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError> {
        let _ = (what, mode, until);
        Ok(false)
    }
}

/// What [`AreaStore::lock`] locks.
#[derive(Debug, Clone, Copy)]
pub enum Lockable<'a> {
    /// A pack.
    Pack(&'a PackId),
    /// A small object (keyring, index file, chunk set, restore point).
    Meta(MetaKind, &'a str),
}

/// The small-object kinds of the tenant API, by the names its paths and the database use.
const KINDS: &[(&str, MetaKind)] = &[
    ("keyring", MetaKind::Keyring),
    ("index", MetaKind::Index),
    ("sets", MetaKind::ChunkSet),
    ("locks", MetaKind::Lock),
];

/// The kind an API name (`keyring`, `index`, `sets`, `locks`) stands for.
pub fn meta_kind(name: &str) -> Option<MetaKind> {
    KINDS.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
}

/// A shared, open storage area.
pub type Area = Arc<dyn AreaStore>;

/// Credentials of an object store, as the gateway holds them (opened from the database).
#[derive(Clone)]
pub struct S3Credentials {
    /// The access key id.
    pub access_key: String,
    /// The secret access key (wiped when dropped).
    pub secret_key: zeroize::Zeroizing<String>,
}

impl std::fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

/// Where quota `quota_id`'s area is inside a folder repository.
pub fn folder_area(repo: &CloudRepo, quota_id: i64) -> std::path::PathBuf {
    std::path::Path::new(&repo.location).join(format!("q{quota_id}"))
}

/// The key prefix of quota `quota_id`'s area inside an object-storage repository.
pub fn s3_area(target: &cloudkeep_api::S3Target, quota_id: i64) -> String {
    if target.prefix.is_empty() {
        format!("q{quota_id}")
    } else {
        format!("{}/q{quota_id}", target.prefix)
    }
}
