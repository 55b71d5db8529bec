//! A file's bytes read at any offset from a restore point: its extents placed end to end,
//! each data extent a blob fetched (decrypted, authenticated, decompressed) only when a read
//! touches it, and kept in a cache bounded in bytes shared by every file of the publication.
//! Holes read as zeros. Reads of one blob by several readers at once fetch it once each at
//! most; the cache never holds more than its budget plus one blob.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use cloudkeep_repo::catalog::Extent;
use cloudkeep_repo::crypto::ChunkId;
use cloudkeep_repo::repo::BlobSource;

/// Why bytes could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A blob is missing or damaged in the repository.
    #[error("a block of this file cannot be read: {0}; run a health check of the repository")]
    Blob(String),
    /// A blob holds fewer bytes than the catalog says.
    #[error("a block of this file is shorter than the catalog says; run a health check")]
    Short,
}

/// Blobs kept for reads, most recently used last, bounded in bytes.
pub struct BlobCache {
    source: BlobSource,
    budget: usize,
    inner: Mutex<Cached>,
}

#[derive(Default)]
struct Cached {
    blobs: HashMap<ChunkId, Arc<Vec<u8>>>,
    order: VecDeque<ChunkId>,
    bytes: usize,
}

impl BlobCache {
    /// A cache of at most `budget` bytes of opened blobs from `source`.
    pub fn new(source: BlobSource, budget: usize) -> Self {
        Self {
            source,
            budget,
            inner: Mutex::default(),
        }
    }

    /// The opened blob `id`, from the cache or fetched.
    pub fn get(&self, id: &ChunkId) -> Result<Arc<Vec<u8>>, ReadError> {
        if let Ok(mut c) = self.inner.lock()
            && let Some(b) = c.blobs.get(id).cloned()
        {
            // Most recently used last.
            if let Some(at) = c.order.iter().position(|x| x == id) {
                c.order.remove(at);
            }
            c.order.push_back(*id);
            return Ok(b);
        }
        // Fetched outside the lock: other reads go on meanwhile.
        let bytes = Arc::new(
            self.source
                .read(id)
                .map_err(|e| ReadError::Blob(e.to_string()))?,
        );
        if let Ok(mut c) = self.inner.lock()
            && !c.blobs.contains_key(id)
        {
            while c.bytes + bytes.len() > self.budget {
                let Some(old) = c.order.pop_front() else {
                    break;
                };
                if let Some(b) = c.blobs.remove(&old) {
                    c.bytes -= b.len();
                }
            }
            c.bytes += bytes.len();
            c.order.push_back(*id);
            c.blobs.insert(*id, bytes.clone());
        }
        Ok(bytes)
    }

    /// Bytes held now.
    pub fn held(&self) -> usize {
        self.inner.lock().map_or(0, |c| c.bytes)
    }
}

/// A file's extents with their offsets; or a window of them (a volume of a disk).
#[derive(Debug, Clone, Default)]
pub struct Content {
    /// (offset, length, blob or `None` for a hole), in order.
    pieces: Arc<Vec<(u64, u64, Option<ChunkId>)>>,
    /// Where this content starts in the pieces, and its length.
    base: u64,
    size: u64,
}

impl Content {
    /// The content made of `extents`.
    pub fn new(extents: &[Extent]) -> Self {
        let mut at = 0u64;
        let pieces: Vec<_> = extents
            .iter()
            .map(|e| {
                let (len, id) = match e {
                    Extent::Data { id, len } => (u64::from(*len), Some(*id)),
                    Extent::Hole { len } => (*len, None),
                };
                let piece = (at, len, id);
                at = at.saturating_add(len);
                piece
            })
            .collect();
        Self {
            pieces: Arc::new(pieces),
            base: 0,
            size: at,
        }
    }

    /// The `len` bytes from `start` of this content (clipped to it), sharing its pieces.
    pub fn window(&self, start: u64, len: u64) -> Self {
        let start = start.min(self.size);
        Self {
            pieces: self.pieces.clone(),
            base: self.base + start,
            size: len.min(self.size - start),
        }
    }

