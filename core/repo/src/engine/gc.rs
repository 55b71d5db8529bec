//! Garbage collection: mark and sweep, with compaction of sparse packs.
//!
//! Mark: the live blobs are those the restore points' chunk sets list (in clear, so marking
//! reads no data), with the points a store keeps unlisted (a gateway's recycle bin). Which
//! partly used packs to compact: the emptiest first, until what stays unused is at most
//! `max_unused` of the live bytes (5 %, as restic's prune), so a collection gives back at
//! least 95 % of the dead bytes while moving as little live data as it can. Sweep, in an
//! order that a crash at any moment cannot hurt:
//! 1. blobs still live in the packs chosen are copied as they are stored
//!    (sealed blobs are bound to their id, not their place) into new packs;
//! 2. one new index file names every live blob where it now is;
//! 3. the old index files are deleted;
//! 4. only then are dead, repacked and orphaned packs deleted;
//! 5. chunk sets no point needs (of deleted points, or left by an interrupted commit) go.
//!
//! A crash before 2 leaves new packs no index names (orphans, removed by the next run); after
//! 2, index entries that overlap but all point at existing packs; after 3, packs nothing
//! references. It runs under the exclusive repository lock, so no backup is running that
//! might have deduplicated against a blob about to go. Packs go through
//! `PackStore::drop_packs`: a gateway checks them itself (and under insider protection only
//! retires them), and may keep some — they become unindexed packs a later backup adopts.

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

/// How a collection chooses what to compact.
#[derive(Debug, Clone, Copy)]
pub struct GcOptions {
    /// The share of the live bytes that may stay unused in partly used packs afterwards.
    pub max_unused: f64,
    /// Only when more than this share of the stored blob bytes is unused (an automatic
    /// compaction after retention): otherwise the collection measures and stops.
    pub only_above: Option<f64>,
}

impl Default for GcOptions {
    fn default() -> Self {
        Self {
            max_unused: 0.05,
            only_above: None,
        }
    }
}

/// The share of unused bytes above which a job compacts its repository by itself after
/// retention removed points.
pub const AUTO_COMPACT_ABOVE: f64 = 0.15;

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
    /// Bytes of live blobs copied into new packs.
    pub bytes_moved: u64,
    /// Bytes no point needs that stay in partly used packs (within `max_unused`).
    pub unused_left: u64,
    /// Packs the store kept though the collection let them go, with why (a gateway keeps a
    /// pack holding data only it has that a point needs; a later backup adopts it).
    pub packs_kept: Vec<(String, String)>,
    /// Bytes of blobs some point needs.
    pub live_bytes: u64,
    /// Bytes of blobs no point needs, before the collection.
    pub unused_bytes: u64,
    /// Nothing was changed: less was unused than `only_above` asks for.
    pub skipped: bool,
}

/// Collects garbage in `repo` with the default options.
pub fn gc(repo: &Repository) -> Result<GcReport, EngineError> {
    gc_with(repo, GcOptions::default())
}

