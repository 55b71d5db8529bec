//! Pack storage: the narrow interface the engine writes packs through, and its
//! implementations. The engine never knows where packs live; a backend never knows what is
//! inside them (it sees ids and bytes only).
//!
//! Implementations: [`folder::FolderStore`] (a local folder: local backup targets, tests,
//! benchmarks); `crate::backupfile::store::FileStore` (a backup file, read-only). The gateway issue adds the remote store behind the same trait, and the SP
//! side's S3 bucket.

pub mod folder;

use cloudkeep_model::failure::{Failure, FailureKind};
use std::path::PathBuf;

use crate::pack::{PackEntry, PackId};

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
    /// No such metadata object.
    #[error("{kind:?} object \"{name}\" is missing from the repository")]
    NotFoundMeta {
        /// Its kind.
        kind: MetaKind,
        /// Its name.
        name: String,
    },
    /// A metadata name that is not allowed.
    #[error("\"{name}\" is not a valid object name")]
    BadName {
        /// The name.
        name: String,
    },
    /// An object larger than allowed.
    #[error("object \"{name}\" is {len} bytes, more than the {MAX_META_LEN}-byte limit")]
    TooLarge {
        /// The name.
        name: String,
        /// Its size.
        len: u64,
    },
    /// A remote store's gateway refused the request (quota, lease, account, or a check).
    #[error("{message}")]
    Refused {
        /// The gateway's error code, when it gave one.
        code: Option<cloudkeep_api::ErrorCode>,
        /// The gateway's message.
        message: String,
    },
    /// The storage failed.
    #[error(
        "storage error at \"{}\": {source}; check that the repository's storage is reachable, writable and has free space",
        path.display()
    )]
    Io {
        /// Where.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

impl Failure for StoreError {
    fn kind(&self) -> Option<FailureKind> {
        match self {
            Self::Refused {
                code: Some(code), ..
            } => code.kind(),
            _ => None,
        }
    }
}

/// Neighbouring blobs at most this far apart are read as one span by default (the bytes
/// between are read and dropped): on a local disk one larger read costs less than two.
/// Measured through a gateway on loopback with one range request per span (the Linux tree,
/// the backup's 2 MiB runs): 128 KiB read 1.32x the needed bytes; 256 KiB 1.44x in 802
/// requests, 64 KiB 1.18x in 1,313, no gap 6,809 (with an earlier layout). A store whose
/// requests carry many ranges ([`PackStore::merge_gap`]) picks a smaller gap.
pub const MERGE_GAP: u64 = 128 << 10;

/// Where a repository's packs are kept. Implementations are safe to call from many threads.
pub trait PackStore: Send + Sync {
    /// Stores a pack atomically: afterwards the whole pack is there, or (after a crash) none
    /// of it is visible. Storing an existing pack again is harmless. `blobs` are the blobs
    /// inside (a remote store declares their ids and stored lengths to the gateway, which
    /// cannot read the pack's sealed index; a folder ignores them).
    fn put_pack(&self, id: &PackId, bytes: &[u8], blobs: &[PackEntry]) -> Result<(), StoreError>;

    /// Reads `len` bytes at `offset`.
    fn read_range(&self, id: &PackId, offset: u64, len: u64) -> Result<Vec<u8>, StoreError>;

    /// Reads several ranges (pack, offset, length), one outcome each, in order. Stores
    /// where a request has latency read them concurrently; the default reads them in
    /// parallel threads.
    fn read_ranges(&self, ranges: &[(PackId, u64, u64)]) -> Vec<Result<Vec<u8>, StoreError>> {
        use rayon::prelude::*;
        ranges
            .par_iter()
            .map(|(id, offset, len)| self.read_range(id, *offset, *len))
            .collect()
    }

    /// How far apart two blobs may be and still be read as one span: reading the bytes
    /// between costs less than a separate read up to this gap.
    fn merge_gap(&self) -> u64 {
        MERGE_GAP
    }

    /// How many packs a backup should upload at the same time: 1 for a local disk, more where
    /// each upload waits on a network round trip and on the far end's work.
    fn parallel_puts(&self) -> usize {
        1
    }

    /// A pack's length in bytes.
    fn pack_len(&self, id: &PackId) -> Result<u64, StoreError>;

    /// Every pack with its length.
    fn list_packs(&self) -> Result<Vec<(PackId, u64)>, StoreError>;

    /// Removes a pack; removing a missing pack is not an error.
    fn delete_pack(&self, id: &PackId) -> Result<(), StoreError>;

    /// Removes packs a compaction has copied the live blobs out of; returns those the store
    /// kept (a gateway keeps any that holds data a restore point needs and no other pack
    /// has), each with why. Under insider protection "removed" means retired: kept by the
    /// SP until the window ends, no longer listed.
    fn drop_packs(&self, ids: &[PackId]) -> Result<Vec<(PackId, String)>, StoreError> {
        for id in ids {
            self.delete_pack(id)?;
        }
        Ok(Vec::new())
    }

    /// A pack failed a check (it could not be read, or its bytes or blobs are wrong): the
    /// store looks at it itself and, when it is missing or its bytes no longer match its id,
    /// stops listing it — keeping the bytes aside where it has them — so that its chunks
    /// count as absent and the next backup stores them again. Says what it found; a store
    /// that cannot see the pack's folder at all fails instead of calling it missing.
    fn set_aside(&self, id: &PackId) -> Result<PackHealth, StoreError>;

    /// Whether nothing may be written (a backup file): damage is reported, never repaired.
    fn read_only(&self) -> bool {
        false
    }

    /// The local folder holding the packs, when there is one (a folder repository): an
    /// image-level backup never freezes the file system it writes to.
    fn local_folder(&self) -> Option<&std::path::Path> {
        None
    }

    /// Packs the store still lists and serves but whose bytes are known to have changed (the
    /// SP's check found them): their intact blobs are to be salvaged, and none of their
    /// chunks counts as stored.
    fn damaged_packs(&self) -> Result<Vec<PackId>, StoreError> {
        Ok(Vec::new())
    }
}

pub use cloudkeep_api::PackHealth;

/// The small objects of a repository besides packs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetaKind {
    /// The keyring (one object, named `keyring`).
    Keyring,
    /// Index files: which pack holds which blob.
    Index,
    /// Restore points.
    Point,
    /// Chunk sets: the clear chunk-id lists restore points name.
    ChunkSet,
    /// Locks of running backups, restores and garbage collections.
    Lock,
}

