//! Restore tests: proves a restore point can be restored, the way a person restoring would find
//! out — by restoring — without restoring all of it.
//!
//! **File-level point.** Every folder listing is read (a damaged listing hides whole folders),
//! a random sample of the files is restored into a scratch folder through the same batched
//! restore as a real one ([`super::restore::restore_nodes`]), and each restored file is read
//! back from the disk and cut at the lengths the catalog recorded: every piece's keyed hash
//! must be the chunk id recorded at backup time, every hole must read as zeros, and the file
//! must end where the backed-up one ended. So a pass proves the bytes on disk are the bytes
//! that were backed up — not only that the repository's blobs authenticate.
//!
//! **Image-level point.** Each disk's chunks are sampled, read and hashed again against their
//! recorded ids; each volume's file system is opened (in user space, as browsing opens it:
//! no root, no kernel mount), walked whole, and a sample of its files is copied out to the
//! scratch folder: a volume that no longer opens, a folder that no longer lists or a file that
//! no longer reads fails the test with its path.
//!
//! The sample is a share of the files (and of a disk's chunks), never fewer than a minimum, so
//! a small point is proven whole. The scratch folder holds the tenant's plaintext: it is the
//! caller's owner-only folder, and it is emptied again however the test ends.

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::disk::disk_node;
use super::restore::restore_nodes;
use super::volumes::{open_volume, volume_name};
use super::{Cancel, EngineError, Progress};
use crate::catalog::{Extent, Node, NodeKind};
use crate::crypto::{ChunkId, RepoKeys};
use crate::image::files::{EntryKind, VolumeFiles};
use crate::repo::{ChunkIndex, Repository, RestorePoint};

/// How much of a point a restore test restores, and where.
#[derive(Debug, Clone)]
pub struct ProveOptions {
    /// Share of the files (and of a disk's chunks) restored, in percent: 1–100.
    pub sample_percent: u8,
    /// At least this many files (and chunks of a disk) where the point has them.
    pub min_files: usize,
    /// An owner-only scratch folder (created; emptied again at the end).
    pub scratch: PathBuf,
    /// Stops the test between files.
    pub cancel: Cancel,
}

/// Files a test restores at least, by default: a small point is proven whole.
pub const DEFAULT_MIN_FILES: usize = 20;

/// One thing that could not be restored as it was backed up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Where, inside the point (`/home/alice/report.odt`, `/sda/sda1/etc/fstab`).
    pub path: String,
    /// What went wrong.
    pub reason: String,
}

/// What the test did with one volume of an image-level point.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeProof {
    /// The volume, as the point's tree names it (`/sda/sda1`).
    pub volume: String,
    /// Its file system (`ext4`, `vfat`, `ntfs`), when one this version can open.
    pub filesystem: Option<String>,
    /// Whether its file system opened.
    pub opened: bool,
    /// Entries its walk listed.
    pub entries: u64,
    /// Files restored from it.
    pub files: u64,
    /// Bytes of them.
    pub bytes: u64,
}

/// What a restore test did and found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProveReport {
    /// The point tested.
    pub point: String,
    /// The point's time, ms since the epoch.
    pub point_time_ms: i64,
    /// Whether it is an image-level point.
    pub image: bool,
    /// Files in the point (file level) or in its volumes' walks (image level).
    pub files_in_point: u64,
    /// Files sampled.
    pub files_sampled: u64,
    /// Files restored and found identical to what was backed up.
    pub files_proven: u64,
    /// Folder listings read (from the store, never from a local cache).
    pub folders_read: u64,
    /// Chunks hashed again against their recorded ids.
    pub chunks_checked: u64,
    /// Bytes restored into the scratch folder.
    pub bytes_restored: u64,
    /// Bytes read back and checked.
    pub bytes_checked: u64,
    /// Stored bytes of the listings and chunks read from the repository (what the test
    /// fetched).
    pub stored_bytes_read: u64,
    /// The volumes of an image-level point.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeProof>,
    /// What could not be restored as it was backed up (empty: proven restorable).
    pub failures: Vec<Problem>,
    /// Sampled files the test could not try (the scratch folder's disk full): not a fault of
    /// the backup, but not proven either.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub untested: Vec<Problem>,
    /// How long it took.
    pub elapsed_ms: u64,
}

