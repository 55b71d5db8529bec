//! Repair of packs that failed a check: their intact blobs are salvaged into a new pack (and
//! a new index file), then the storage is told to set the pack aside, so that it is listed no
//! more and its lost chunks count as absent — the next backup sends them again wherever the
//! source still has them. Used by verify (the packs it found damaged or missing) and by
//! backup (packs the SP's own check marked damaged).
//!
//! Nothing readable is lost: every blob that still authenticates is copied before the pack
//! is set aside, and a store that cannot tell (its storage is unreachable) fails instead.

use std::collections::HashSet;

use serde::Serialize;

use super::EngineError;
use crate::backend::PackHealth;
use crate::blob::{self, SealedBlob};
use crate::crypto::ChunkId;
use crate::pack::{self, PackId};
use crate::repo::{RepoError, Repository};
use crate::saver::{Lane, with_saver};

/// What became of one pack.
#[derive(Debug, Clone, Serialize)]
pub struct Repaired {
    /// The pack.
    pub pack: String,
    /// What the storage found when told (missing, damaged, intact).
    pub health: PackHealth,
    /// Blobs copied into a new pack.
    pub salvaged: usize,
    /// Blobs that could not be read intact: lost unless a backup sends them again.
    pub lost: usize,
}

/// Salvages what is intact in `packs` and has the storage set them aside.
pub fn salvage(repo: &Repository, packs: &[PackId]) -> Result<Vec<Repaired>, EngineError> {
    let index = repo.load_index()?;
    let mut out = Vec::new();
    let mut copied: HashSet<ChunkId> = HashSet::new();
    let (tallied, stored) = with_saver(repo, |saver| -> Result<_, EngineError> {
        let mut tallies = Vec::new();
        for pack in packs {
            // The blobs the index files say are in it, and the ones its own trailer names.
            let mut wanted: Vec<(ChunkId, u64, u32, u32)> = index
                .iter()
                .filter(|(_, l)| l.pack == *pack)
                .map(|(id, l)| (*id, l.offset, l.stored_len, l.plain_len))
                .collect();
            let bytes = repo
                .backend()
                .pack_len(pack)
                .and_then(|len| repo.backend().read_range(pack, 0, len))
                .ok();
            if let Some(bytes) = &bytes
                && let Ok(entries) = pack::parse(repo.keys(), pack, bytes)
            {
                let known: HashSet<ChunkId> = wanted.iter().map(|w| w.0).collect();
                wanted.extend(
                    entries
                        .iter()
                        .filter(|e| !known.contains(&e.id))
                        .map(|e| (e.id, e.offset, e.stored_len, e.plain_len)),
                );
            }
            let (mut salvaged, mut lost) = (0, 0);
            for (id, offset, stored_len, plain_len) in wanted {
                let intact = bytes.as_ref().and_then(|b| {
                    let start = usize::try_from(offset).ok()?;
                    let piece = b.get(start..start.checked_add(stored_len as usize)?)?;
                    blob::open(repo.keys(), &id, piece)
                        .ok()
                        .map(|_| piece.to_vec())
                });
                match intact {
                    Some(piece) => {
                        if copied.insert(id) {
                            let sealed = SealedBlob {
                                id,
                                plain_len,
                                bytes: piece,
                            };
                            saver.save(Lane::Data, sealed)?;
                        }
                        salvaged += 1;
                    }
                    None => lost += 1,
                }
            }
            tallies.push((*pack, salvaged, lost));
        }
        saver.flush()?;
        Ok(tallies)
    });
    // A storage error that stopped the writers is the one to report.
    let stored = stored?;
    let tallies = tallied?;
    // The copies are stored and indexed before anything is set aside.
    if !stored.is_empty() {
        repo.write_index(&stored)?;
    }
    for (pack, salvaged, lost) in tallies {
        let health = repo.backend().set_aside(&pack).map_err(RepoError::from)?;
        tracing::warn!(
            "pack {}: {salvaged} blobs salvaged, {lost} lost; the storage found it {health:?}",
            pack.to_hex()
        );
        out.push(Repaired {
            pack: pack.to_hex(),
            health,
            salvaged,
            lost,
        });
    }
    Ok(out)
}
