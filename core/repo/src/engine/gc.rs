//! Garbage collection: mark and sweep, with compaction of sparse packs.
//!
//! Mark: the live blobs are those the restore points' chunk sets list (in clear, so marking
//! reads no data). Sweep, in an order that a crash at any moment cannot hurt:
//! 1. blobs still live in sparse packs (less than half live) are copied as they are stored
//!    (sealed blobs are bound to their id, not their place) into new packs;
//! 2. one new index file names every live blob where it now is;
//! 3. the old index files are deleted;
//! 4. only then are dead, repacked and orphaned packs deleted;
//! 5. chunk sets no point needs (of deleted points, or left by an interrupted commit) go.
//!
//! A crash before 2 leaves new packs no index names (orphans, removed by the next run); after
//! 2, index entries that overlap but all point at existing packs; after 3, packs nothing
//! references. It runs under the exclusive repository lock, so no backup is running that
//! might have deduplicated against a blob about to go.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::EngineError;
use crate::backend::MetaKind;
use crate::blob::{self, SealedBlob};
use crate::crypto::ChunkId;
use crate::lock::{self, LockKind};
use crate::pack::{PackEntry, PackId};
use crate::repo::{BlobLocation, RepoError, Repository, SetReader};
use crate::saver::{Lane, with_saver};

/// A pack is compacted when less than this share of its bytes is live.
const REPACK_BELOW: f64 = 0.5;

/// What a collection did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    /// Blobs still referenced.
    pub live_blobs: usize,
    /// Blobs no point references any more.
    pub dead_blobs: usize,
    /// Packs deleted because nothing in them was live.
    pub packs_deleted: usize,
    /// Sparse packs whose live blobs were copied into new packs.
    pub packs_repacked: usize,
    /// Packs no index named (left by interrupted runs), deleted.
    pub orphan_packs: usize,
    /// Bytes of packs before.
    pub bytes_before: u64,
    /// Bytes of packs after.
    pub bytes_after: u64,
    /// Live blobs that could not be read or authenticated while repacking (left in place).
    pub damaged_blobs: usize,
    /// Chunk sets no restore point needs any more, deleted.
    pub sets_deleted: usize,
}

/// Collects garbage in `repo`.
pub fn gc(repo: &Repository) -> Result<GcReport, EngineError> {
    let _lock = lock::acquire(repo.backend(), LockKind::Exclusive)?;
    let index = repo.load_index()?;
    let mut sets = SetReader::new(repo);
    let mut live: HashSet<ChunkId> = HashSet::new();
    for point in repo.list_points()? {
        // A point whose chunk set cannot be read stops the collection: without its list,
        // nothing can be known to be unused.
        live.extend(sets.ids(&point.set)?.iter().copied());
    }
    let on_disk: HashMap<PackId, u64> = repo
        .backend()
        .list_packs()
        .map_err(RepoError::from)?
        .into_iter()
        .collect();
    let mut report = GcReport {
        bytes_before: on_disk.values().sum(),
        ..GcReport::default()
    };

    let mut by_pack: HashMap<PackId, Vec<(ChunkId, BlobLocation)>> = HashMap::new();
    for (id, loc) in index.iter() {
        if live.contains(id) {
            by_pack.entry(loc.pack).or_default().push((*id, *loc));
            report.live_blobs += 1;
        } else {
            report.dead_blobs += 1;
        }
    }

    let mut kept: Vec<(PackId, Vec<PackEntry>)> = Vec::new();
    let mut to_repack: Vec<(PackId, Vec<(ChunkId, BlobLocation)>)> = Vec::new();
    for (pack, blobs) in by_pack {
        let Some(&len) = on_disk.get(&pack) else {
            // Missing pack: keep its entries so verify keeps reporting the damage.
            kept.push((pack, entries(&blobs)));
            continue;
        };
        let live_bytes: u64 = blobs.iter().map(|(_, l)| u64::from(l.stored_len)).sum();
        if (live_bytes as f64) < REPACK_BELOW * len as f64 {
            to_repack.push((pack, blobs));
        } else {
            kept.push((pack, entries(&blobs)));
        }
    }

    // 1. Copy the live blobs of sparse packs into new packs (the repository's pack writer).
    let mut repacked_from: Vec<PackId> = Vec::new();
    let (copied, stored) = with_saver(repo, |saver| -> Result<(), EngineError> {
        for (pack, blobs) in &to_repack {
            let mut all_moved = true;
            for (id, loc) in blobs {
                let stored = repo
                    .backend()
                    .read_range(pack, loc.offset, u64::from(loc.stored_len))
                    .map_err(RepoError::from);
                match stored {
                    Ok(bytes) if blob::open(repo.keys(), id, &bytes).is_ok() => {
                        let sealed = SealedBlob {
                            id: *id,
                            plain_len: loc.plain_len,
                            bytes,
                        };
                        saver.save(Lane::Data, sealed)?;
                    }
                    _ => {
                        report.damaged_blobs += 1;
                        all_moved = false;
                    }
                }
            }
            if all_moved {
                repacked_from.push(*pack);
            } else {
                // Keep the pack (and its entries) so that nothing readable is lost.
                kept.push((*pack, entries(blobs)));
            }
        }
        Ok(saver.flush()?)
    });
    // A storage error that stopped the writers is the one to report.
    kept.extend(stored?);
    copied?;
    report.packs_repacked = repacked_from.len();

    // 2. One index naming every live blob where it is now; 3. the old index files go.
    let old_indexes = repo
        .backend()
        .list_meta(MetaKind::Index)
        .map_err(RepoError::from)?;
    let new_index = repo.write_index(&kept)?;
    for name in old_indexes.iter().filter(|n| **n != new_index) {
        repo.backend()
            .delete_meta(MetaKind::Index, name)
            .map_err(RepoError::from)?;
    }

    // 4. Delete what nothing references any more.
    let referenced: HashSet<PackId> = kept.iter().map(|(p, _)| *p).collect();
    let repacked: HashSet<PackId> = repacked_from.iter().copied().collect();
    let indexed: HashSet<PackId> = index.iter().map(|(_, l)| l.pack).collect();
    for pack in on_disk.keys().filter(|p| !referenced.contains(p)) {
        if repacked.contains(pack) {
            // counted in packs_repacked
        } else if indexed.contains(pack) {
            report.packs_deleted += 1;
        } else {
            report.orphan_packs += 1;
        }
        repo.backend().delete_pack(pack).map_err(RepoError::from)?;
    }
    // 5. Chunk sets nothing needs.
    for name in repo
        .backend()
        .list_meta(MetaKind::ChunkSet)
        .map_err(RepoError::from)?
    {
        if !sets.used().contains(&name) {
            repo.backend()
                .delete_meta(MetaKind::ChunkSet, &name)
                .map_err(RepoError::from)?;
            report.sets_deleted += 1;
        }
    }
    report.bytes_after = repo
        .backend()
        .list_packs()
        .map_err(RepoError::from)?
        .iter()
        .map(|(_, len)| len)
        .sum();
    Ok(report)
}

fn entries(blobs: &[(ChunkId, BlobLocation)]) -> Vec<PackEntry> {
    blobs
        .iter()
        .map(|(id, l)| PackEntry {
            id: *id,
            offset: l.offset,
            stored_len: l.stored_len,
            plain_len: l.plain_len,
        })
        .collect()
}