    /// Its length.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Up to `len` bytes from `offset` (fewer at the end; none past it).
    pub fn read(&self, cache: &BlobCache, offset: u64, len: usize) -> Result<Vec<u8>, ReadError> {
        let end = offset.saturating_add(len as u64).min(self.size);
        if offset >= end {
            return Ok(Vec::new());
        }
        let (offset, end) = (self.base + offset, self.base + end);
        let mut out = Vec::with_capacity((end - offset) as usize);
        let first = self.pieces.partition_point(|p| p.0 + p.1 <= offset);
        for &(at, plen, id) in &self.pieces[first..] {
            if at >= end {
                break;
            }
            let from = offset.max(at) - at;
            let to = end.min(at + plen) - at;
            match id {
                None => out.resize(out.len() + (to - from) as usize, 0),
                Some(id) => {
                    let blob = cache.get(&id)?;
                    let part = blob
                        .get(from as usize..to as usize)
                        .ok_or(ReadError::Short)?;
                    out.extend_from_slice(part);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc as StdArc;

    use cloudkeep_repo::backend::folder::FolderStore;
    use cloudkeep_repo::compress::Compression;
    use cloudkeep_repo::engine::backup::{BackupOptions, backup};
    use cloudkeep_repo::engine::browse::{Resolved, resolve};
    use cloudkeep_repo::repo::{NewRepo, Repository};

    /// Bytes that do not repeat (every 8 bytes a counter, scrambled).
    fn bytes(len: usize) -> Vec<u8> {
        (0..len.div_ceil(8) as u64)
            .flat_map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes())
            .take(len)
            .collect()
    }

    #[test]
    fn reads_at_any_offset_match_the_file_and_the_cache_stays_in_budget() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir(&src).unwrap();
        // More than two chunks of the largest size, so at least three whatever the
        // repository's (random) chunker seed cuts.
        const SIZE: u64 = 17 << 20;
        let data = bytes(SIZE as usize);
        std::fs::write(src.join("f.bin"), &data).unwrap();
        let store = StdArc::new(FolderStore::open(dir.path().join("repo")).unwrap());
        let repo = Repository::init(store, NewRepo::Unencrypted).unwrap();
        let point = backup(
            &repo,
            &BackupOptions {
                sources: vec![src.clone()],
                disks: vec![],
                excludes: vec![],
                one_file_system: false,
                compression: Compression::Default,
                host: "pc".into(),
                job: "j".into(),
                parent: None,
                cancel: Default::default(),
            },
            &|_| {},
        )
        .unwrap()
        .point;
        let index = repo.load_index().unwrap();
        let path = src.join("f.bin").display().to_string();
        let Resolved::Node(node) = resolve(&repo, &index, &point, &path).unwrap() else {
            panic!("no node");
        };
        assert!(
            node.content.len() > 2,
            "several chunks: {}",
            node.content.len()
        );
        let content = Content::new(&node.content);
        assert_eq!(content.size(), data.len() as u64);
        let budget = 1 << 20;
        let cache = BlobCache::new(repo.blob_source(&index), budget);
        let largest = 8 << 20;
        for (offset, len) in [
            (0u64, 1usize),
            (4095, 8193),
            (1 << 20, 3 << 20),
            (SIZE - 10, 100),
            (SIZE, 10),
            (SIZE + (1 << 20), 10),
        ] {
            let got = content.read(&cache, offset, len).unwrap();
            let from = (offset as usize).min(data.len());
            let to = (offset as usize + len).min(data.len());
            assert_eq!(got, data[from..to], "at {offset}+{len}");
            assert!(cache.held() <= budget + largest, "{}", cache.held());
        }
        // A window reads the same bytes, shifted.
        let window = content.window(1 << 20, 2 << 20);
        assert_eq!(window.size(), 2 << 20);
        assert_eq!(
            window.read(&cache, 5, 1000).unwrap(),
            data[(1 << 20) + 5..(1 << 20) + 1005]
        );
        assert_eq!(window.read(&cache, 2 << 20, 10).unwrap(), Vec::<u8>::new());
        assert_eq!(content.window(SIZE - (1 << 20), 9 << 20).size(), 1 << 20);
        // Holes read as zeros, without a blob.
        let hole = Content::new(&[Extent::Hole { len: 10 }]);
        assert_eq!(hole.read(&cache, 3, 100).unwrap(), vec![0u8; 7]);
    }
}
