//! Backup: walks the sources, stores what is new, and commits one restore point.
//!
//! Pipeline: a parallel walk (rayon: folders and files are processed on every core) reads
//! each changed file, chunks it (FastCDC), hashes each chunk (keyed BLAKE3), skips chunks
//! the repository or this run already has, and compresses + encrypts the rest; the sealed
//! blobs go to the repository's pack writer ([`crate::saver`]: runs per worker, packs, writer
//! threads). Memory is bounded: one chunk buffer per worker and what the saver holds.
//!
//! Incremental forever: a file whose size, mtime, ctime and inode match the parent point
//! reuses its chunk list without being read. Every point is complete on its own.
//!
//! Disks and volumes (block devices or image files named in [`BackupOptions::disks`]) are
//! imaged: their layout is read and recorded in the point (`image::DiskImage`), each volume
//! is held still while read (`image::consistency`), and only the blocks its file system uses
//! are read, as fixed 1 MiB blocks (`image::blocks`) hashed, compressed and sealed a batch at
//! a time in parallel; free and all-zero blocks become holes. A disk's bytes are a file node
//! at its path, so it also restores as a raw (sparse) image, and unchanged blocks deduplicate
//! against earlier points: an incremental run stores only the blocks that changed.
//! After the walk: packs are flushed, one index file names them, and only then is the point
//! committed (which checks that every referenced chunk is stored).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, Metadata};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use globset::{GlobSet, GlobSetBuilder};
use rayon::prelude::*;

use super::fsmeta;
use super::{EngineError, Progress, Warning};
use crate::blob;
use crate::catalog::{self, Extent, Node, NodeKind};
use crate::chunker::{CdcParams, ChunkStream, Cutter, is_zero};
use crate::compress::Compression;
use crate::crypto::ChunkId;
use crate::image;
use crate::refs::RunRefs;
use crate::repo::{ChunkIndex, PointManifest, PointStats, RepoError, Repository, RestorePoint};
use crate::saver::{BlobSaver, Lane, with_indexing_saver};
use crate::signals::{self, ChangeSignals};

/// A zero chunk at least this long is recorded as a hole (restored sparse).
const MIN_HOLE: usize = 4096;
/// Progress is reported at most this often.
const PROGRESS_EVERY_MS: u64 = 200;

/// What to back up and how.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// Files and folders to back up (absolute, or relative to the working directory).
    pub sources: Vec<PathBuf>,
    /// Disks and disk images to back up whole, block by block (block devices or image files).
    pub disks: Vec<PathBuf>,
    /// Glob patterns of paths to leave out (`*.tmp`, `**/node_modules`, `/home/*/.cache`).
    pub excludes: Vec<String>,
    /// Stay on the file system of each source (do not descend into mounts).
    pub one_file_system: bool,
    /// zstd level.
    pub compression: Compression,
    /// Computer name recorded in the point.
    pub host: String,
    /// Job name recorded in the point.
    pub job: String,
    /// Point to compare with for reuse of unchanged files (normally the job's latest).
    pub parent: Option<RestorePoint>,
    /// Stops the run between files and chunks when cancelled.
    pub cancel: super::Cancel,
}

/// The outcome of a backup.
#[derive(Debug, Clone)]
pub struct BackupReport {
    /// The committed point.
    pub point: RestorePoint,
    /// Entries that could not be backed up, each with the reason.
    pub warnings: Vec<Warning>,
    /// How each imaged volume was read (frozen, a snapshot, as it is), for the session log.
    pub notes: Vec<String>,
    /// What changed against the parent point, file by file (`None` without a parent): the
    /// caller judges it against the job's history (`signals::assess`).
    pub signals: Option<ChangeSignals>,
}

#[derive(Default)]
struct Counters {
    files: AtomicU64,
    dirs: AtomicU64,
    bytes: AtomicU64,
    files_read: AtomicU64,
    bytes_read: AtomicU64,
    new_blobs: AtomicU64,
    stored_bytes: AtomicU64,
}

/// Why the walk stopped early: the packer (storage) failed, or the run was cancelled.
struct Fatal;

thread_local! {
    /// Each worker's chunking buffer (see [`ChunkStream`]).
    static CHUNK_BUFFER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

struct Ctx<'a> {
    repo: &'a Repository,
    cutter: Cutter,
    index: &'a ChunkIndex,
    compression: Compression,
    excludes: GlobSet,
    one_file_system: bool,
    /// Sources to read as disks (absolute paths).
    disks: HashSet<PathBuf>,
    /// Where this run writes (a local repository, the data home, temporary files): their
    /// file systems are never frozen.
    busy: Vec<PathBuf>,
    /// The disks imaged, with their layouts.
    images: Mutex<Vec<image::DiskImage>>,
    /// How each volume was read, for the session log.
    notes: Mutex<Vec<String>>,
    /// Where the blocks each image held are kept for the next run (`image::known`), and the
    /// point whose image they must come from (this run's parent).
    known_dir: Option<PathBuf>,
    parent_id: Option<String>,
    /// The blocks (and ext4 volumes' file stamps) of the images made this run, per file,
    /// saved once the point is committed.
    new_known: Mutex<Vec<NewKnown>>,
    /// The repository's pack writer: every new blob goes to it.
    saver: &'a BlobSaver<'a>,
    /// What the run references: blobs of the index it uses, blobs it stores.
    refs: &'a RunRefs<'a>,
    hardlinks: Mutex<HashMap<(u64, u64), Vec<Extent>>>,
    warnings: Mutex<Vec<Warning>>,
    counters: Counters,
    started: Instant,
    last_report: AtomicU64,
    expected_bytes: Option<u64>,
    progress: &'a (dyn Fn(&Progress) + Sync),
    cancel: &'a super::Cancel,
    /// Whether the run watches for signs of ransomware (it has a parent to compare with).
    watch: bool,
    /// What changed against the parent, summed over the folders.
    signals: Mutex<ChangeSignals>,
    /// Names of files read this run whose content looks random, by folder, until the
    /// folder is judged.
    random_files: Mutex<HashMap<PathBuf, HashSet<Vec<u8>>>>,
    /// CPU time the check took, summed over threads.
    check_ns: AtomicU64,
}

