//! A local cache of sealed folder listings (tree blobs) of a remote repository, so that an
//! incremental backup or a browse reads them from this computer's disk instead of one request
//! each. Entries are content-addressed (by chunk id) and stay sealed (encrypted), and every
//! entry is authenticated when read, so a damaged or stale file is simply fetched again.

use std::path::PathBuf;

use crate::crypto::ChunkId;

/// The cache folder of one repository.
#[derive(Debug, Clone)]
pub struct BlobCache {
    dir: PathBuf,
}

impl BlobCache {
    /// A cache in `dir` (created when first written).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn path(&self, id: &ChunkId) -> PathBuf {
        let hex = id.to_hex();
        self.dir.join(&hex[..2]).join(hex)
    }

    /// The sealed bytes of `id`, when cached.
    pub fn get(&self, id: &ChunkId) -> Option<Vec<u8>> {
        std::fs::read(self.path(id)).ok()
    }

    /// Caches the sealed bytes of `id` (best effort: a cache that cannot be written only
    /// costs speed).
    pub fn put(&self, id: &ChunkId, sealed: &[u8]) {
        let path = self.path(id);
        let write = || -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let mut tmp = path.clone().into_os_string();
            tmp.push(format!(".{}.tmp", std::process::id()));
            std::fs::write(&tmp, sealed)?;
            std::fs::rename(&tmp, &path)
        };
        if let Err(e) = write() {
            tracing::debug!("cannot cache blob {id}: {e}");
        }
    }
}