impl MetaKind {
    /// Every kind.
    pub const ALL: [Self; 5] = [
        Self::Keyring,
        Self::Index,
        Self::Point,
        Self::ChunkSet,
        Self::Lock,
    ];

    /// Folder or key prefix of the kind.
    pub fn dir(self) -> &'static str {
        match self {
            Self::Keyring => "keys",
            Self::Index => "index",
            Self::Point => "points",
            Self::ChunkSet => "sets",
            Self::Lock => "locks",
        }
    }
}

/// Largest metadata object accepted. The largest there is, a restore point's full chunk set,
/// lists its chunk ids: 32 bytes per blob, so a point of ten million small files is 320 MB
/// and this allows about 33 million blobs. (Index files are split at
/// [`crate::repo::INDEX_FILE_BLOBS`] entries, far below it.)
pub const MAX_META_LEN: u64 = 1 << 30;

/// Refuses an object of `len` bytes larger than [`MAX_META_LEN`] (every store's one rule).
pub fn check_meta_len(name: &str, len: u64) -> Result<(), StoreError> {
    if len > MAX_META_LEN {
        return Err(StoreError::TooLarge {
            name: name.to_owned(),
            len,
        });
    }
    Ok(())
}

/// A repository's whole storage: packs plus small metadata objects, each written atomically.
pub trait RepoBackend: PackStore {
    /// Stores an object atomically; an existing one of the same name is replaced.
    fn put_meta(&self, kind: MetaKind, name: &str, bytes: &[u8]) -> Result<(), StoreError>;

    /// [`Self::put_meta`] of bytes the caller gives up: a store that sends them on (a
    /// gateway client) takes them without a copy, which for a full chunk set of millions of
    /// ids is hundreds of megabytes.
    fn put_meta_owned(&self, kind: MetaKind, name: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.put_meta(kind, name, &bytes)
    }

    /// Reads an object (`NotFoundMeta` when missing).
    fn get_meta(&self, kind: MetaKind, name: &str) -> Result<Vec<u8>, StoreError>;

    /// Names of every object of a kind, sorted.
    fn list_meta(&self, kind: MetaKind) -> Result<Vec<String>, StoreError>;

    /// Removes an object; a missing one is not an error.
    fn delete_meta(&self, kind: MetaKind, name: &str) -> Result<(), StoreError>;

    /// Chunk sets of restore points the store keeps though it no longer lists them (a
    /// gateway's recycle bin): a collection must keep their data.
    fn retained_sets(&self) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }

    /// Restore points were removed or space reclaimed: a store that keeps its own figures
    /// of what is reclaimable (a gateway) measures again. Best effort.
    fn points_changed(&self) {}
}

/// True when `name` is safe as a metadata object name: lower-case hex, digits, `-`, `_`, `.`,
/// 1 to 128 characters, not starting with a dot.
pub fn valid_meta_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && !name.starts_with('.')
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
}
