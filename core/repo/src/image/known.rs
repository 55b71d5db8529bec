//! What the previous image of a disk held, kept on the computer that made it: each block's
//! place, a fast keyed fingerprint (xxh3-128, seeded from the repository's key), a fingerprint
//! of which of its bytes were in use, and its chunk id; and for each ext4 volume the stamps of
//! its files (`changes`). An incremental image skips reading a block whose used bytes all
//! belong to files with the same stamps as then (and whose used bytes are the same); it reads
//! every other used block, and one whose fingerprint matches is not hashed again (keyed BLAKE3
//! costs more than reading it) nor stored: its chunk id is reused.
//!
//! The file is sealed with the repository's id key (a keyed BLAKE3 over its bytes): a file
//! someone changed, one of another repository, or one made for another point than the run's
//! parent is ignored, never trusted. The seed is secret, so nobody who can write to the disk
//! can craft a block whose fingerprint equals the old one's.
//!
//! ```text
//! file   = "CKKB" ‖ 2 ‖ point id (64 hex) ‖ count u64 LE ‖ count × entry
//!          ‖ volumes u32 LE ‖ volumes × volume ‖ mac [32]
//! entry  = offset u64 LE ‖ fingerprint u128 LE ‖ used u64 LE ‖ chunk id [32]
//! volume = start u64 LE ‖ uuid [16] ‖ files u64 LE ‖ files × (inode u32 LE ‖ stamp u64 LE)
//! mac    = keyed BLAKE3 (the repository's id key) of everything before it
//! ```

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::changes::Stamps;
use crate::crypto::{ChunkId, RepoKeys};

const MAGIC: &[u8; 4] = b"CKKB";
const VERSION: u8 = 2;
const ENTRY: usize = 8 + 16 + 8 + 32;
const STAMP: usize = 4 + 8;

/// One block of an image as made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownBlock {
    /// Its place on the disk.
    pub offset: u64,
    /// Its bytes' keyed fingerprint.
    pub print: u128,
    /// Which of its bytes were in use (`used_print`).
    pub used: u64,
    /// Where its bytes are stored.
    pub id: ChunkId,
}

/// The blocks of an image as made.
pub type BlockList = Vec<KnownBlock>;

/// The file stamps of one ext4 volume of an image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeStamps {
    /// The volume's first byte on the disk.
    pub start: u64,
    /// The file system's UUID.
    pub uuid: [u8; 16],
    /// Its files' stamps, ascending by inode.
    pub stamps: Stamps,
}

/// The blocks and file stamps of one disk's previous image.
#[derive(Debug, Default)]
pub struct KnownBlocks {
    blocks: HashMap<u64, KnownBlock>,
    volumes: Vec<VolumeStamps>,
}

/// A block's fingerprint under the repository's seed.
pub fn fingerprint(keys: &RepoKeys, block: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128_with_seed(block, seed(keys))
}

/// A fingerprint of which bytes of a block were in use (its used parts, disk offsets).
pub fn used_print(parts: &[Range<u64>]) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for p in parts {
        h.update(&p.start.to_le_bytes());
        h.update(&p.end.to_le_bytes());
    }
    h.digest()
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

