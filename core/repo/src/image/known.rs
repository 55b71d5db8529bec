//! What the previous image of a disk held, kept on the computer that made it: each block's
//! place, a fast keyed fingerprint (xxh3-128, seeded from the repository's key) and its
//! chunk id. An incremental image still reads every used block — no change-tracking driver
//! tells it what changed — but a block whose fingerprint matches is not hashed again (keyed
//! BLAKE3 costs more than reading it) nor stored: its chunk id is reused.
//!
//! The file is sealed with the repository's id key (a keyed BLAKE3 over its bytes): a file
//! someone changed, one of another repository, or one made for another point than the run's
//! parent is ignored, never trusted. The seed is secret, so nobody who can write to the disk
//! can craft a block whose fingerprint equals the old one's.
//!
//! ```text
//! file  = "CKKB" ‖ 1 ‖ point id (64 hex) ‖ count u64 LE ‖ count × entry ‖ mac [32]
//! entry = offset u64 LE ‖ fingerprint u128 LE ‖ chunk id [32]
//! mac   = keyed BLAKE3 (the repository's id key) of everything before it
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::crypto::{ChunkId, RepoKeys};

const MAGIC: &[u8; 4] = b"CKKB";
const ENTRY: usize = 8 + 16 + 32;

/// The blocks of an image as made: (disk offset, fingerprint, chunk id) each.
pub type BlockList = Vec<(u64, u128, ChunkId)>;

/// The blocks of one disk's previous image, by disk offset.
#[derive(Debug, Default)]
pub struct KnownBlocks {
    blocks: HashMap<u64, (u128, ChunkId)>,
}

/// A block's fingerprint under the repository's seed.
pub fn fingerprint(keys: &RepoKeys, block: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128_with_seed(block, seed(keys))
}

fn seed(keys: &RepoKeys) -> u64 {
    let id = keys.chunk_id(b"cloudkeep image fingerprint seed");
    u64::from_le_bytes(id.0[..8].try_into().unwrap_or([0; 8]))
}

/// Where the file for `disk` of the repository with `keys` lives in `folder` (its name
/// reveals neither the disk nor the repository).
pub fn file_for(folder: &Path, keys: &RepoKeys, disk: &Path) -> PathBuf {
    let mut tag = b"cloudkeep known blocks ".to_vec();
    tag.extend_from_slice(disk.as_os_str().as_encoded_bytes());
    folder.join(&keys.chunk_id(&tag).to_hex()[..32])
}

impl KnownBlocks {
    /// The blocks the image made by point `parent` held; empty when there is no such file,
    /// or it is damaged, foreign or of another point.
    pub fn load(file: &Path, keys: &RepoKeys, parent: &str) -> Self {
        std::fs::read(file)
            .ok()
            .and_then(|bytes| Self::decode(&bytes, keys, parent))
            .unwrap_or_default()
    }

    fn decode(bytes: &[u8], keys: &RepoKeys, parent: &str) -> Option<Self> {
        let (body, mac) = bytes.split_at_checked(bytes.len().checked_sub(32)?)?;
        if keys.chunk_id(body).0 != mac {
            return None;
        }
        let rest = body.strip_prefix(MAGIC)?.strip_prefix(&[1u8])?;
        let (point, rest) = rest.split_at_checked(64)?;
        if point != parent.as_bytes() {
            return None;
        }
        let (count, rest) = rest.split_at_checked(8)?;
        let count = usize::try_from(u64::from_le_bytes(count.try_into().ok()?)).ok()?;
        if rest.len() != count.checked_mul(ENTRY)? {
            return None;
        }
        let blocks = rest
            .chunks_exact(ENTRY)
            .map(|e| {
                let offset = u64::from_le_bytes(e[..8].try_into().unwrap_or([0; 8]));
                let print = u128::from_le_bytes(e[8..24].try_into().unwrap_or([0; 16]));
                let mut id = [0u8; 32];
                id.copy_from_slice(&e[24..56]);
                (offset, (print, ChunkId(id)))
            })
            .collect();
        Some(Self { blocks })
    }

    /// The chunk id of the block at `offset` if its fingerprint is `print`.
    pub fn get(&self, offset: u64, print: u128) -> Option<ChunkId> {
        self.blocks
            .get(&offset)
            .filter(|(p, _)| *p == print)
            .map(|(_, id)| *id)
    }

    /// Writes the blocks of the image just made by `point` (owner-only, atomically).
    pub fn save(
        file: &Path,
        keys: &RepoKeys,
        point: &str,
        blocks: &[(u64, u128, ChunkId)],
    ) -> std::io::Result<()> {
        let mut bytes = Vec::with_capacity(4 + 1 + 64 + 8 + blocks.len() * ENTRY + 32);
        bytes.extend_from_slice(MAGIC);
        bytes.push(1);
        bytes.extend_from_slice(point.as_bytes());
        bytes.extend_from_slice(&(blocks.len() as u64).to_le_bytes());
        for (offset, print, id) in blocks {
            bytes.extend_from_slice(&offset.to_le_bytes());
            bytes.extend_from_slice(&print.to_le_bytes());
            bytes.extend_from_slice(&id.0);
        }
        let mac = keys.chunk_id(&bytes);
        bytes.extend_from_slice(&mac.0);
        if let Some(folder) = file.parent() {
            cloudkeep_model::paths::create_private_dir(folder)?;
        }
        let tmp = file.with_extension("tmp");
        cloudkeep_model::paths::write_private_file(&tmp, &bytes)?;
        std::fs::rename(&tmp, file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_untouched_file_of_the_parent_point_is_trusted() {
        let key = || {
            crate::crypto::MasterKey::generate()
                .unwrap()
                .repo_keys(true)
        };
        let (keys, other) = (key(), key());
        let dir = tempfile::tempdir().unwrap();
        let file = file_for(dir.path(), &keys, Path::new("/dev/sdb"));
        let parent = "a".repeat(64);
        let id = keys.chunk_id(b"block");
        let print = fingerprint(&keys, b"block");
        KnownBlocks::save(&file, &keys, &parent, &[(1 << 20, print, id)]).unwrap();
        assert_eq!(
            KnownBlocks::load(&file, &keys, &parent).get(1 << 20, print),
            Some(id)
        );
        assert_eq!(
            KnownBlocks::load(&file, &keys, &parent).get(1 << 20, print ^ 1),
            None
        );
        assert!(
            KnownBlocks::load(&file, &keys, &"b".repeat(64))
                .blocks
                .is_empty()
        );
        assert!(KnownBlocks::load(&file, &other, &parent).blocks.is_empty());
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[80] ^= 1;
        std::fs::write(&file, bytes).unwrap();
        assert!(KnownBlocks::load(&file, &keys, &parent).blocks.is_empty());
        assert_ne!(
            fingerprint(&keys, b"x"),
            fingerprint(&other, b"x"),
            "seeded per key"
        );
    }
}