/// Backs up `options.sources` into `repo` and commits a restore point.
pub fn backup(
    repo: &Repository,
    options: &BackupOptions,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Result<BackupReport, EngineError> {
    let started_ns = now_ns();
    // Shared: garbage collection must not delete a pack this run deduplicates against.
    let _lock = crate::lock::acquire(repo.backend(), crate::lock::LockKind::Shared)?;
    let excludes = build_excludes(&options.excludes)?;
    let all_sources: Vec<PathBuf> = options
        .sources
        .iter()
        .chain(&options.disks)
        .cloned()
        .collect();
    check_some_source_readable(&all_sources)?;
    let roots = plan_roots(&all_sources)?;
    let disks = options
        .disks
        .iter()
        .map(|d| std::path::absolute(d).unwrap_or_else(|_| d.clone()))
        .collect();
    // Packs the storage set aside as damaged give up their intact blobs first, so that only
    // what is really lost is sent again.
    let damaged = repo.backend().damaged_packs().map_err(RepoError::from)?;
    if !damaged.is_empty() {
        super::repair::salvage(repo, &damaged)?;
    }
    // What an interrupted run stored is reused, not sent again; what the storage lost is.
    let (index, _) = repo.load_backup_index(&damaged)?;
    let parent_root = match &options.parent {
        Some(point) => repo.load_dir(&index, &point.manifest.root).ok(),
        None => None,
    };

    let refs = RunRefs::new(&index);
    let (walked, packs) = with_indexing_saver(repo, |saver| {
        let ctx = Ctx {
            repo,
            cutter: Cutter::new(CdcParams::FILES, repo.keys().chunker_seed()),
            index: &index,
            compression: options.compression,
            excludes,
            one_file_system: options.one_file_system,
            disks,
            busy: busy_paths(repo),
            images: Mutex::default(),
            notes: Mutex::default(),
            known_dir: cloudkeep_model::paths::DataHome::locate()
                .ok()
                .map(|h| h.root().join("image-blocks")),
            parent_id: options.parent.as_ref().map(|p| p.id.clone()),
            new_known: Mutex::default(),
            saver,
            refs: &refs,
            hardlinks: Mutex::default(),
            warnings: Mutex::default(),
            counters: Counters::default(),
            started: Instant::now(),
            last_report: AtomicU64::new(0),
            expected_bytes: options.parent.as_ref().map(|p| p.manifest.stats.bytes),
            progress,
            cancel: &options.cancel,
            watch: parent_root.is_some(),
            signals: Mutex::default(),
            random_files: Mutex::default(),
            check_ns: AtomicU64::new(0),
        };
        let root = virtual_dir_children(&ctx, &roots, parent_root.as_deref())
            .and_then(|nodes| ctx.store_dir(nodes))
            .and_then(|root| ctx.flush().map(|()| root));
        let Ctx {
            warnings,
            counters,
            started,
            expected_bytes,
            images,
            notes,
            new_known,
            watch,
            signals,
            check_ns,
            ..
        } = ctx;
        let signals = watch.then(|| ChangeSignals {
            check_us: check_ns.into_inner() / 1000,
            ..signals.into_inner().unwrap_or_default()
        });
        (
            root,
            (
                warnings,
                counters,
                started,
                expected_bytes,
                images,
                notes,
                (new_known, signals),
            ),
        )
    });
    let (root, ctx_parts) = walked;
    let packs = packs?;
    let (warnings, counters, started, expected_bytes, images, notes, (new_known, signals)) =
        ctx_parts;
    let root = root.map_err(|Fatal| {
        if options.cancel.is_cancelled() {
            EngineError::Cancelled
        } else {
            EngineError::Internal("the walk stopped because storage failed".into())
        }
    })?;
    if options.cancel.is_cancelled() {
        return Err(EngineError::Cancelled);
    }

    // Packs are stored: name those no index file names yet, then commit the point.
    if !packs.is_empty() {
        repo.write_index(&packs)?;
    }
    drop(packs);
    let warnings = warnings.into_inner().unwrap_or_default();
    let c = &counters;
    let stats = PointStats {
        files: c.files.load(Ordering::Relaxed),
        dirs: c.dirs.load(Ordering::Relaxed),
        bytes: c.bytes.load(Ordering::Relaxed),
        files_read: c.files_read.load(Ordering::Relaxed),
        bytes_read: c.bytes_read.load(Ordering::Relaxed),
        new_blobs: c.new_blobs.load(Ordering::Relaxed),
        new_stored_bytes: c.stored_bytes.load(Ordering::Relaxed),
        warnings: warnings.len() as u64,
    };
    let manifest = PointManifest {
        host: options.host.clone(),
        job: options.job.clone(),
        paths: all_sources
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        started_ns,
        finished_ns: now_ns(),
        stats,
        root,
        parent: options.parent.as_ref().map(|p| p.id.clone()),
        disks: images.into_inner().unwrap_or_default(),
    };
    let point = repo.commit_run_point(refs, &manifest, options.parent.as_ref())?;
    // The blocks each image held, for the next run to recognise (a cache: losing it costs
    // only time).
    for (file, blocks, volumes) in new_known.into_inner().unwrap_or_default() {
        if let Err(e) =
            image::known::KnownBlocks::save(&file, repo.keys(), &point.id, &blocks, &volumes)
        {
            tracing::warn!("cannot keep the image's block list for the next run: {e}");
        }
    }
    progress(&Progress {
        files: stats.files,
        dirs: stats.dirs,
        bytes: stats.bytes,
        bytes_read: stats.bytes_read,
        stored_bytes: stats.new_stored_bytes,
        elapsed_ms: started.elapsed().as_millis() as u64,
        expected_bytes,
    });
    Ok(BackupReport {
        point,
        warnings,
        notes: notes.into_inner().unwrap_or_default(),
        signals,
    })
}

/// What one disk's image leaves for the next run: where to keep it, its blocks, and the file
/// stamps of its ext4 volumes.
type NewKnown = (
    PathBuf,
    image::known::BlockList,
    Vec<image::known::VolumeStamps>,
);

/// The blocks a disk's last image held, and those this run's image holds (for the next);
/// the data of files unchanged since then, which is not read again (`image::changes`).
struct KnownUse<'a> {
    known: &'a image::known::KnownBlocks,
    seen: &'a Mutex<image::known::BlockList>,
    unchanged: Option<&'a image::changes::Unchanged>,
    /// The region's start on the disk (`unchanged` counts from it).
    start: u64,
}

