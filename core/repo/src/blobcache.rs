//! A local cache of sealed folder listings (tree blobs) of a remote repository, so that an
//! incremental backup, a browse or a restore reads them from this computer's disk instead of
//! one request each. Entries are content-addressed (by chunk id) and stay sealed (encrypted),
//! and every entry is authenticated when read, so a damaged or stale entry is simply fetched
//! again.
//!
//! Layout: append-only segment files (`*.seg`) in the cache folder, each a run of records
//! `id (32 bytes) | length (u32 LE) | sealed bytes`. Each process appends to a segment of its
//! own (created on its first write), so processes never interleave records; a record cut short
//! by a crash ends that segment's scan. The id → place map is built by scanning the segments
//! on first use. With many segments they are merged into one; past a size cap the cache is
//! dropped and refilled (it is only a cache). One file per backup instead of one per folder:
//! creating thousands of small files cost more than the requests the cache saves.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::crypto::ChunkId;

/// Segments at which they are merged into one when the cache is opened.
const MERGE_AT: usize = 32;

/// Total size past which the cache is dropped when opened.
const MAX_BYTES: u64 = 2 << 30;

/// Largest record accepted when scanning (a tree blob is far smaller).
const MAX_RECORD: u32 = 64 << 20;

/// The cache folder of one repository.
#[derive(Debug)]
pub struct BlobCache {
    dir: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    loaded: bool,
    segments: Vec<Arc<File>>,
    /// Where each id is: segment, offset of its bytes, length.
    map: HashMap<ChunkId, (usize, u64, u32)>,
    /// This process's segment: index and length so far.
    writer: Option<(usize, u64)>,
}

impl BlobCache {
    /// A cache in `dir` (created when first written).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            state: Mutex::default(),
        }
    }

    /// The sealed bytes of `id`, when cached.
    pub fn get(&self, id: &ChunkId) -> Option<Vec<u8>> {
        let (file, offset, len) = {
            let mut state = self.state.lock().ok()?;
            self.load(&mut state);
            let (segment, offset, len) = *state.map.get(id)?;
            (state.segments.get(segment)?.clone(), offset, len)
        };
        let mut buf = vec![0u8; len as usize];
        read_exact_at(&file, &mut buf, offset).ok()?;
        Some(buf)
    }

    /// Caches the sealed bytes of `id` (best effort: a cache that cannot be written only
    /// costs speed).
    pub fn put(&self, id: &ChunkId, sealed: &[u8]) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        self.load(&mut state);
        if let Err(e) = self.append(&mut state, id, sealed) {
            tracing::debug!("cannot cache blob {id}: {e}");
        }
    }

    fn append(&self, state: &mut State, id: &ChunkId, sealed: &[u8]) -> std::io::Result<()> {
        let len = u32::try_from(sealed.len())
            .ok()
            .filter(|l| *l <= MAX_RECORD)
            .ok_or_else(|| std::io::Error::other("too large to cache"))?;
        let (segment, at) = match state.writer {
            Some(w) => w,
            None => {
                cloudkeep_model::paths::create_private_dir(&self.dir)?;
                let mut suffix = [0u8; 6];
                let _ = crate::crypto::random_bytes(&mut suffix);
                let name = format!("{}-{}.seg", std::process::id(), hex::encode(suffix));
                let file = cloudkeep_model::paths::private_file_options()
                    .create_new(true)
                    .read(true)
                    .append(true)
                    .open(self.dir.join(name))?;
                state.segments.push(Arc::new(file));
                (state.segments.len() - 1, 0)
            }
        };
        let mut record = Vec::with_capacity(36 + sealed.len());
        record.extend_from_slice(&id.0);
        record.extend_from_slice(&len.to_le_bytes());
        record.extend_from_slice(sealed);
        let file = state.segments[segment].clone();
        (&*file).write_all(&record)?;
        state.map.insert(*id, (segment, at + 36, len));
        state.writer = Some((segment, at + record.len() as u64));
        Ok(())
    }

    /// Scans the segments once (merging or dropping them first when there are too many or
    /// they are too large).
    fn load(&self, state: &mut State) {
        if state.loaded {
            return;
        }
        state.loaded = true;
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "seg"))
            .collect();
        let total: u64 = paths
            .iter()
            .filter_map(|p| fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        if total > MAX_BYTES {
            for p in &paths {
                let _ = fs::remove_file(p);
            }
            return;
        }
        for path in &paths {
            let Ok(file) = File::open(path) else { continue };
            let segment = state.segments.len();
            for (id, offset, len) in scan(&file) {
                state.map.insert(id, (segment, offset, len));
            }
            state.segments.push(Arc::new(file));
        }
        if paths.len() >= MERGE_AT {
            self.merge(state, &paths);
        }
    }

    /// Rewrites every entry into this process's segment and removes the old segments, one
    /// entry in memory at a time.
    fn merge(&self, state: &mut State, old: &[PathBuf]) {
        let places: Vec<(ChunkId, Arc<File>, u64, u32)> = state
            .map
            .iter()
            .map(|(id, (segment, offset, len))| {
                (*id, state.segments[*segment].clone(), *offset, *len)
            })
            .collect();
        *state = State {
            loaded: true,
            ..State::default()
        };
        for (id, file, offset, len) in places {
            let mut buf = vec![0u8; len as usize];
            if read_exact_at(&file, &mut buf, offset).is_err() {
                continue;
            }
            if self.append(state, &id, &buf).is_err() {
                return;
            }
        }
        for path in old {
            let _ = fs::remove_file(path);
        }
    }
}

