//! The chunk index: where each blob is stored (pack, offset, stored and plain length), merged
//! from a repository's index files. Shared by the repository (which loads it) and the
//! fetcher (which plans span reads from it); it reads nothing itself.

use std::collections::HashMap;

use crate::crypto::ChunkId;
use crate::pack::{PackEntry, PackId};

/// Where a blob is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobLocation {
    /// The pack.
    pub pack: PackId,
    /// Offset of the stored bytes.
    pub offset: u64,
    /// Stored length.
    pub stored_len: u32,
    /// Plaintext length.
    pub plain_len: u32,
}

/// Every blob the repository's index files know. Cloning is cheap (the map is shared until
/// one clone adds to it): readers that outlive a borrow, such as a file-system reader over an
/// image-level point, hold their own clone.
#[derive(Debug, Clone, Default)]
pub struct ChunkIndex {
    map: std::sync::Arc<HashMap<ChunkId, BlobLocation>>,
}

impl ChunkIndex {
    /// Where a blob is.
    pub fn get(&self, id: &ChunkId) -> Option<&BlobLocation> {
        self.map.get(id)
    }

    /// Whether a blob is stored.
    pub fn contains(&self, id: &ChunkId) -> bool {
        self.map.contains_key(id)
    }

    /// Number of blobs.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Adds the blobs of a pack.
    pub fn add_pack(&mut self, pack: PackId, entries: &[PackEntry]) {
        let map = std::sync::Arc::make_mut(&mut self.map);
        for e in entries {
            map.entry(e.id).or_insert(BlobLocation {
                pack,
                offset: e.offset,
                stored_len: e.stored_len,
                plain_len: e.plain_len,
            });
        }
    }

    /// Every blob and its location.
    pub fn iter(&self) -> impl Iterator<Item = (&ChunkId, &BlobLocation)> {
        self.map.iter()
    }
}
