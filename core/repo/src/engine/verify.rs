//! Verify (health check): re-reads packs, checks each pack's hash and index, authenticates and
//! decodes every blob, and names what damage affects: which restore points, which files.
//!
//! A sample percentage checks a random subset of packs (a quick routine check); 100 checks
//! everything. Packs are read whole and checked in parallel.
//!
//! Damage is not only reported but marked, so that it heals: a pack that is missing or whose
//! bytes no longer match its id has its intact blobs salvaged and is set aside by the
//! storage ([`super::repair`]); its lost chunks then count as absent, and the next backup
//! sends them again wherever the source still has them. The report says which points and
//! files stay damaged until then.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;

use rayon::prelude::*;
use serde::Serialize;

use super::EngineError;
use crate::backend::StoreError;
use crate::blob;
use crate::catalog::{Extent, NodeKind};
use crate::crypto::ChunkId;
use crate::pack::{self, PackId};
use crate::repo::{ChunkIndex, Repository, RestorePoint, SetReader};

/// What verify found wrong with one pack.
#[derive(Debug, Clone, Serialize)]
pub struct DamagedPack {
    /// The pack.
    pub pack: String,
    /// What is wrong.
    pub reason: String,
    /// Blobs of it that cannot be read.
    pub bad_blobs: usize,
    /// What was done about it (salvaged and set aside, or left).
    pub action: String,
}

/// A restore point that damage reaches, and the paths in it that cannot be restored intact.
#[derive(Debug, Clone, Serialize)]
pub struct AffectedPoint {
    /// The point.
    pub point: String,
    /// Files (and folders whose listing is damaged) affected; the rest of the point restores.
    pub paths: Vec<String>,
}

/// A restore point whose list of chunks cannot be read, or names chunks no index knows.
#[derive(Debug, Clone, Serialize)]
pub struct DamagedPoint {
    /// The point.
    pub point: String,
    /// What is wrong.
    pub reason: String,
}

/// The result of a verify run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// Packs read.
    pub packs_checked: usize,
    /// Blobs authenticated.
    pub blobs_checked: usize,
    /// Bytes read.
    pub bytes_checked: u64,
    /// Packs with damage.
    pub damaged: Vec<DamagedPack>,
    /// Points reached by the damage.
    pub affected: Vec<AffectedPoint>,
    /// Points whose chunk list is damaged or incomplete.
    pub damaged_points: Vec<DamagedPoint>,
    /// Packs salvaged and set aside, so that the next backup sends their lost data again.
    pub repaired: Vec<super::repair::Repaired>,
}

impl VerifyReport {
    /// True when nothing is wrong.
    pub fn is_healthy(&self) -> bool {
        self.damaged.is_empty() && self.damaged_points.is_empty()
    }
}

/// Checks `sample_percent` (1–100) of the packs, and marks the damage it finds (see the
/// module doc).
pub fn verify(repo: &Repository, sample_percent: u8) -> Result<VerifyReport, EngineError> {
    // Shared: garbage collection must not delete packs while they are checked.
    let _lock = crate::lock::acquire(repo.backend(), crate::lock::LockKind::Shared)?;
    // Points first, then the index: a point is written after the index files naming its
    // chunks, so every point listed here finds them even while a backup commits more.
    let listed_points = repo.list_points()?;
    let index = repo.load_index()?;
    let stored: HashSet<PackId> = repo
        .backend()
        .list_packs()
        .map_err(crate::repo::RepoError::from)?
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    let flagged: HashSet<PackId> = repo
        .backend()
        .damaged_packs()
        .map_err(crate::repo::RepoError::from)?
        .into_iter()
        .collect();
    let mut by_pack: HashMap<PackId, Vec<ChunkId>> = HashMap::new();
    for (id, loc) in index.iter() {
        by_pack.entry(loc.pack).or_default().push(*id);
    }
    // Packs an index names that the storage no longer lists were set aside (or lost) before:
    // their effect shows in the points below, not as new damage.
    let mut packs: Vec<PackId> = by_pack
        .keys()
        .copied()
        .filter(|p| stored.contains(p))
        .collect();
    packs.sort();
    let percent = usize::from(sample_percent.clamp(1, 100));
    if percent < 100 {
        let mut seed = [0u8; 8];
        crate::crypto::random_bytes(&mut seed).map_err(crate::repo::RepoError::from)?;
        let seed = u64::from_le_bytes(seed);
        packs.retain(|p| {
            let h = u64::from_le_bytes([
                p.0[0], p.0[1], p.0[2], p.0[3], p.0[4], p.0[5], p.0[6], p.0[7],
            ]) ^ seed;
            (h % 100) < percent as u64 || flagged.contains(p)
        });
    }

    let results: Vec<PackResult> = packs
        .par_iter()
        .map(|pack| check_pack(repo, &index, pack, &by_pack[pack]))
        .collect();

    let mut report = VerifyReport {
        packs_checked: results.len(),
        ..VerifyReport::default()
    };
    let mut bad: HashSet<ChunkId> = HashSet::new();
    let mut to_repair: Vec<PackId> = Vec::new();
    for result in results {
        report.blobs_checked += result.blobs;
        report.bytes_checked += result.bytes;
        if let Some(mut damage) = result.damage {
            if repo.backend().read_only() {
                damage.action =
                    "none: a backup file is never changed; use another copy of it".into();
                bad.extend(result.bad);
            } else if result.gone || flagged.contains(&result.pack) {
                to_repair.push(result.pack);
            } else {
                damage.action = "left in place: its bytes are what was uploaded, so these blobs were written damaged; back the files up again".into();
                bad.extend(result.bad);
            }
            report.damaged.push(damage);
        }
    }
    if !to_repair.is_empty() {
        report.repaired = super::repair::salvage(repo, &to_repair)?;
        for done in &report.repaired {
            if let Some(damage) = report.damaged.iter_mut().find(|d| d.pack == done.pack) {
                damage.action = match done.health {
                    crate::backend::PackHealth::Intact => format!(
                        "the storage still has it intact (the read failed on the way): {} blobs copied again",
                        done.salvaged
                    ),
                    _ => format!(
                        "set aside: {} intact blobs salvaged, {} lost; the next backup sends the lost data again where the files still exist",
                        done.salvaged, done.lost
                    ),
                };
            }
        }
    }
    // What restores can read now, after the repair.
    let readable = repo.load_readable_index()?;
    let mut sets = SetReader::new(repo);
    let mut points = Vec::new();
    for point in listed_points {
        match sets.ids(&point.set) {
            Ok(ids) => {
                let unknown: Vec<ChunkId> = ids
                    .iter()
                    .filter(|c| !readable.contains(c))
                    .copied()
                    .collect();
                if !unknown.is_empty() {
                    report.damaged_points.push(DamagedPoint {
                        point: point.id.clone(),
                        reason: format!(
                            "{} of its chunks are in no stored pack that an index file names; the next backup sends them again where the files still exist, and adopts stored packs no index file names",
                            unknown.len()
                        ),
                    });
                    bad.extend(unknown);
                }
                points.push((point, ids));
            }
            Err(e) => report.damaged_points.push(DamagedPoint {
                point: point.id.clone(),
                reason: e.to_string(),
            }),
        }
    }
    if !bad.is_empty() {
        for (point, ids) in points {
            if ids.iter().any(|c| bad.contains(c)) {
                let paths = affected_paths(repo, &readable, &point, &bad);
                report.affected.push(AffectedPoint {
                    point: point.id.clone(),
                    paths,
                });
            }
        }
    }
    Ok(report)
}