impl KnownUse<'_> {
    /// The last image's block at `spec`'s place when none of its used bytes can have
    /// changed: the same bytes in use, all of them unchanged files' data.
    fn unchanged(
        &self,
        spec: &image::blocks::BlockSpec,
        used: u64,
    ) -> Option<image::known::KnownBlock> {
        let unchanged = self.unchanged?;
        let all = spec.used.iter().all(|p| {
            match (
                p.start.checked_sub(self.start),
                p.end.checked_sub(self.start),
            ) {
                (Some(a), Some(b)) => unchanged.covers(&(a..b)),
                _ => false,
            }
        });
        all.then(|| self.known.same_use(spec.offset, used))
            .flatten()
    }
}

/// Where an imaged region's blocks are read from: the disk (or its snapshot, whose bytes
/// start at `base` on the disk), directly when a direct handle could be opened.
struct ImageSource<'a> {
    file: &'a fs::File,
    direct: Option<&'a fs::File>,
    base: u64,
}

thread_local! {
    /// Each worker's aligned buffer for direct reads.
    static DIRECT_SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl ImageSource<'_> {
    /// Reads one block (its used parts; zeros elsewhere) and hands it to `f`.
    fn read<R>(
        &self,
        spec: &image::blocks::BlockSpec,
        f: impl FnOnce(&[u8]) -> R,
    ) -> std::io::Result<R> {
        let mut shifted = spec.clone();
        shifted.offset -= self.base;
        for part in &mut shifted.used {
            *part = part.start - self.base..part.end - self.base;
        }
        let mut f = Some(f);
        if let Some(direct) = self.direct {
            let done = DIRECT_SCRATCH.with(|scratch| {
                let Ok(mut scratch) = scratch.try_borrow_mut() else {
                    return None;
                };
                Some(
                    image::blocks::read_block_direct(direct, &shifted, &mut scratch)
                        .map(|at| f.take().map(|f| f(&scratch[at]))),
                )
            });
            match done {
                Some(Ok(Some(result))) => return Ok(result),
                // A device that refuses an aligned direct read is read through the cache.
                Some(Err(e)) if e.kind() != std::io::ErrorKind::InvalidInput => return Err(e),
                _ => {}
            }
        }
        let mut buf = Vec::new();
        image::blocks::read_block(self.file, &shifted, &mut buf)?;
        let f = f
            .take()
            .ok_or_else(|| std::io::Error::other("block read twice"))?;
        Ok(f(&buf))
    }
}

/// Paths a backup writes to: a local repository's folder, the data home, temporary files.
fn busy_paths(repo: &Repository) -> Vec<PathBuf> {
    let mut busy = vec![std::env::temp_dir()];
    busy.extend(repo.backend().local_folder().map(Path::to_path_buf));
    if let Ok(home) = cloudkeep_model::paths::DataHome::locate() {
        busy.push(home.root().to_path_buf());
    }
    busy
}