/// Reads little-endian integers off the front of a byte slice.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn u128(&mut self) -> Option<u128> {
        Some(u128::from_le_bytes(self.take(16)?.try_into().ok()?))
    }

    /// A count of items of `size` bytes each that the rest can hold.
    fn count(&mut self, n: u64, size: usize) -> Option<usize> {
        let n = usize::try_from(n).ok()?;
        (n.checked_mul(size)? <= self.0.len()).then_some(n)
    }
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
        let mut c = Cursor(body.strip_prefix(MAGIC)?.strip_prefix(&[VERSION])?);
        if c.take(64)? != parent.as_bytes() {
            return None;
        }
        let raw = c.u64()?;
        let count = c.count(raw, ENTRY)?;
        let mut blocks = HashMap::with_capacity(count);
        for _ in 0..count {
            let block = KnownBlock {
                offset: c.u64()?,
                print: c.u128()?,
                used: c.u64()?,
                id: ChunkId(c.take(32)?.try_into().ok()?),
            };
            blocks.insert(block.offset, block);
        }
        let mut volumes = Vec::new();
        for _ in 0..c.u32()? {
            let start = c.u64()?;
            let uuid = c.take(16)?.try_into().ok()?;
            let raw = c.u64()?;
            let n = c.count(raw, STAMP)?;
            let mut stamps = Vec::with_capacity(n);
            for _ in 0..n {
                stamps.push((c.u32()?, c.u64()?));
            }
            // Compared by binary search: only a sorted list is usable.
            if !stamps.is_sorted_by(|a, b| a.0 < b.0) {
                return None;
            }
            volumes.push(VolumeStamps {
                start,
                uuid,
                stamps,
            });
        }
        c.0.is_empty().then_some(Self { blocks, volumes })
    }

    /// The chunk id of the block at `offset` if its fingerprint is `print`.
    pub fn get(&self, offset: u64, print: u128) -> Option<ChunkId> {
        self.blocks
            .get(&offset)
            .filter(|b| b.print == print)
            .map(|b| b.id)
    }

    /// The block the last image held at `offset` if the same bytes of it were in use.
    pub fn same_use(&self, offset: u64, used: u64) -> Option<KnownBlock> {
        self.blocks.get(&offset).filter(|b| b.used == used).copied()
    }

    /// The file stamps the last image recorded for the volume at `start` with `uuid`.
    pub fn stamps(&self, start: u64, uuid: &[u8; 16]) -> Option<&Stamps> {
        self.volumes
            .iter()
            .find(|v| v.start == start && &v.uuid == uuid)
            .map(|v| &v.stamps)
    }

    /// Writes the blocks and stamps of the image just made by `point` (owner-only,
    /// atomically).
    pub fn save(
        file: &Path,
        keys: &RepoKeys,
        point: &str,
        blocks: &[KnownBlock],
        volumes: &[VolumeStamps],
    ) -> std::io::Result<()> {
        let stamps: usize = volumes.iter().map(|v| 36 + v.stamps.len() * STAMP).sum();
        let mut bytes = Vec::with_capacity(4 + 1 + 64 + 8 + blocks.len() * ENTRY + 4 + stamps + 32);
        bytes.extend_from_slice(MAGIC);
        bytes.push(VERSION);
        bytes.extend_from_slice(point.as_bytes());
        bytes.extend_from_slice(&(blocks.len() as u64).to_le_bytes());
        for b in blocks {
            bytes.extend_from_slice(&b.offset.to_le_bytes());
            bytes.extend_from_slice(&b.print.to_le_bytes());
            bytes.extend_from_slice(&b.used.to_le_bytes());
            bytes.extend_from_slice(&b.id.0);
        }
        bytes.extend_from_slice(&u32::try_from(volumes.len()).unwrap_or(0).to_le_bytes());
        for v in volumes.iter().take(u32::MAX as usize) {
            bytes.extend_from_slice(&v.start.to_le_bytes());
            bytes.extend_from_slice(&v.uuid);
            bytes.extend_from_slice(&(v.stamps.len() as u64).to_le_bytes());
            for (ino, stamp) in &v.stamps {
                bytes.extend_from_slice(&ino.to_le_bytes());
                bytes.extend_from_slice(&stamp.to_le_bytes());
            }
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
        let used = used_print(std::slice::from_ref(&(1 << 20..(1 << 20) + 4096)));
        let block = KnownBlock {
            offset: 1 << 20,
            print,
            used,
            id,
        };
        let volume = VolumeStamps {
            start: 1 << 20,
            uuid: [7; 16],
            stamps: vec![(12, 34), (13, 35)],
        };
        KnownBlocks::save(
            &file,
            &keys,
            &parent,
            &[block],
            std::slice::from_ref(&volume),
        )
        .unwrap();
        let known = KnownBlocks::load(&file, &keys, &parent);
        assert_eq!(known.get(1 << 20, print), Some(id));
        assert_eq!(known.get(1 << 20, print ^ 1), None);
        assert_eq!(known.same_use(1 << 20, used), Some(block));
        assert_eq!(
            known.same_use(1 << 20, used ^ 1),
            None,
            "other bytes in use"
        );
        assert_eq!(known.stamps(1 << 20, &[7; 16]), Some(&volume.stamps));
        assert_eq!(known.stamps(1 << 20, &[8; 16]), None, "another file system");
        assert_eq!(known.stamps(2 << 20, &[7; 16]), None, "another place");
        assert!(
            KnownBlocks::load(&file, &keys, &"b".repeat(64))
                .blocks
                .is_empty()
        );
        assert!(KnownBlocks::load(&file, &other, &parent).blocks.is_empty());
        let mut bytes = std::fs::read(&file).unwrap();
        for at in [80, bytes.len() - 40] {
            let mut changed = bytes.clone();
            changed[at] ^= 1;
            std::fs::write(&file, changed).unwrap();
            let known = KnownBlocks::load(&file, &keys, &parent);
            assert!(known.blocks.is_empty() && known.volumes.is_empty());
        }
        // Unsorted stamps, even sealed with the right key, are not used.
        let at = bytes.len() - 32 - 2 * STAMP;
        bytes[at..at + 4].copy_from_slice(&99u32.to_le_bytes());
        bytes.truncate(bytes.len() - 32);
        let mac = keys.chunk_id(&bytes);
        bytes.extend_from_slice(&mac.0);
        std::fs::write(&file, &bytes).unwrap();
        assert!(KnownBlocks::load(&file, &keys, &parent).volumes.is_empty());
        assert_ne!(
            fingerprint(&keys, b"x"),
            fingerprint(&other, b"x"),
            "seeded per key"
        );
    }
}