impl ProveReport {
    /// Whether no sampled file came back different (or not at all).
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// Whether every sampled file came back as it was backed up: passed, none left untested.
    pub fn proven(&self) -> bool {
        self.passed() && self.untested.is_empty()
    }

    /// One line for people.
    pub fn summary(&self) -> String {
        let what = format!(
            "{} of {} sampled files restored identical ({}, {} chunks hashed again{})",
            self.files_proven,
            self.files_sampled,
            cloudkeep_model::units::human_bytes(self.bytes_checked),
            self.chunks_checked,
            if self.image {
                format!(
                    ", {} volumes opened",
                    self.volumes.iter().filter(|v| v.opened).count()
                )
            } else {
                String::new()
            }
        );
        match self.failures.first() {
            None if !self.untested.is_empty() => format!(
                "{} sampled files not tested ({}); {what}",
                self.untested.len(),
                self.untested[0].reason
            ),
            None => format!("proven restorable: {what}"),
            Some(first) => format!(
                "NOT restorable as backed up: {}: {}{}; {what}",
                first.path,
                first.reason,
                match self.failures.len() {
                    1 => String::new(),
                    n => format!(" (and {} more)", n - 1),
                }
            ),
        }
    }
}

/// A uniform sample: each item with the given probability, topped up from a reservoir of the
/// items not taken so that at least `min` come out where there are that many.
struct Sampler<T> {
    percent: u8,
    min: usize,
    rng: fastrand::Rng,
    picked: Vec<T>,
    reservoir: Vec<T>,
    passed: u64,
}

impl<T> Sampler<T> {
    fn new(percent: u8, min: usize) -> Self {
        let mut seed = [0u8; 8];
        let _ = getrandom::fill(&mut seed);
        Self {
            percent: percent.clamp(1, 100),
            min,
            rng: fastrand::Rng::with_seed(u64::from_le_bytes(seed)),
            picked: Vec::new(),
            reservoir: Vec::new(),
            passed: 0,
        }
    }

    fn offer(&mut self, item: T) {
        if self.rng.u8(0..100) < self.percent {
            self.picked.push(item);
            return;
        }
        self.passed += 1;
        if self.reservoir.len() < self.min {
            self.reservoir.push(item);
        } else {
            let at = self.rng.u64(0..self.passed);
            if let Some(slot) = usize::try_from(at)
                .ok()
                .and_then(|i| self.reservoir.get_mut(i))
            {
                *slot = item;
            }
        }
    }

    fn finish(mut self) -> Vec<T> {
        let short = self.min.saturating_sub(self.picked.len());
        self.picked.extend(self.reservoir.into_iter().take(short));
        self.picked
    }
}