/// The records of a segment: id, offset of the bytes, length; stops at a torn or bad record.
/// Reads the headers only (a cache of a point of millions of files is hundreds of megabytes;
/// reading it whole to find its records held all of it in memory).
fn scan(file: &File) -> Vec<(ChunkId, u64, u32)> {
    let Ok(size) = file.metadata().map(|m| m.len()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut at = 0u64;
    let mut head = [0u8; 36];
    while at + 36 <= size && read_exact_at(file, &mut head, at).is_ok() {
        let mut id = [0u8; 32];
        id.copy_from_slice(&head[..32]);
        let len = u32::from_le_bytes([head[32], head[33], head[34], head[35]]);
        let end = at + 36 + u64::from(len);
        if len > MAX_RECORD || end > size {
            break;
        }
        out.push((ChunkId(id), at + 36, len));
        at = end;
    }
    out
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> ChunkId {
        ChunkId([n; 32])
    }

    #[test]
    fn entries_survive_a_reopen_and_a_torn_tail_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::new(dir.path());
        assert_eq!(cache.get(&id(1)), None);
        cache.put(&id(1), b"one");
        cache.put(&id(2), b"two two");
        assert_eq!(cache.get(&id(1)).as_deref(), Some(&b"one"[..]));
        drop(cache);
        let segment = fs::read_dir(dir.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        // A crash mid-record: a header promising more than is there.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&segment)
            .unwrap();
        f.write_all(&[3u8; 32]).unwrap();
        f.write_all(&100u32.to_le_bytes()).unwrap();
        f.write_all(b"short").unwrap();
        let cache = BlobCache::new(dir.path());
        assert_eq!(cache.get(&id(2)).as_deref(), Some(&b"two two"[..]));
        assert_eq!(cache.get(&id(3)), None);
        cache.put(&id(3), b"three");
        assert_eq!(cache.get(&id(3)).as_deref(), Some(&b"three"[..]));
    }

    #[test]
    fn many_segments_are_merged_into_one() {
        let dir = tempfile::tempdir().unwrap();
        for n in 0..MERGE_AT as u8 {
            BlobCache::new(dir.path()).put(&id(n), &[n; 10]);
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), MERGE_AT);
        let cache = BlobCache::new(dir.path());
        assert_eq!(cache.get(&id(5)), Some(vec![5u8; 10]));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        for n in 0..MERGE_AT as u8 {
            assert_eq!(cache.get(&id(n)), Some(vec![n; 10]));
        }
    }
}