/// Collects garbage in `repo`.
pub fn gc_with(repo: &Repository, options: GcOptions) -> Result<GcReport, EngineError> {
    let _lock = lock::acquire(repo.backend(), LockKind::Exclusive)?;
    let on_disk: HashMap<PackId, u64> = repo
        .backend()
        .list_packs()
        .map_err(RepoError::from)?
        .into_iter()
        .collect();
    let listed: HashSet<PackId> = on_disk.keys().copied().collect();
    let index = repo.load_index_preferring(&listed)?;
    let mut sets = SetReader::new(repo);
    let mut live: HashSet<ChunkId> = HashSet::new();
    let kept_sets = repo.backend().retained_sets().map_err(RepoError::from)?;
    for set in repo
        .list_points()?
        .into_iter()
        .map(|p| p.set)
        .chain(kept_sets)
    {
        // A point whose chunk set cannot be read stops the collection: without its list,
        // nothing can be known to be unused.
        live.extend(sets.ids(&set)?.iter().copied());
    }
    let mut report = GcReport {
        bytes_before: on_disk.values().sum(),
        ..GcReport::default()
    };

    let mut by_pack: HashMap<PackId, Vec<(ChunkId, BlobLocation)>> = HashMap::new();
    let mut dead_in: HashMap<PackId, u64> = HashMap::new();
    for (id, loc) in index.iter() {
        if live.contains(id) {
            by_pack.entry(loc.pack).or_default().push((*id, loc));
            report.live_blobs += 1;
            report.live_bytes += u64::from(loc.stored_len);
        } else {
            *dead_in.entry(loc.pack).or_default() += u64::from(loc.stored_len);
            report.dead_blobs += 1;
            report.unused_bytes += u64::from(loc.stored_len);
        }
    }
    if let Some(above) = options.only_above {
        let stored = report.live_bytes + report.unused_bytes;
        if (report.unused_bytes as f64) <= above * stored as f64 {
            report.skipped = true;
            report.bytes_after = report.bytes_before;
            return Ok(report);
        }
    }

    let mut kept: Vec<(PackId, Vec<PackEntry>)> = Vec::new();
    // (unused bytes, pack, its live blobs)
    type Partly = (u64, PackId, Vec<(ChunkId, BlobLocation)>);
    let mut partly: Vec<Partly> = Vec::new();
    let mut live_total = 0u64;
    for (pack, blobs) in by_pack {
        let Some(&len) = on_disk.get(&pack) else {
            // Missing pack: keep its entries so verify keeps reporting the damage.
            kept.push((pack, entries(&blobs)));
            continue;
        };
        let live_bytes: u64 = blobs.iter().map(|(_, l)| u64::from(l.stored_len)).sum();
        live_total += live_bytes;
        let dead = dead_in.get(&pack).copied().unwrap_or(0).min(len);
        partly.push((dead, pack, blobs));
    }
    // The emptiest packs first (unused share), until what stays unused fits `max_unused`.
    partly.sort_by(|a, b| {
        let share = |(dead, pack, _): &(u64, PackId, _)| *dead as f64 / on_disk[pack].max(1) as f64;
        share(b).total_cmp(&share(a))
    });
    let mut unused: u64 = partly.iter().map(|(dead, _, _)| dead).sum();
    let allowed = (options.max_unused * live_total as f64) as u64;
    let mut to_repack: Vec<(PackId, Vec<(ChunkId, BlobLocation)>)> = Vec::new();
    for (dead, pack, blobs) in partly {
        // A pack with (almost) nothing unused is never worth copying.
        if unused > allowed && dead > 0 {
            unused -= dead;
            to_repack.push((pack, blobs));
        } else {
            kept.push((pack, entries(&blobs)));
        }
    }
    report.unused_left = unused;

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
                        report.bytes_moved += bytes.len() as u64;
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

    // 2. Index files naming every live blob where it is now; 3. the old index files go.
    let old_indexes = repo
        .backend()
        .list_meta(MetaKind::Index)
        .map_err(RepoError::from)?;
    let new_indexes: HashSet<String> = repo.write_indexes(&kept)?.into_iter().collect();
    for name in old_indexes.iter().filter(|n| !new_indexes.contains(*n)) {
        repo.backend()
            .delete_meta(MetaKind::Index, name)
            .map_err(RepoError::from)?;
    }

    // 4. Delete what nothing references any more.
    let referenced: HashSet<PackId> = kept.iter().map(|(p, _)| *p).collect();
    let repacked: HashSet<PackId> = repacked_from.iter().copied().collect();
    let indexed: HashSet<PackId> = index.iter().map(|(_, l)| l.pack).collect();
    let going: Vec<PackId> = on_disk
        .keys()
        .filter(|p| !referenced.contains(p))
        .copied()
        .collect();
    let kept_back = repo.backend().drop_packs(&going).map_err(RepoError::from)?;
    let kept_ids: HashSet<PackId> = kept_back.iter().map(|(p, _)| *p).collect();
    for pack in going.iter().filter(|p| !kept_ids.contains(p)) {
        if repacked.contains(pack) {
            // counted in packs_repacked
        } else if indexed.contains(pack) {
            report.packs_deleted += 1;
        } else {
            report.orphan_packs += 1;
        }
    }
    report.packs_kept = kept_back
        .into_iter()
        .map(|(p, why)| (p.to_hex(), why))
        .collect();
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
    repo.backend().points_changed();
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