/// Drops a block device's cached pages (`blockdev --flushbufs`), so that a disk read after
/// one of its volumes was written through another device (a partition, a loop device over
/// the same image) reads what is on it now. Best effort: without the right, reads may be
/// served from a cache the kernel keeps coherent anyway for the common case.
fn flush_device_cache(path: &Path) {
    #[cfg(target_os = "linux")]
    {
        let _ = std::process::Command::new("blockdev")
            .arg("--flushbufs")
            .arg(path)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
    #[cfg(not(target_os = "linux"))]
    let _ = path;
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The exclude patterns as one set. On Windows a pattern may be written with `\` (as paths
/// are written there, `C:\Users\*\AppData\**`, `\\server\share\tmp\**`) and matches
/// regardless of case, as Windows names do.
fn build_excludes(patterns: &[String]) -> Result<GlobSet, EngineError> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let written = if cfg!(windows) {
            pattern.replace('\\', "/")
        } else {
            pattern.clone()
        };
        // A pattern without a slash matches a name anywhere, as users expect of "*.tmp".
        let full = if written.contains('/') {
            written
        } else {
            format!("**/{written}")
        };
        let glob = globset::GlobBuilder::new(&full)
            .case_insensitive(cfg!(windows))
            .build()
            .map_err(|e| EngineError::BadExclude {
                pattern: pattern.clone(),
                reason: e.kind().to_string(),
            })?;
        builder.add(glob);
    }
    builder.build().map_err(|e| EngineError::BadExclude {
        pattern: patterns.join(", "),
        reason: e.to_string(),
    })
}

/// Whether `path` (as the walker reads it: verbatim on Windows) is excluded: patterns see
/// the path as people write it.
fn excluded(excludes: &GlobSet, path: &Path) -> bool {
    if cfg!(windows) {
        excludes.is_match(fsmeta::shown(path))
    } else {
        excludes.is_match(path)
    }
}

/// Refuses a run none of whose sources can be read (each gone or unreadable), saying which and
/// why; one readable source is enough (the others become warnings).
fn check_some_source_readable(sources: &[PathBuf]) -> Result<(), EngineError> {
    let mut gone = Vec::new();
    for source in sources {
        let readable = fs::metadata(source).and_then(|meta| {
            if meta.is_dir() {
                fs::read_dir(source).map(|_| ())
            } else {
                fs::File::open(source).map(|_| ())
            }
        });
        match readable {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                gone.push((source.clone(), "is gone".to_owned()));
            }
            Err(e) => gone.push((source.clone(), format!("cannot be read ({e})"))),
        }
    }
    if gone.is_empty() {
        return Ok(());
    }
    Err(EngineError::SourcesGone(gone))
}

/// The catalog's top levels: the ancestors of every source as folders, the sources below.
enum Planned {
    Source(PathBuf),
    Dir(PathBuf, BTreeMap<Vec<u8>, Planned>),
}

fn plan_roots(sources: &[PathBuf]) -> Result<BTreeMap<Vec<u8>, Planned>, EngineError> {
    if sources.is_empty() {
        return Err(EngineError::Path {
            path: PathBuf::new(),
            reason: "no source to back up; name at least one file, folder or disk".into(),
        });
    }
    let mut top: BTreeMap<Vec<u8>, Planned> = BTreeMap::new();
    for source in sources {
        let abs = std::path::absolute(source).map_err(|e| EngineError::Path {
            path: source.clone(),
            reason: e.to_string(),
        })?;
        let names: Vec<(Vec<u8>, PathBuf)> = {
            let mut acc = PathBuf::new();
            let mut out = Vec::new();
            for component in abs.components() {
                acc.push(component.as_os_str());
                // Read through the path the OS takes as it is (Windows: verbatim).
                match component {
                    Component::Normal(name) => {
                        out.push((fsmeta::name_bytes(name), fsmeta::io_path(&acc)))
                    }
                    Component::Prefix(p) => {
                        out.push((fsmeta::name_bytes(p.as_os_str()), fsmeta::io_path(&acc)))
                    }
                    _ => {}
                }
            }
            out
        };
        let Some(((last, last_path), ancestors)) = names.split_last() else {
            return Err(EngineError::Path {
                path: abs,
                reason: "backing up the whole file system root is not supported; name the folders to protect".into(),
            });
        };
        insert_planned(&mut top, ancestors, last.clone(), last_path.clone());
    }
    Ok(top)
}

/// Adds a source below its ancestors; a source inside another source is already covered.
fn insert_planned(
    level: &mut BTreeMap<Vec<u8>, Planned>,
    ancestors: &[(Vec<u8>, PathBuf)],
    name: Vec<u8>,
    path: PathBuf,
) {
    match ancestors.split_first() {
        None => {
            level.insert(name, Planned::Source(path));
        }
        Some(((dir_name, dir_path), rest)) => {
            let entry = level
                .entry(dir_name.clone())
                .or_insert_with(|| Planned::Dir(dir_path.clone(), BTreeMap::new()));
            if let Planned::Dir(_, children) = entry {
                insert_planned(children, rest, name, path);
            }
        }
    }
}

/// A file name without its last extension (`a.txt.locked` → `a.txt`; `Makefile` stays).
fn stem(name: &[u8]) -> &[u8] {
    match name.iter().rposition(|b| *b == b'.') {
        Some(dot) if dot > 0 => &name[..dot],
        _ => name,
    }
}

fn by_name(nodes: Option<&[Node]>) -> HashMap<&[u8], &Node> {
    nodes
        .unwrap_or_default()
        .iter()
        .map(|n| (n.name.as_slice(), n))
        .collect()
}

fn virtual_dir_children(
    ctx: &Ctx<'_>,
    planned: &BTreeMap<Vec<u8>, Planned>,
    previous: Option<&[Node]>,
) -> Result<Vec<Node>, Fatal> {
    let previous = by_name(previous);
    let mut nodes = Vec::new();
    for (name, plan) in planned {
        let prev = previous.get(name.as_slice()).copied();
        match plan {
            Planned::Source(path) if ctx.disks.contains(path) => match fs::metadata(path) {
                Ok(meta) => {
                    if let Some(node) = ctx.disk_node(path, name.clone(), &meta)? {
                        nodes.push(node);
                    }
                }
                Err(e) => ctx.warn(path, format!("cannot back up this disk: {e}")),
            },
            Planned::Source(path) => match fs::symlink_metadata(path) {
                Ok(meta) => {
                    let dev = fsmeta::file_id_of(&meta).dev;
                    if let Some(node) = entry_node(ctx, path, name.clone(), meta, prev, dev)? {
                        nodes.push(node);
                    }
                }
                Err(e) => ctx.warn(path, format!("cannot back up this source: {e}")),
            },
            Planned::Dir(path, children) => {
                let prev_children = prev
                    .filter(|p| p.kind == NodeKind::Dir)
                    .and_then(|p| ctx.repo.load_dir(ctx.index, &p.subtree).ok());
                let children = virtual_dir_children(ctx, children, prev_children.as_deref())?;
                let mut node = match fs::symlink_metadata(path) {
                    Ok(meta) => base_node(name.clone(), &meta),
                    Err(_) => Node::new(name.clone(), NodeKind::Dir),
                };
                node.kind = NodeKind::Dir;
                node.subtree = ctx.store_dir(children)?;
                nodes.push(node);
            }
        }
    }
    Ok(nodes)
}

fn base_node(name: Vec<u8>, meta: &Metadata) -> Node {
    let mut node = Node::new(name, fsmeta::kind_of(meta));
    let (owner, rdev) = fsmeta::owner_of(meta);
    node.owner = owner;
    node.rdev = rdev;
    node.times = fsmeta::times_of(meta);
    // Access times change whenever a backup reads a file or lists a folder; recording them
    // would make every folder's listing new on every run and defeat tree dedup (restic makes
    // the same choice). Restore sets the access time to the modification time.
    node.times.atime_ns = node.times.mtime_ns;
    node.file_id = fsmeta::file_id_of(meta);
    node
}

fn entry_node(
    ctx: &Ctx<'_>,
    path: &Path,
    name: Vec<u8>,
    meta: Metadata,
    prev: Option<&Node>,
    root_dev: u64,
) -> Result<Option<Node>, Fatal> {
    if ctx.cancel.is_cancelled() {
        return Err(Fatal);
    }
    let mut node = base_node(name, &meta);
    match node.kind {
        NodeKind::Dir => {
            ctx.counters.dirs.fetch_add(1, Ordering::Relaxed);
            if ctx.one_file_system && node.file_id.dev != root_dev {
                node.subtree = ctx.store_dir(Vec::new())?; // a mount point: recorded, not entered
            } else {
                let prev_children = prev
                    .filter(|p| p.kind == NodeKind::Dir)
                    .and_then(|p| ctx.repo.load_dir(ctx.index, &p.subtree).ok());
                let children = ctx.dir_children(path, prev_children.as_deref(), root_dev)?;
                node.subtree = ctx.store_dir(children)?;
            }
        }
        NodeKind::File => {
            if !ctx.file_content(path, &meta, prev, &mut node)? {
                return Ok(None);
            }
            ctx.counters.files.fetch_add(1, Ordering::Relaxed);
            ctx.counters.bytes.fetch_add(node.size, Ordering::Relaxed);
            ctx.report();
        }
        NodeKind::Symlink => match fs::read_link(path) {
            Ok(target) => node.link_target = Some(fsmeta::name_bytes(target.as_os_str())),
            Err(e) => {
                ctx.warn(path, format!("cannot read the link: {e}"));
                return Ok(None);
            }
        },
        _ => {}
    }
    Ok(Some(node))
}

impl Ctx<'_> {
    fn warn(&self, path: &Path, message: String) {
        tracing::warn!(path = %path.display(), "{message}");
        if let Ok(mut w) = self.warnings.lock() {
            w.push(Warning {
                path: path.to_path_buf(),
                message,
            });
        }
    }

    fn report(&self) {
        let elapsed = self.started.elapsed().as_millis() as u64;
        let last = self.last_report.load(Ordering::Relaxed);
        if elapsed < last + PROGRESS_EVERY_MS
            || self
                .last_report
                .compare_exchange(last, elapsed, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let c = &self.counters;
        (self.progress)(&Progress {
            files: c.files.load(Ordering::Relaxed),
            dirs: c.dirs.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            bytes_read: c.bytes_read.load(Ordering::Relaxed),
            stored_bytes: c.stored_bytes.load(Ordering::Relaxed),
            elapsed_ms: elapsed,
            expected_bytes: self.expected_bytes,
        });
    }

    fn dir_children(
        &self,
        path: &Path,
        previous: Option<&[Node]>,
        root_dev: u64,
    ) -> Result<Vec<Node>, Fatal> {
        let entries: Vec<(Vec<u8>, PathBuf)> = match fs::read_dir(path) {
            Ok(iter) => iter
                .filter_map(|entry| match entry {
                    Ok(e) => Some((fsmeta::name_bytes(&e.file_name()), e.path())),
                    Err(err) => {
                        self.warn(path, format!("cannot list an entry: {err}"));
                        None
                    }
                })
                .filter(|(_, p)| !excluded(&self.excludes, p))
                .collect(),
            Err(e) => {
                self.warn(path, format!("cannot open the folder: {e}"));
                return Ok(Vec::new());
            }
        };
        let previous = by_name(previous);
        let results: Vec<Result<Option<Node>, Fatal>> = entries
            .into_par_iter()
            .map(|(name, child)| {
                let prev = previous.get(name.as_slice()).copied();
                match fs::symlink_metadata(&child) {
                    Ok(meta) => entry_node(self, &child, name, meta, prev, root_dev),
                    Err(e) => {
                        self.warn(&child, format!("cannot read its metadata: {e}"));
                        Ok(None)
                    }
                }
            })
            .collect();
        let mut nodes = Vec::with_capacity(results.len());
        for r in results {
            if let Some(node) = r? {
                nodes.push(node);
            }
        }
        if self.watch {
            let started = Instant::now();
            self.judge_folder(path, &nodes, &previous);
            self.check_time(started);
        }
        Ok(nodes)
    }

    /// Adds the time since `started` to what the ransomware check cost.
    fn check_time(&self, started: Instant) {
        self.check_ns
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }

    /// Counts what changed in folder `dir` against its parent listing (`signals`).
    fn judge_folder(&self, dir: &Path, nodes: &[Node], previous: &HashMap<&[u8], &Node>) {
        // Taken out of the run's map whether or not the folder is judged: it never grows
        // past the folders being walked.
        let random: HashSet<Vec<u8>> = self
            .random_files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(dir)
            .unwrap_or_default();
        if previous.is_empty() {
            return; // a new folder (or one that held nothing): nothing to compare with
        }
        let compressible = |node: &Node| {
            node.content.iter().find_map(|e| match e {
                Extent::Data { id, .. } => Some(self.index.get(id).is_some_and(|loc| {
                    signals::was_compressible(loc.stored_len.into(), loc.plain_len.into())
                })),
                Extent::Hole { .. } => None,
            }) == Some(true)
        };
        let mut folder = ChangeSignals {
            parent_files: previous
                .values()
                .filter(|n| n.kind == NodeKind::File)
                .count() as u64,
            ..ChangeSignals::default()
        };
        let mut added = Vec::new();
        let mut matched = 0;
        for node in nodes {
            let prev = previous.get(node.name.as_slice());
            matched += usize::from(prev.is_some());
            if node.kind != NodeKind::File {
                continue;
            }
            match prev {
                Some(prev) if prev.kind == NodeKind::File => {
                    if prev.content != node.content {
                        folder.changed += 1;
                        if random.contains(&node.name) && compressible(prev) {
                            folder.encrypted_rewrites += 1;
                        }
                    }
                }
                _ => {
                    folder.added += 1;
                    added.push(node);
                }
            }
        }
        if matched == previous.len() {
            // Every earlier entry is still there: nothing deleted, nothing renamed.
            self.signals
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .add(&folder);
            return;
        }
        let present: HashSet<&[u8]> = nodes.iter().map(|n| n.name.as_slice()).collect();
        // Files gone, found again under a name with another or an added extension.
        let mut gone: HashMap<&[u8], &Node> = HashMap::new();
        let mut gone_by_stem: HashMap<&[u8], Vec<&Node>> = HashMap::new();
        for (name, prev) in previous {
            if prev.kind == NodeKind::File && !present.contains(name) {
                folder.deleted += 1;
                gone.insert(name, prev);
                gone_by_stem.entry(stem(name)).or_default().push(prev);
            }
        }
        let mut matched: HashSet<&[u8]> = HashSet::new();
        for node in added {
            let new = node.name.as_slice();
            let old = gone
                .get(stem(new))
                .copied()
                .filter(|old| signals::renamed_extension(&old.name, new))
                .or_else(|| {
                    gone_by_stem.get(stem(new)).and_then(|olds| {
                        olds.iter()
                            .copied()
                            .find(|old| signals::renamed_extension(&old.name, new))
                    })
                });
            if let Some(old) = old
                && matched.insert(old.name.as_slice())
            {
                folder.renamed_extensions += 1;
                if random.contains(new) && compressible(old) {
                    folder.encrypted_rewrites += 1;
                }
            }
        }
        self.signals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add(&folder);
    }

    /// Fills a file node's content; `false` when the file could not be read (warned).
    fn file_content(
        &self,
        path: &Path,
        meta: &Metadata,
        prev: Option<&Node>,
        node: &mut Node,
    ) -> Result<bool, Fatal> {
        if let Some(prev) = prev {
            let unchanged = prev.kind == NodeKind::File
                && prev.size == meta.len()
                && prev.times.mtime_ns == node.times.mtime_ns
                && prev.times.ctime_ns == node.times.ctime_ns
                && prev.file_id.ino == node.file_id.ino
                && prev.content.iter().all(|e| match e {
                    Extent::Data { id, .. } => self.index.contains(id),
                    Extent::Hole { .. } => true,
                });
            if unchanged {
                node.size = prev.size;
                node.content = prev.content.clone();
                self.reference(&node.content);
                return Ok(true);
            }
        }
        let link_key = (node.file_id.nlink > 1).then_some((node.file_id.dev, node.file_id.ino));
        if let Some(key) = link_key
            && let Some(content) = self
                .hardlinks
                .lock()
                .ok()
                .and_then(|m| m.get(&key).cloned())
        {
            node.size = content.iter().map(Extent::len).sum();
            node.content = content;
            return Ok(true);
        }
        let file = match fs::File::open(path) {
            Ok(f) => f,
            Err(e) => {
                self.warn(path, format!("cannot open the file: {e}"));
                return Ok(false);
            }
        };
        let mut content: Vec<Extent> = Vec::new();
        let mut size = 0u64;
        // One chunking buffer per worker thread, reused from file to file.
        let mut buf = CHUNK_BUFFER.with(|b| b.take());
        let mut stream = ChunkStream::new(file, &self.cutter, &mut buf);
        let mut random = false;
        let outcome = self.chunk_file(path, &mut stream, &mut content, &mut size, &mut random);
        drop(stream);
        CHUNK_BUFFER.with(|b| b.replace(buf));
        if !outcome? {
            return Ok(false);
        }
        if random && let Some(dir) = path.parent() {
            self.random_files
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(dir.to_path_buf())
                .or_default()
                .insert(node.name.clone());
        }
        self.finish_file(path, node, content, size, link_key);
        Ok(true)
    }

    /// Chunks one file into `content`; `false` when reading failed (warned). When the run
    /// watches for ransomware, `random` says whether the file's first chunk looks random.
    fn chunk_file<R: std::io::Read>(
        &self,
        path: &Path,
        stream: &mut ChunkStream<'_, R>,
        content: &mut Vec<Extent>,
        size: &mut u64,
        random: &mut bool,
    ) -> Result<bool, Fatal> {
        while let Some(chunk) = stream.next_chunk() {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    self.warn(path, format!("cannot read the file: {e}"));
                    return Ok(false);
                }
            };
            if self.watch && *size == 0 {
                let started = Instant::now();
                *random = signals::looks_random(chunk);
                self.check_time(started);
            }
            *size += chunk.len() as u64;
            self.counters
                .bytes_read
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            if chunk.len() >= MIN_HOLE && is_zero(chunk) {
                match content.last_mut() {
                    Some(Extent::Hole { len }) => *len += chunk.len() as u64,
                    _ => content.push(Extent::Hole {
                        len: chunk.len() as u64,
                    }),
                }
            } else {
                let id = self.store_blob(chunk)?;
                content.push(Extent::Data {
                    id,
                    len: chunk.len() as u32,
                });
            }
        }
        Ok(true)
    }

    /// Images a disk, a volume or a disk image file into a file node (its bytes, free blocks
    /// and zero blocks as holes) and records its layout; `None` when it cannot be read
    /// (warned). Each volume is held still (`image::consistency`) while its own blocks are
    /// read; blocks are read, hashed and sealed a batch at a time, the batch in parallel.
    fn disk_node(
        &self,
        path: &Path,
        name: Vec<u8>,
        meta: &Metadata,
    ) -> Result<Option<Node>, Fatal> {
        let is_device = fsmeta::kind_of(meta) == NodeKind::BlockDevice;
        if !(meta.is_file() || is_device) {
            self.warn(
                path,
                "is not a disk or an image file; back it up as a source instead".into(),
            );
            return Ok(None);
        }
        let mut node = base_node(name, meta);
        node.kind = NodeKind::File;
        node.rdev = 0;
        let mut file = match fs::File::open(path) {
            Ok(f) => f,
            Err(e) => {
                self.warn(path, format!("cannot open the disk: {e}"));
                return Ok(None);
            }
        };
        let layout = match image::read_layout(&mut file) {
            Ok(layout) => layout,
            Err(e) => {
                // A damaged table: the disk is still imaged, every byte of it.
                self.warn(path, format!("{e}; every block of the disk is read"));
                let size = match std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0)) {
                    Ok(size) => size,
                    Err(e) => {
                        self.warn(path, format!("cannot read the disk: {e}"));
                        return Ok(None);
                    }
                };
                image::DiskLayout {
                    size,
                    sector_size: 512,
                    table: image::PartitionTable::None,
                    partitions: Vec::new(),
                }
            }
        };
        let mut content: Vec<Extent> = Vec::new();
        let mut volumes = Vec::new();
        let known_file = self
            .known_dir
            .as_ref()
            .map(|dir| image::known::file_for(dir, self.repo.keys(), path));
        let known = match (&known_file, &self.parent_id) {
            (Some(file), Some(parent)) => {
                image::known::KnownBlocks::load(file, self.repo.keys(), parent)
            }
            _ => image::known::KnownBlocks::default(),
        };
        let seen: Mutex<image::known::BlockList> = Mutex::default();
        let mut stamps: Vec<image::known::VolumeStamps> = Vec::new();
        for region in image::blocks::regions(&layout) {
            let part = region.partition.map(|i| &layout.partitions[i]);
            let hold =
                part.map(|_| image::consistency::hold(path, region.start, region.len, &self.busy));
            if is_device {
                // Cached pages of the whole disk may predate what a mounted volume wrote.
                flush_device_cache(path);
            }
            let snapshot = hold.as_ref().and_then(|h| h.source.as_ref());
            let (source, base, source_path) = match snapshot.map(|s| (fs::File::open(s), s)) {
                Some((Ok(snap), at)) => (snap, region.start, at.as_path()),
                Some((Err(e), _)) => {
                    self.warn(path, format!("cannot open the snapshot: {e}; read live"));
                    (file.try_clone().map_err(|_| Fatal)?, 0, path)
                }
                None => (file.try_clone().map_err(|_| Fatal)?, 0, path),
            };
            // A device's blocks are read past the page cache (faster, and never stale).
            let direct = if is_device {
                image::blocks::open_direct(source_path)
            } else {
                None
            };
            let used = match part.and_then(|p| p.filesystem.as_ref()) {
                Some(fsys) => {
                    let mut src = &source;
                    match image::used_map(&mut src, region.start - base, region.len, fsys) {
                        Ok(map) => map,
                        Err(e) => {
                            self.warn(path, format!("volume at {}: {e}; read whole", region.start));
                            None
                        }
                    }
                }
                None => None,
            };
            let files = match part.and_then(|p| p.filesystem.as_ref()) {
                Some(fsys) if used.is_some() && hold.as_ref().is_some_and(|h| h.still) => {
                    self.ext_files(path, &source, region.start - base, region.len, fsys)
                }
                _ => None,
            };
            let unchanged = files.as_ref().and_then(|f| {
                let previous = known.stamps(region.start, &f.uuid)?;
                Some(f.unchanged(previous))
            });
            let read = ImageSource {
                file: &source,
                direct: direct.as_ref(),
                base,
            };
            let blocks = KnownUse {
                known: &known,
                seen: &seen,
                unchanged: unchanged.as_ref(),
                start: region.start,
            };
            let before = self.counters.bytes_read.load(Ordering::Relaxed);
            self.image_region(path, &read, &region, used.as_ref(), &blocks, &mut content)?;
            let read_now = self.counters.bytes_read.load(Ordering::Relaxed) - before;
            if let Some(files) = files {
                stamps.push(image::known::VolumeStamps {
                    start: region.start,
                    uuid: files.uuid,
                    stamps: files.stamps_to_keep,
                });
            }
            if let Some(p) = part {
                let how = hold.as_ref().map_or(String::new(), |h| h.how.clone());
                self.note(format!(
                    "{} volume {} ({}): {}; {}",
                    path.display(),
                    p.number,
                    p.filesystem
                        .as_ref()
                        .map_or("unknown file system", |f| f.kind.name()),
                    how,
                    match (&used, &unchanged) {
                        (Some(u), Some(_)) => format!(
                            "{} of {} bytes in use, {read_now} read (the rest held unchanged files' data)",
                            u.bytes(),
                            region.len
                        ),
                        (Some(u), None) => format!("{} of {} bytes in use read", u.bytes(), region.len),
                        (None, _) => format!("all {} bytes read", region.len),
                    }
                ));
                volumes.push(image::VolumeRecord {
                    number: p.number,
                    used: used.as_ref().map(image::UsedMap::bytes),
                    how,
                });
            }
            if let Some(hold) = hold
                && let Err(e) = hold.release()
            {
                self.warn(path, e);
            }
        }
        node.size = layout.size;
        node.content = content;
        if let (Some(file), Ok(seen), Ok(mut all)) =
            (known_file, seen.into_inner(), self.new_known.lock())
        {
            all.push((file, seen, stamps));
        }
        if let Ok(mut images) = self.images.lock() {
            images.push(image::DiskImage {
                path: path.display().to_string(),
                layout,
                volumes,
            });
        }
        self.counters.files_read.fetch_add(1, Ordering::Relaxed);
        self.counters.files.fetch_add(1, Ordering::Relaxed);
        self.counters.bytes.fetch_add(node.size, Ordering::Relaxed);
        Ok(Some(node))
    }

    /// Reads one region of a disk (`source`'s bytes from `region.start - base`) block by
    /// block into `content`: what is not in use and what is all zeros become holes. A block
    /// that cannot be read is a warning and restores as zeros; the rest of the disk is still
    /// imaged.
    fn image_region(
        &self,
        path: &Path,
        source: &ImageSource<'_>,
        region: &image::blocks::Region,
        used: Option<&image::UsedMap>,
        blocks: &KnownUse<'_>,
        content: &mut Vec<Extent>,
    ) -> Result<(), Fatal> {
        // 8 blocks per thread between two waits for the whole batch: fewer idle threads.
        let batch_len = 8 * rayon::current_num_threads().max(1);
        let mut specs = image::blocks::blocks(region, used).peekable();
        while specs.peek().is_some() {
            let batch: Vec<image::blocks::BlockSpec> = specs.by_ref().take(batch_len).collect();
            let ids: Vec<Result<(Option<ChunkId>, u64), Fatal>> = batch
                .par_iter()
                .map(|spec| {
                    if spec.used.is_empty() {
                        return Ok((None, 0));
                    }
                    let used = image::known::used_print(&spec.used);
                    // None of its used bytes can have changed: the last image's block, unread.
                    if let Some(last) = blocks.unchanged(spec, used)
                        && self.refs.use_stored(&last.id)
                    {
                        if let Ok(mut seen) = blocks.seen.lock() {
                            seen.push(last);
                        }
                        return Ok((Some(last.id), 0));
                    }
                    let read: u64 = spec.used.iter().map(|r| r.end - r.start).sum();
                    let stored = source.read(spec, |block| {
                        if is_zero(block) {
                            return Ok(None);
                        }
                        // The same block as the last image's: its id reused, not hashed again.
                        let print = image::known::fingerprint(self.repo.keys(), block);
                        let id = match blocks.known.get(spec.offset, print) {
                            Some(id) if self.refs.use_stored(&id) => id,
                            _ => self.store_blob(block)?,
                        };
                        if let Ok(mut seen) = blocks.seen.lock() {
                            seen.push(image::known::KnownBlock {
                                offset: spec.offset,
                                print,
                                used,
                                id,
                            });
                        }
                        Ok(Some(id))
                    });
                    match stored {
                        Ok(id) => id.map(|id| (id, read)),
                        Err(e) => {
                            self.warn(
                                path,
                                format!(
                                    "the block at byte {} could not be read ({e}); it restores as zeros",
                                    spec.offset
                                ),
                            );
                            Ok((None, 0))
                        }
                    }
                })
                .collect();
            for (spec, id) in batch.iter().zip(ids) {
                let (id, read) = id?;
                self.counters.bytes_read.fetch_add(read, Ordering::Relaxed);
                let len = spec.len as u64;
                match id {
                    Some(id) => content.push(Extent::Data {
                        id,
                        len: spec.len as u32,
                    }),
                    None => match content.last_mut() {
                        Some(Extent::Hole { len: hole }) => *hole += len,
                        _ => content.push(Extent::Hole { len }),
                    },
                }
            }
            self.report();
        }
        Ok(())
    }

    /// The files of an ext4 volume held still for reading, to skip what did not change;
    /// `None` (and a note) when they cannot be read: the volume is then read whole.
    fn ext_files(
        &self,
        path: &Path,
        source: &fs::File,
        offset: u64,
        len: u64,
        fsys: &image::FileSystem,
    ) -> Option<image::changes::ExtFiles> {
        if !matches!(
            fsys.kind,
            image::FsKind::Ext2 | image::FsKind::Ext3 | image::FsKind::Ext4
        ) {
            return None;
        }
        let mut src = source;
        match image::changes::scan(&mut src, offset, len, now_ns()) {
            Ok(files) => files,
            Err(e) => {
                self.note(format!(
                    "{} volume at byte {offset}: its files cannot be listed ({e}); every used block is read",
                    path.display()
                ));
                None
            }
        }
    }

    /// A line for the session log (how each volume was read).
    fn note(&self, line: String) {
        tracing::info!("{line}");
        if let Ok(mut n) = self.notes.lock() {
            n.push(line);
        }
    }

    /// Records a file read this run: change detection, counters, hard-link sharing.
    fn finish_file(
        &self,
        path: &Path,
        node: &mut Node,
        content: Vec<Extent>,
        size: u64,
        link_key: Option<(u64, u64)>,
    ) {
        self.counters.files_read.fetch_add(1, Ordering::Relaxed);
        if let Ok(after) = fs::symlink_metadata(path)
            && (after.len() != size || fsmeta::times_of(&after).mtime_ns != node.times.mtime_ns)
        {
            self.warn(
                path,
                "the file changed while it was read; the restore point holds what was read".into(),
            );
        }
        node.size = size;
        node.content = content;
        if let Some(key) = link_key
            && let Ok(mut m) = self.hardlinks.lock()
        {
            m.insert(key, node.content.clone());
        }
    }

    fn reference(&self, content: &[Extent]) {
        for e in content {
            if let Extent::Data { id, .. } = e {
                self.refs.use_stored(id);
            }
        }
    }

    /// Stores a plaintext of file data unless the repository or this run already has it.
    fn store_blob(&self, data: &[u8]) -> Result<ChunkId, Fatal> {
        self.store_blob_keeping(data, Lane::Data, false)
            .map(|(id, _)| id)
    }

    /// Stores a plaintext in `lane` unless it is already there; with `keep`, also returns the
    /// sealed bytes it stored (for the local cache of folder listings).
    fn store_blob_keeping(
        &self,
        data: &[u8],
        lane: Lane,
        keep: bool,
    ) -> Result<(ChunkId, Option<Vec<u8>>), Fatal> {
        if self.cancel.is_cancelled() {
            return Err(Fatal);
        }
        let keys = self.repo.keys();
        let id = keys.chunk_id(data);
        if !self.refs.claim(id) {
            return Ok((id, None));
        }
        let sealed = blob::seal_with_id(keys, self.compression, id, data).map_err(|e| {
            tracing::error!("sealing a blob failed: {e}");
            Fatal
        })?;
        self.counters.new_blobs.fetch_add(1, Ordering::Relaxed);
        self.counters
            .stored_bytes
            .fetch_add(sealed.bytes.len() as u64, Ordering::Relaxed);
        let kept = keep.then(|| sealed.bytes.clone());
        self.saver.save(lane, sealed).map_err(|e| {
            tracing::error!("storing a blob failed: {e}");
            Fatal
        })?;
        Ok((id, kept))
    }

    /// Hands the last runs and the last, partly filled pack to the writers.
    fn flush(&self) -> Result<(), Fatal> {
        self.saver.flush().map_err(|e| {
            tracing::error!("storing the last pack failed: {e}");
            Fatal
        })
    }

    /// Encodes a folder's entries into tree blobs and stores them; returns their ids.
    fn store_dir(&self, nodes: Vec<Node>) -> Result<Vec<ChunkId>, Fatal> {
        let parts = catalog::encode_dir(nodes).map_err(|e| {
            tracing::error!("encoding a folder failed: {e}");
            Fatal
        })?;
        parts
            .iter()
            .map(|part| {
                let (id, sealed) =
                    self.store_blob_keeping(part, Lane::Tree, self.repo.has_blob_cache())?;
                if let Some(sealed) = sealed {
                    self.repo.remember_sealed(&id, &sealed);
                }
                Ok(id)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(patterns: &[&str]) -> GlobSet {
        build_excludes(&patterns.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>())
            .expect("valid patterns")
    }

    #[test]
    fn a_name_pattern_matches_anywhere() {
        let excludes = set(&["*.tmp"]);
        let base = std::env::temp_dir();
        assert!(excluded(&excludes, &base.join("a").join("b.tmp")));
        assert!(!excluded(&excludes, &base.join("a").join("b.txt")));
    }

    /// Windows paths and patterns as people write them there: drive letters, `\`, shares,
    /// verbatim paths from the walker, any case.
    #[cfg(windows)]
    #[test]
    fn windows_patterns_match_windows_paths() {
        let excludes = set(&[r"C:\Users\*\AppData\**", r"\\server\share\tmp\**", "*.TMP"]);
        let cases = [
            (r"\\?\C:\Users\ann\AppData\Local\x.db", true),
            (r"C:\Users\ann\appdata\Roaming\y", true),
            (r"C:\Users\ann\Documents\y", false),
            (r"\\?\UNC\server\share\tmp\a\b", true),
            (r"\\server\share\keep\a", false),
            (r"\\?\D:\data\report.tmp", true),
        ];
        for (path, expected) in cases {
            assert_eq!(excluded(&excludes, Path::new(path)), expected, "{path}");
        }
    }

    #[test]
    fn a_bad_pattern_is_named() {
        let err = build_excludes(&["[a".to_owned()]).unwrap_err();
        assert!(err.to_string().contains("[a"), "{err}");
    }
}