/// What checking one pack found.
struct PackResult {
    pack: PackId,
    blobs: usize,
    bytes: u64,
    damage: Option<DamagedPack>,
    /// Blobs of it that cannot be read.
    bad: Vec<ChunkId>,
    /// It is missing or its bytes do not match its id: the storage should set it aside.
    gone: bool,
}

fn check_pack(
    repo: &Repository,
    index: &ChunkIndex,
    pack: &PackId,
    blobs: &[ChunkId],
) -> PackResult {
    let damaged = |reason: String, bad: &[ChunkId]| DamagedPack {
        pack: pack.to_hex(),
        reason,
        bad_blobs: bad.len(),
        action: String::new(),
    };
    let bytes = match repo
        .backend()
        .pack_len(pack)
        .and_then(|len| repo.backend().read_range(pack, 0, len))
    {
        Ok(bytes) => bytes,
        Err(e) => {
            let reason = match e {
                StoreError::NotFound { .. } => "the pack is missing".to_owned(),
                other => other.to_string(),
            };
            return PackResult {
                pack: *pack,
                blobs: 0,
                bytes: 0,
                damage: Some(damaged(reason, blobs)),
                bad: blobs.to_vec(),
                gone: true,
            };
        }
    };
    let len = bytes.len() as u64;
    let mut problems = Vec::new();
    let changed = PackId::of(&bytes) != *pack;
    if changed {
        problems.push("its content does not match its id (bytes changed or cut)".to_owned());
    }
    if let Err(e) = pack::parse(repo.keys(), pack, &bytes) {
        problems.push(e.to_string());
    }
    let mut bad = Vec::new();
    for id in blobs {
        let ok = index.get(id).is_some_and(|loc| {
            let start = loc.offset as usize;
            let end = start.saturating_add(loc.stored_len as usize);
            bytes
                .get(start..end)
                .is_some_and(|stored| blob::open(repo.keys(), id, stored).is_ok())
        });
        if !ok {
            bad.push(*id);
        }
    }
    if !bad.is_empty() {
        problems.push(format!(
            "{} of its {} blobs fail authentication or decoding",
            bad.len(),
            blobs.len()
        ));
    }
    let damage = (!problems.is_empty()).then(|| damaged(problems.join("; "), &bad));
    PackResult {
        pack: *pack,
        blobs: blobs.len(),
        bytes: len,
        damage,
        bad,
        gone: changed,
    }
}

/// Walks a point's catalog and lists what the bad blobs reach.
fn affected_paths(
    repo: &Repository,
    index: &ChunkIndex,
    point: &RestorePoint,
    bad: &HashSet<ChunkId>,
) -> Vec<String> {
    let mut out = BTreeSet::new();
    let mut stack: Vec<(PathBuf, Vec<ChunkId>)> =
        vec![(PathBuf::from("/"), point.manifest.root.clone())];
    while let Some((path, parts)) = stack.pop() {
        if parts.iter().any(|p| bad.contains(p)) {
            out.insert(format!("{} (folder listing)", path.display()));
            continue;
        }
        let Ok(nodes) = repo.load_dir(index, &parts) else {
            out.insert(format!("{} (folder listing)", path.display()));
            continue;
        };
        for node in nodes {
            let child = path.join(super::fsmeta::name_os(&node.name));
            match node.kind {
                NodeKind::Dir => stack.push((child, node.subtree)),
                NodeKind::File
                    if node
                        .content
                        .iter()
                        .any(|e| matches!(e, Extent::Data { id, .. } if bad.contains(id))) =>
                {
                    out.insert(child.display().to_string());
                }
                _ => {}
            }
        }
    }
    out.into_iter().collect()
}
