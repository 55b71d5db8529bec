//! Pack storage: the narrow interface the engine writes packs through, and its
//! implementations. The engine never knows where packs live; a backend never knows what is
//! inside them (it sees ids and bytes only).
//!
//! Implementations: [`folder::FolderStore`] (a local folder: local backup targets, tests,
//! benchmarks). The gateway issue adds the remote store behind the same trait, and the SP
//! side's S3 bucket.

pub mod folder;

use std::path::PathBuf;

use crate::pack::PackId;

/// Errors of pack storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such pack.
    #[error(
        "pack {pack} is missing from the repository; run verify to see which restore points need it"
    )]
    NotFound {
        /// The pack.
        pack: PackId,
    },
    /// A read past the end of a pack: the pack is shorter than its index says.
    #[error(
        "pack {pack} is shorter than expected ({len} bytes, asked for {want} at {offset}); it was truncated: run verify"
    )]
    OutOfRange {
        /// The pack.
        pack: PackId,
        /// Its length.
        len: u64,
        /// Offset asked for.
        offset: u64,
        /// Bytes asked for.
        want: u64,
    },
    /// The storage failed.
    #[error("storage error at \"{}\": {source}", path.display())]
    Io {
        /// Where.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// Where a repository's packs are kept. Implementations are safe to call from many threads.
pub trait PackStore: Send + Sync {
    /// Stores a pack atomically: afterwards the whole pack is there, or (after a crash) none
    /// of it is visible. Storing an existing pack again is harmless.
    fn put_pack(&self, id: &PackId, bytes: &[u8]) -> Result<(), StoreError>;

    /// Reads `len` bytes at `offset`.
    fn read_range(&self, id: &PackId, offset: u64, len: u64) -> Result<Vec<u8>, StoreError>;

    /// A pack's length in bytes.
    fn pack_len(&self, id: &PackId) -> Result<u64, StoreError>;

    /// Every pack with its length.
    fn list_packs(&self) -> Result<Vec<(PackId, u64)>, StoreError>;

    /// Removes a pack; removing a missing pack is not an error.
    fn delete_pack(&self, id: &PackId) -> Result<(), StoreError>;
}