/// Runs a restore test of `point`.
pub fn prove(
    repo: &Repository,
    point: &RestorePoint,
    options: &ProveOptions,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Result<ProveReport, EngineError> {
    // Every listing from the store itself, never from this computer's cache of them: a
    // computer that lost everything has no cache.
    let repo = &repo.uncached();
    // Shared: garbage collection must not move packs while they are read.
    let _lock = crate::lock::acquire(repo.backend(), crate::lock::LockKind::Shared)?;
    let index = repo.load_readable_index()?;
    let started = Instant::now();
    fs::create_dir_all(&options.scratch).map_err(|e| EngineError::Path {
        path: options.scratch.clone(),
        reason: format!("cannot create the restore test's scratch folder: {e}"),
    })?;
    let mut report = ProveReport {
        point: point.id.clone(),
        point_time_ms: point.time_ns / 1_000_000,
        image: point.manifest.is_image(),
        ..ProveReport::default()
    };
    let outcome = if report.image {
        prove_image(repo, &index, point, options, &mut report, progress)
    } else {
        prove_files(repo, &index, point, options, &mut report, progress)
    };
    clear_scratch(&options.scratch);
    outcome?;
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

fn join(parent: &str, name: &[u8]) -> String {
    format!("{parent}/{}", String::from_utf8_lossy(name))
}

/// Stored bytes of the blobs `ids` (what reading them fetches).
fn stored<'i>(index: &ChunkIndex, ids: impl Iterator<Item = &'i ChunkId>) -> u64 {
    ids.filter_map(|id| index.get(id).map(|l| u64::from(l.stored_len)))
        .sum()
}

/// Most tree parts of folder listings read at once.
const LISTING_PARTS: usize = 64;

fn prove_files(
    repo: &Repository,
    index: &ChunkIndex,
    point: &RestorePoint,
    options: &ProveOptions,
    report: &mut ProveReport,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Result<(), EngineError> {
    let mut sampler: Sampler<(String, Node)> =
        Sampler::new(options.sample_percent, options.min_files);
    let mut folders: VecDeque<(String, Vec<ChunkId>)> = VecDeque::new();
    let mut take = |path: String,
                    node: Node,
                    folders: &mut VecDeque<_>,
                    report: &mut ProveReport| match node.kind {
        NodeKind::File => {
            report.files_in_point += 1;
            sampler.offer((path, node));
        }
        NodeKind::Dir => folders.push_back((path, node.subtree)),
        _ => {}
    };
    report.stored_bytes_read += stored(index, point.manifest.root.iter());
    match repo.load_dir(index, &point.manifest.root) {
        Ok(top) => {
            report.folders_read += 1;
            for node in top {
                let path = join("", &node.name);
                take(path, node, &mut folders, report);
            }
        }
        Err(e) => report.failures.push(Problem {
            path: "/".into(),
            reason: format!("the point's top listing cannot be read: {e}"),
        }),
    }
    while !folders.is_empty() {
        if options.cancel.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        let mut group = Vec::new();
        let mut parts = 0;
        while let Some((_, subtree)) = folders.front() {
            if !group.is_empty() && parts + subtree.len() > LISTING_PARTS {
                break;
            }
            parts += subtree.len();
            group.extend(folders.pop_front());
        }
        let lists: Vec<&[ChunkId]> = group.iter().map(|(_, s)| s.as_slice()).collect();
        report.stored_bytes_read += stored(index, lists.iter().flat_map(|parts| parts.iter()));
        let listings = repo.load_dirs(index, &lists);
        for ((path, _), listing) in group.iter().zip(listings) {
            report.folders_read += 1;
            match listing {
                Ok(children) => {
                    for node in children {
                        let child = join(path, &node.name);
                        take(child, node, &mut folders, report);
                    }
                }
                Err(e) => report.failures.push(Problem {
                    path: path.clone(),
                    reason: format!("this folder's listing cannot be read: {e}"),
                }),
            }
        }
    }
    let sample = sampler.finish();
    report.files_sampled = sample.len() as u64;
    report.stored_bytes_read += stored(
        index,
        sample
            .iter()
            .flat_map(|(_, n)| n.content.iter())
            .filter_map(|e| match e {
                Extent::Data { id, .. } => Some(id),
                Extent::Hole { .. } => None,
            }),
    );
    // Each file restores under a number of its own: no name of the point can collide, be
    // reserved on this OS or make a path too long.
    let items: Vec<(Node, PathBuf)> = sample
        .iter()
        .enumerate()
        .map(|(i, (_, node))| {
            (
                node.clone(),
                options.scratch.join(format!("{i:06}.restored")),
            )
        })
        .collect();
    let where_from: HashMap<PathBuf, &str> = items
        .iter()
        .zip(&sample)
        .map(|((_, dest), (path, _))| (dest.clone(), path.as_str()))
        .collect();
    let restored = restore_nodes(repo, index, items.clone(), &options.cancel, progress);
    if options.cancel.is_cancelled() {
        return Err(EngineError::Cancelled);
    }
    report.bytes_restored = restored.bytes;
    let mut failed = std::collections::HashSet::new();
    for w in &restored.failed {
        failed.insert(w.path.clone());
        let path = where_from
            .get(&w.path)
            .map_or_else(|| w.path.display().to_string(), |p| (*p).to_owned());
        if out_of_space(&w.message) {
            report.untested.push(Problem {
                path,
                reason: scratch_full(&options.scratch),
            });
        } else {
            report.failures.push(Problem {
                path,
                reason: w.message.clone(),
            });
        }
    }
    let keys = repo.keys();
    let checked: Vec<(String, Checked)> = items
        .par_iter()
        .zip(sample.par_iter())
        .filter(|((_, dest), _)| !failed.contains(dest))
        .map(|((node, dest), (path, _))| (path.clone(), check_file(keys, node, dest)))
        .collect();
    for (path, outcome) in checked {
        match outcome {
            Ok((bytes, chunks)) => {
                report.files_proven += 1;
                report.bytes_checked += bytes;
                report.chunks_checked += chunks;
            }
            Err(reason) => report.failures.push(Problem { path, reason }),
        }
    }
    Ok(())
}

/// A restored file read back: its bytes and chunks when identical, else why not.
type Checked = Result<(u64, u64), String>;

/// Reads a restored file back and checks it against its catalog entry: its bytes and chunk
/// count when it is identical.
fn check_file(keys: &RepoKeys, node: &Node, path: &Path) -> Checked {
    make_readable(path);
    let file =
        fs::File::open(path).map_err(|e| format!("the restored file cannot be opened: {e}"))?;
    let mut file = BufReader::with_capacity(1 << 20, file);
    let mut offset = 0u64;
    let mut chunks = 0;
    let mut buf = Vec::new();
    for extent in &node.content {
        match *extent {
            Extent::Data { id, len } => {
                buf.resize(len as usize, 0);
                file.read_exact(&mut buf).map_err(|_| {
                    format!(
                        "the restored file is shorter than the {} bytes backed up",
                        node.size
                    )
                })?;
                if keys.chunk_id(&buf) != id {
                    return Err(format!(
                        "bytes {offset} to {} restored differ from what was backed up",
                        offset + u64::from(len)
                    ));
                }
                chunks += 1;
            }
            Extent::Hole { len } => {
                let mut left = len;
                while left > 0 {
                    let n = left.min(1 << 20) as usize;
                    buf.resize(n, 0);
                    file.read_exact(&mut buf).map_err(|_| {
                        format!(
                            "the restored file is shorter than the {} bytes backed up",
                            node.size
                        )
                    })?;
                    if !crate::chunker::is_zero(&buf) {
                        return Err(format!(
                            "bytes at {offset} restored are not the zeros backed up"
                        ));
                    }
                    left -= n as u64;
                }
            }
        }
        offset += extent.len();
    }
    let mut extra = [0u8; 1];
    if offset != node.size || file.read(&mut extra).map_err(|e| e.to_string())? != 0 {
        return Err(format!(
            "the restored file is longer than the {} bytes backed up",
            node.size
        ));
    }
    Ok((offset, chunks))
}

fn prove_image(
    repo: &Repository,
    index: &ChunkIndex,
    point: &RestorePoint,
    options: &ProveOptions,
    report: &mut ProveReport,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Result<(), EngineError> {
    let started = Instant::now();
    let mut restored_files = 0u64;
    for disk in &point.manifest.disks {
        let disk_path = format!("/{}", disk.name());
        let node = match disk_node(repo, index, point, disk) {
            Ok(node) => node,
            Err(e) => {
                report.failures.push(Problem {
                    path: disk_path,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        prove_disk_chunks(repo, index, &node, &disk_path, options, report)?;
        for volume in &disk.layout.partitions {
            let name = format!("{disk_path}/{}", volume_name(disk, volume));
            let mut proof = VolumeProof {
                volume: name.clone(),
                filesystem: volume.filesystem.as_ref().map(|f| f.kind.name().to_owned()),
                ..VolumeProof::default()
            };
            if volume.filesystem.is_some() {
                match open_volume(repo, index, point, disk, volume) {
                    Ok(mut files) => {
                        proof.opened = true;
                        prove_volume(files.as_mut(), &name, options, report, &mut proof)?;
                        restored_files += proof.files;
                        progress(&Progress {
                            files: restored_files,
                            bytes: report.bytes_restored,
                            bytes_read: report.bytes_restored,
                            elapsed_ms: started.elapsed().as_millis() as u64,
                            ..Progress::default()
                        });
                    }
                    Err(e) => report.failures.push(Problem {
                        path: name,
                        reason: format!("the volume's file system no longer opens: {e}"),
                    }),
                }
            }
            report.volumes.push(proof);
        }
    }
    Ok(())
}

/// Reads a sample of a disk's chunks and hashes each again against its recorded id.
fn prove_disk_chunks(
    repo: &Repository,
    index: &ChunkIndex,
    node: &Node,
    disk_path: &str,
    options: &ProveOptions,
    report: &mut ProveReport,
) -> Result<(), EngineError> {
    let mut sampler: Sampler<(u64, ChunkId, u32)> =
        Sampler::new(options.sample_percent, options.min_files);
    let mut at = 0u64;
    for extent in &node.content {
        if let Extent::Data { id, len } = *extent {
            sampler.offer((at, id, len));
        }
        at += extent.len();
    }
    let keys = repo.keys();
    for group in sampler.finish().chunks(16) {
        if options.cancel.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        let ids: Vec<ChunkId> = group.iter().map(|(_, id, _)| *id).collect();
        report.stored_bytes_read += stored(index, ids.iter());
        let blobs = repo.read_blobs(index, &ids);
        for (offset, id, len) in group {
            let verdict = match blobs.get(id) {
                None => Err("it was not read".to_owned()),
                Some(Err(e)) => Err(e.to_string()),
                Some(Ok(plain)) if plain.len() != *len as usize || keys.chunk_id(plain) != *id => {
                    Err("its bytes differ from what was backed up".to_owned())
                }
                Some(Ok(_)) => Ok(()),
            };
            match verdict {
                Ok(()) => {
                    report.chunks_checked += 1;
                    report.bytes_checked += u64::from(*len);
                }
                Err(reason) => report.failures.push(Problem {
                    path: disk_path.to_owned(),
                    reason: format!(
                        "the block at byte {offset} ({len} bytes) cannot be restored: {reason}"
                    ),
                }),
            }
        }
    }
    Ok(())
}

/// Most entries a volume's walk lists: a damaged volume can loop its folders.
const MAX_VOLUME_ENTRIES: u64 = 20_000_000;

/// Walks a volume's folders and copies a sample of its files into the scratch folder.
fn prove_volume(
    files: &mut dyn VolumeFiles,
    name: &str,
    options: &ProveOptions,
    report: &mut ProveReport,
    proof: &mut VolumeProof,
) -> Result<(), EngineError> {
    let mut sampler: Sampler<(Vec<Vec<u8>>, u64)> =
        Sampler::new(options.sample_percent, options.min_files);
    let mut stack: Vec<Vec<Vec<u8>>> = vec![Vec::new()];
    let shown = |at: &[Vec<u8>]| at.iter().fold(name.to_owned(), |path, c| join(&path, c));
    while let Some(dir) = stack.pop() {
        if options.cancel.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        report.folders_read += 1;
        let entries = match files.list(&dir) {
            Ok(entries) => entries,
            Err(e) => {
                report.failures.push(Problem {
                    path: shown(&dir),
                    reason: format!("this folder no longer lists: {e}"),
                });
                continue;
            }
        };
        for entry in entries {
            proof.entries += 1;
            let mut at = dir.clone();
            at.push(entry.name);
            match entry.kind {
                EntryKind::File => {
                    report.files_in_point += 1;
                    sampler.offer((at, entry.size));
                }
                EntryKind::Dir if proof.entries < MAX_VOLUME_ENTRIES => stack.push(at),
                _ => {}
            }
        }
    }
    let sample = sampler.finish();
    report.files_sampled += sample.len() as u64;
    for (at, size) in sample {
        if options.cancel.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        let dest = options.scratch.join(format!(
            "{:06}.restored",
            report.files_sampled + proof.files
        ));
        let copied = fs::File::create(&dest)
            .map_err(|e| format!("cannot create the scratch file: {e}"))
            .and_then(|mut out| {
                let n = files.copy(&at, &mut out).map_err(|e| e.to_string())?;
                out.flush().map_err(|e| e.to_string())?;
                Ok(n)
            });
        let _ = fs::remove_file(&dest);
        match copied {
            Err(reason) if out_of_space(&reason) => report.untested.push(Problem {
                path: shown(&at),
                reason: scratch_full(&options.scratch),
            }),
            Ok(n) if n == size => {
                proof.files += 1;
                proof.bytes += n;
                report.files_proven += 1;
                report.bytes_restored += n;
            }
            Ok(n) => report.failures.push(Problem {
                path: shown(&at),
                reason: format!("{n} bytes restored of the {size} its volume lists"),
            }),
            Err(reason) => report.failures.push(Problem {
                path: shown(&at),
                reason: format!("cannot be restored: {reason}"),
            }),
        }
    }
    Ok(())
}

/// Why a file was not tested when the scratch disk is full.
fn scratch_full(scratch: &Path) -> String {
    format!(
        "not tested: the disk of the scratch folder {} is full",
        scratch.display()
    )
}

/// Whether a write failed for want of space (the scratch folder's disk, not the backup).
fn out_of_space(message: &str) -> bool {
    message.contains("os error 28") || message.contains("os error 112")
}

/// Lets the owner read (and remove) a restored file whatever permissions it was restored with.
fn make_readable(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o600));
    }
    #[cfg(not(unix))]
    if let Ok(meta) = fs::metadata(path) {
        let mut perms = meta.permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        let _ = fs::set_permissions(path, perms);
    }
}

/// Empties the scratch folder (its files may have been restored read-only).
fn clear_scratch(scratch: &Path) {
    if let Ok(entries) = fs::read_dir(scratch) {
        for entry in entries.flatten() {
            make_readable(&entry.path());
        }
    }
    if let Err(e) = fs::remove_dir_all(scratch) {
        tracing::warn!(path = %scratch.display(), "the restore test's scratch folder stays: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small sets come out whole; large ones near the share asked, never below the minimum.
    #[test]
    fn the_sample_is_the_share_asked_and_never_below_the_minimum() {
        let mut small = Sampler::new(1, 20);
        (0..15).for_each(|i| small.offer(i));
        let mut all = small.finish();
        all.sort_unstable();
        assert_eq!(all, (0..15).collect::<Vec<_>>());

        let mut large = Sampler::new(1, 20);
        (0..100_000).for_each(|i| large.offer(i));
        let n = large.finish().len();
        assert!((700..1300).contains(&n), "1 % of 100000 gave {n}");

        let mut few = Sampler::new(1, 20);
        (0..500).for_each(|i| few.offer(i));
        let picked = few.finish();
        assert!(picked.len() >= 20, "{}", picked.len());
        let distinct: std::collections::HashSet<_> = picked.iter().collect();
        assert_eq!(distinct.len(), picked.len(), "no file twice");
    }
}
