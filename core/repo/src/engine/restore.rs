//! Restore: brings back a whole restore point or selected paths, to where they were or into
//! another folder, in parallel.
//!
//! Every chunk is read and authenticated before its bytes are written. A file that replaces
//! an existing one is written to a temporary file beside it and renamed into place only when
//! complete, so an existing file is never left half-overwritten; a new file that cannot be
//! completed is removed again. Holes are
//! restored as holes (sparse), hard links as hard links; permissions, owner (when running with
//! the right to) and times are applied last. A file that fails is reported and the rest goes on.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::browse::{self, Resolved};
use super::fsmeta;
use super::{EngineError, Progress, Warning};
use crate::catalog::{Extent, Node, NodeKind};
use crate::crypto::ChunkId;
use crate::fetch::BlobResult;
use crate::repo::{ChunkIndex, Repository, RestorePoint};

/// What to do when a file to restore already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Conflict {
    /// Replace it.
    Overwrite,
    /// Leave it and report it as skipped.
    #[default]
    Skip,
    /// Restore beside it as `name (restored).ext`.
    KeepBoth,
}

impl std::fmt::Display for Conflict {
    /// The form [`Conflict::from_str`] reads.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Overwrite => "overwrite",
            Self::Skip => "skip",
            Self::KeepBoth => "keep-both",
        })
    }
}

impl std::str::FromStr for Conflict {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "overwrite" => Ok(Self::Overwrite),
            "skip" => Ok(Self::Skip),
            "keep-both" => Ok(Self::KeepBoth),
            other => Err(format!(
                "unknown conflict rule \"{other}\"; use overwrite, skip or keep-both"
            )),
        }
    }
}

/// Where restored items go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Back where they were backed up from.
    Original,
    /// Into this folder: a whole point keeps its full paths below it; a selected item is
    /// placed directly in it.
    Folder(PathBuf),
}

/// What to restore and how.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// Where to.
    pub destination: Destination,
    /// Paths inside the point (as backed up, e.g. `/home/alice/docs`); empty for everything.
    pub paths: Vec<String>,
    /// Existing files.
    pub conflict: Conflict,
    /// Stops the restore between files when cancelled (the files written so far stay).
    pub cancel: super::Cancel,
}

/// Where one selected item went: what a person restoring needs to find it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placed {
    /// The item as backed up (`/` for a whole restore point).
    pub from: String,
    /// Where it is now (a file kept beside an existing one under "keep both": its new name).
    pub to: PathBuf,
    /// Whether it is a folder (else a file or a link): what "open its folder" opens.
    pub folder: bool,
}

/// What a restore did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RestoreReport {
    /// Where each selected item (or the whole point) was restored, in the order asked.
    pub placed: Vec<Placed>,
    /// Files restored.
    pub files: u64,
    /// Folders restored.
    pub dirs: u64,
    /// Bytes of file content restored.
    pub bytes: u64,
    /// Items left alone (existing files under "skip", special files), with the reason.
    pub skipped: Vec<Warning>,
    /// Items that could not be restored, with the reason.
    pub failed: Vec<Warning>,
    /// Items restored under another name than their own, with the reason (names one folder
    /// of this platform cannot hold side by side).
    pub renamed: Vec<Warning>,
}

impl RestoreReport {
    /// One line for people: `restored 3 files and 1 folders (1.5 MiB); 0 skipped, 0 failed`.
    pub fn summary(&self) -> String {
        format!(
            "restored {} files and {} folders ({}); {} skipped, {} failed",
            self.files,
            self.dirs,
            cloudkeep_model::units::human_bytes(self.bytes),
            self.skipped.len(),
            self.failed.len()
        )
    }
}

/// Chunks fetched for a batch, by id.
type Blobs = HashMap<ChunkId, BlobResult<Vec<u8>>>;

struct Ctx<'a> {
    repo: &'a Repository,
    index: &'a ChunkIndex,
    conflict: Conflict,
    files: AtomicU64,
    dirs: AtomicU64,
    bytes: AtomicU64,
    skipped: Mutex<Vec<Warning>>,
    failed: Mutex<Vec<Warning>>,
    renamed: Mutex<Vec<Warning>>,
    hardlinks: Mutex<HashMap<(u64, u64), PathBuf>>,
    /// Selected files (their planned destinations) and, once written, the name each got.
    selected_files: Mutex<HashMap<PathBuf, PathBuf>>,
    started: Instant,
    last_report: AtomicU64,
    expected: u64,
    progress: &'a (dyn Fn(&Progress) + Sync),
    cancel: &'a super::Cancel,
}

/// File content is fetched for batches of files of about this many bytes together (one
/// span read per pack region instead of one read per chunk); a larger file is fetched in
/// windows of this size.
const BATCH_BYTES: u64 = 16 << 20;

/// At most this many files in one batch.
const BATCH_FILES: usize = 1024;

/// Batches restored at the same time: while one is written, the next is fetched.
const BATCH_WORKERS: usize = 3;

/// What the walker hands to the workers.
enum Work {
    /// Small files whose chunks are fetched together.
    Batch(Vec<(Node, PathBuf)>),
    /// One large file, fetched in windows.
    Large(Box<Node>, PathBuf),
}

/// Restores from `point` as `options` say.
///
/// One thread walks the point's folders in order (creating them, reading the listings of a
/// folder's subfolders together) and hands files to workers in batches; each batch's chunks
/// are read with merged span reads ([`crate::fetch`]) and its files written in parallel.
/// Second and later names of a hard-linked file are linked at the end, and folder times are
/// applied last, when nothing more is written into them.
pub fn restore(
    repo: &Repository,
    point: &RestorePoint,
    options: &RestoreOptions,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Result<RestoreReport, EngineError> {
    // Shared: garbage collection must not move packs while they are read.
    let _lock = crate::lock::acquire(repo.backend(), crate::lock::LockKind::Shared)?;
    let index = repo.load_readable_index()?;
    // An image-level point: files inside its volumes (`/sda/sda1/…`), unless every selection
    // names what its catalog holds (a disk at its own path, or everything): those restore as
    // raw image files.
    if point.manifest.is_image()
        && !options.paths.is_empty()
        && options
            .paths
            .iter()
            .any(|p| browse::resolve(repo, &index, point, p).is_err())
    {
        return super::volumes::restore_files(repo, &index, point, options, progress);
    }
    let ctx = Ctx::new(
        (repo, &index),
        options.conflict,
        point.manifest.stats.bytes,
        progress,
        &options.cancel,
    );
    let selections: Vec<String> = if options.paths.is_empty() {
        vec!["/".into()]
    } else {
        options.paths.clone()
    };
    let (sender, receiver) = mpsc::sync_channel::<Work>(BATCH_WORKERS);
    let receiver = Mutex::new(receiver);
    let (deferred, folders, mut placed) = std::thread::scope(|scope| {
        for _ in 0..BATCH_WORKERS {
            scope.spawn(|| {
                loop {
                    let work = match receiver.lock() {
                        Ok(r) => r.recv(),
                        Err(_) => return,
                    };
                    match work {
                        Ok(work) => ctx.run(work),
                        Err(_) => return,
                    }
                }
            });
        }
        let mut walker = Walker {
            ctx: &ctx,
            sender,
            batch: Vec::new(),
            batch_bytes: 0,
            links_seen: HashSet::new(),
            deferred: Vec::new(),
            folders: Vec::new(),
            placed: Vec::new(),
        };
        let walked = walker.walk_selections(point, &selections, &options.destination);
        walker.flush();
        // Dropping the sender lets the workers finish once the queue is empty.
        let Walker {
            deferred,
            folders,
            placed,
            ..
        } = walker;
        walked.map(|()| (deferred, folders, placed))
    })?;
    if options.cancel.is_cancelled() {
        return Err(EngineError::Cancelled);
    }
    for (node, dest) in &deferred {
        ctx.restore_file(node, dest, None);
    }
    for (node, dest) in folders.iter().rev() {
        if let Err(e) = fsmeta::apply(dest, NodeKind::Dir, &node.owner, &node.times) {
            tracing::debug!(path = %dest.display(), "folder metadata: {e}");
        }
    }
    ctx.report(true);
    let renamed = ctx.selected_files.into_inner().unwrap_or_default();
    for p in &mut placed {
        if let Some(actual) = renamed.get(&p.to) {
            p.to.clone_from(actual);
        }
        p.to = fsmeta::shown(&p.to);
    }
    Ok(RestoreReport {
        placed,
        files: ctx.files.load(Ordering::Relaxed),
        dirs: ctx.dirs.load(Ordering::Relaxed),
        bytes: ctx.bytes.load(Ordering::Relaxed),
        skipped: ctx.skipped.into_inner().unwrap_or_default(),
        failed: ctx.failed.into_inner().unwrap_or_default(),
        renamed: ctx.renamed.into_inner().unwrap_or_default(),
    })
}

/// Restores chosen files, each to its own destination (its folder must exist), with the same
/// batched fetches and writers as a whole restore: what a restore test uses to bring back
/// its sample. Existing files are overwritten. Folders, links and special files are not
/// expected here (a file-level sample holds regular files only).
pub fn restore_nodes(
    repo: &Repository,
    index: &ChunkIndex,
    items: Vec<(Node, PathBuf)>,
    cancel: &super::Cancel,
    progress: &(dyn Fn(&Progress) + Sync),
) -> RestoreReport {
    let expected = items.iter().map(|(n, _)| n.size).sum();
    let ctx = Ctx::new(
        (repo, index),
        Conflict::Overwrite,
        expected,
        progress,
        cancel,
    );
    let mut batch = Vec::new();
    let mut batch_bytes = 0;
    let mut work = Vec::new();
    for (node, dest) in items {
        let data = data_bytes(&node.content);
        if data > BATCH_BYTES {
            work.push(Work::Large(Box::new(node), dest));
            continue;
        }
        batch_bytes += data;
        batch.push((node, dest));
        if batch_bytes >= BATCH_BYTES || batch.len() >= BATCH_FILES {
            batch_bytes = 0;
            work.push(Work::Batch(std::mem::take(&mut batch)));
        }
    }
    if !batch.is_empty() {
        work.push(Work::Batch(batch));
    }
    let work = Mutex::new(work);
    std::thread::scope(|scope| {
        for _ in 0..BATCH_WORKERS {
            scope.spawn(|| {
                while let Some(item) = work.lock().ok().and_then(|mut w| w.pop()) {
                    ctx.run(item);
                }
            });
        }
    });
    ctx.report(true);
    RestoreReport {
        placed: Vec::new(),
        files: ctx.files.load(Ordering::Relaxed),
        dirs: 0,
        bytes: ctx.bytes.load(Ordering::Relaxed),
        skipped: ctx.skipped.into_inner().unwrap_or_default(),
        failed: ctx.failed.into_inner().unwrap_or_default(),
        renamed: Vec::new(),
    }
}

/// Most tree parts (of up to [`crate::catalog::MAX_PART_ENTRIES`] entries each) of subfolder
/// listings read at once.
const LISTING_PARTS: usize = 64;

/// The single thread that walks the point and fills batches.
struct Walker<'c, 'a> {
    ctx: &'c Ctx<'a>,
    sender: mpsc::SyncSender<Work>,
    batch: Vec<(Node, PathBuf)>,
    batch_bytes: u64,
    links_seen: HashSet<(u64, u64)>,
    /// Later names of hard-linked files: linked after every batch is done.
    deferred: Vec<(Node, PathBuf)>,
    /// Folders restored, in walk order, for their times at the end.
    folders: Vec<(Node, PathBuf)>,
    /// Where each selection goes.
    placed: Vec<Placed>,
}

impl Walker<'_, '_> {
    fn walk_selections(
        &mut self,
        point: &RestorePoint,
        selections: &[String],
        destination: &Destination,
    ) -> Result<(), EngineError> {
        let (repo, index) = (self.ctx.repo, self.ctx.index);
        for selection in selections {
            let resolved = browse::resolve(repo, index, point, selection)?;
            // Written through the path the OS takes as it is (Windows: verbatim, for `CON`,
            // trailing dots and long paths); reported as people write it.
            let original = fsmeta::io_path(&Path::new("/").join(selection.trim_start_matches('/')));
            let destination = &match destination {
                Destination::Original => Destination::Original,
                Destination::Folder(folder) => Destination::Folder(fsmeta::io_path(folder)),
            };
            match (resolved, destination) {
                (Resolved::Root, destination) => {
                    let top = repo.load_dir(index, &point.manifest.root)?;
                    let base = match destination {
                        Destination::Original => root_of(&original),
                        Destination::Folder(folder) => folder.clone(),
                    };
                    fs::create_dir_all(&base).map_err(|e| EngineError::Path {
                        path: base.clone(),
                        reason: format!("cannot create the destination folder: {e}"),
                    })?;
                    self.placed.push(Placed {
                        from: "/".into(),
                        to: base.clone(),
                        folder: true,
                    });
                    // Where they came from, a drive of a Windows point is its root (`C:\`).
                    let original = matches!(destination, Destination::Original);
                    self.walk_children_with(top, |name| {
                        if original {
                            fsmeta::io_path(&fsmeta::original_top(&base, name))
                        } else {
                            base.join(fsmeta::dest_component(name))
                        }
                    });
                }
                (Resolved::Node(node), Destination::Original) => {
                    if let Some(parent) = original.parent() {
                        let _ = fs::create_dir_all(parent);
                    }
                    self.place(selection, &node, &original);
                    self.walk_node(*node, original, None);
                }
                (Resolved::Node(node), Destination::Folder(folder)) => {
                    fs::create_dir_all(folder).map_err(|e| EngineError::Path {
                        path: folder.clone(),
                        reason: format!("cannot create the destination folder: {e}"),
                    })?;
                    let dest = folder.join(fsmeta::dest_component(&node.name));
                    self.place(selection, &node, &dest);
                    self.walk_node(*node, dest, None);
                }
            }
        }
        Ok(())
    }

    /// Notes where `selection` goes; a file's final name is learnt when it is written.
    fn place(&mut self, selection: &str, node: &Node, dest: &Path) {
        if node.kind == NodeKind::File
            && let Ok(mut files) = self.ctx.selected_files.lock()
        {
            files.insert(dest.to_path_buf(), dest.to_path_buf());
        }
        self.placed.push(Placed {
            from: format!("/{}", selection.trim_start_matches('/')),
            to: dest.to_path_buf(),
            folder: node.kind == NodeKind::Dir,
        });
    }

    /// Restores one item; `listing` is a folder's listing when already read.
    fn walk_node(&mut self, node: Node, dest: PathBuf, listing: Option<Result<Vec<Node>, String>>) {
        if self.ctx.cancel.is_cancelled() {
            return;
        }
        match node.kind {
            NodeKind::Dir => {
                if !self.ctx.prepare_dir(&dest) {
                    return;
                }
                let listing = listing.unwrap_or_else(|| {
                    let mut one = self
                        .ctx
                        .repo
                        .load_dirs(self.ctx.index, &[node.subtree.as_slice()]);
                    one.pop().unwrap_or_else(|| Err("no listing".into()))
                });
                match listing {
                    Ok(children) => self.walk_children(children, &dest),
                    Err(e) => {
                        return self
                            .ctx
                            .fail(&dest, format!("cannot read this folder's listing: {e}"));
                    }
                }
                self.ctx.dirs.fetch_add(1, Ordering::Relaxed);
                self.folders.push((node, dest));
            }
            NodeKind::File => self.add_file(node, dest),
            NodeKind::Symlink => self.ctx.restore_symlink(&node, &dest),
            _ => note(
                &self.ctx.skipped,
                &dest,
                "special files (devices, pipes, sockets) are not restored",
            ),
        }
    }

    /// Restores a folder's entries, reading the listings of its subfolders together.
    fn walk_children(&mut self, children: Vec<Node>, dest: &Path) {
        self.walk_children_with(children, |name| dest.join(fsmeta::dest_component(name)));
    }

    /// [`Self::walk_children`] with each entry's destination from `dest_of(name)`.
    ///
    /// The subfolders' listings are read together, a group at a time of at most
    /// [`LISTING_PARTS`] tree parts: few reads, and memory bounded however many entries the
    /// subfolders hold (reading all of them at once held a whole point of a thousand folders of
    /// ten thousand files in memory).
    fn walk_children_with(&mut self, children: Vec<Node>, dest_of: impl Fn(&[u8]) -> PathBuf) {
        let mut groups: std::collections::VecDeque<Vec<Vec<ChunkId>>> = Default::default();
        let mut parts = 0;
        for c in children.iter().filter(|c| c.kind == NodeKind::Dir) {
            match groups.back_mut() {
                Some(group) if parts + c.subtree.len() <= LISTING_PARTS => {
                    group.push(c.subtree.clone())
                }
                _ => {
                    parts = 0;
                    groups.push_back(vec![c.subtree.clone()]);
                }
            }
            parts += c.subtree.len();
        }
        let mut listings = Vec::new().into_iter();
        let mut taken = std::collections::HashSet::new();
        for child in children {
            let listing = if child.kind == NodeKind::Dir {
                if listings.len() == 0
                    && let Some(group) = groups.pop_front()
                {
                    let group: Vec<&[ChunkId]> = group.iter().map(Vec::as_slice).collect();
                    listings = self.ctx.repo.load_dirs(self.ctx.index, &group).into_iter();
                }
                listings.next()
            } else {
                None
            };
            let name = unique_name(&child.name, &mut taken, CASE_INSENSITIVE);
            let child_dest = dest_of(&name);
            if name != child.name {
                note(
                    &self.ctx.renamed,
                    &fsmeta::shown(&child_dest),
                    format!(
                        "restored under this name: \"{}\" and another entry of its folder differ only in case, which one folder here cannot hold",
                        String::from_utf8_lossy(&child.name)
                    ),
                );
            }
            self.walk_node(child, child_dest, listing);
        }
    }

    fn add_file(&mut self, node: Node, dest: PathBuf) {
        if node.file_id.nlink > 1 && !self.links_seen.insert((node.file_id.dev, node.file_id.ino)) {
            self.deferred.push((node, dest));
            return;
        }
        let data = data_bytes(&node.content);
        if data > BATCH_BYTES {
            self.flush();
            let _ = self.sender.send(Work::Large(Box::new(node), dest));
            return;
        }
        self.batch.push((node, dest));
        self.batch_bytes += data;
        if self.batch_bytes >= BATCH_BYTES || self.batch.len() >= BATCH_FILES {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if !self.batch.is_empty() {
            self.batch_bytes = 0;
            let _ = self
                .sender
                .send(Work::Batch(std::mem::take(&mut self.batch)));
        }
    }
}

/// The chunk ids of a file's content (not its holes).
fn data_ids(content: &[Extent]) -> impl Iterator<Item = ChunkId> + '_ {
    content.iter().filter_map(|e| match e {
        Extent::Data { id, .. } => Some(*id),
        Extent::Hole { .. } => None,
    })
}

/// Bytes of chunk data (not holes) in a file's content.
fn data_bytes(content: &[Extent]) -> u64 {
    content
        .iter()
        .map(|e| match e {
            Extent::Data { len, .. } => u64::from(*len),
            Extent::Hole { .. } => 0,
        })
        .sum()
}

/// Whether names that differ only in case are one name to this platform's file systems.
const CASE_INSENSITIVE: bool = cfg!(any(windows, target_os = "macos"));

/// `name`, or where this platform's file systems would take it for an entry already placed
/// in the same folder (`Report.txt` after `report.txt` on Windows), `name (2)` and so on —
/// chosen by the walker alone, so that parallel writers never write one file twice.
fn unique_name(
    name: &[u8],
    taken: &mut std::collections::HashSet<String>,
    case_insensitive: bool,
) -> Vec<u8> {
    if !case_insensitive {
        return name.to_vec();
    }
    let text = String::from_utf8_lossy(name).into_owned();
    if taken.insert(text.to_lowercase()) {
        return name.to_vec();
    }
    let (stem, ext) = match text.rfind('.') {
        Some(dot) if dot > 0 => (&text[..dot], &text[dot..]),
        _ => (text.as_str(), ""),
    };
    (2..)
        .map(|n| format!("{stem} ({n}){ext}"))
        .find(|candidate| taken.insert(candidate.to_lowercase()))
        .map(String::into_bytes)
        .unwrap_or_else(|| name.to_vec())
}

/// The file-system root a path hangs from (`/` on Unix, `C:\` on Windows).
fn root_of(path: &Path) -> PathBuf {
    let mut root = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Prefix(_) | Component::RootDir => root.push(c.as_os_str()),
            _ => break,
        }
    }
    root
}

fn note(list: &Mutex<Vec<Warning>>, path: &Path, message: impl Into<String>) {
    if let Ok(mut l) = list.lock() {
        l.push(Warning {
            path: path.to_path_buf(),
            message: message.into(),
        });
    }
}

/// Block size of the zero scan: runs of zero blocks are skipped (left as holes).
const SPARSE_BLOCK: usize = 4096;

/// Writes `data`, seeking over every all-zero 4 KiB block so that zeros cost no disk space,
/// and writing each run of non-zero blocks with one call.
fn write_sparse(file: &mut File, data: &[u8]) -> std::io::Result<()> {
    let mut run_start: Option<usize> = None;
    let mut at = 0;
    for block in data.chunks(SPARSE_BLOCK) {
        let zero = block.len() == SPARSE_BLOCK && crate::chunker::is_zero(block);
        match (zero, run_start) {
            (false, None) => run_start = Some(at),
            (true, Some(start)) => {
                file.write_all(&data[start..at])?;
                run_start = None;
            }
            _ => {}
        }
        if zero {
            file.seek(SeekFrom::Current(SPARSE_BLOCK as i64))?;
        }
        at += block.len();
    }
    if let Some(start) = run_start {
        file.write_all(&data[start..])?;
    }
    Ok(())
}

impl<'a> Ctx<'a> {
    /// A restore's shared state: nothing done yet, `expected` bytes to come.
    fn new(
        (repo, index): (&'a Repository, &'a ChunkIndex),
        conflict: Conflict,
        expected: u64,
        progress: &'a (dyn Fn(&Progress) + Sync),
        cancel: &'a super::Cancel,
    ) -> Self {
        Self {
            repo,
            index,
            conflict,
            files: AtomicU64::new(0),
            dirs: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            skipped: Mutex::default(),
            failed: Mutex::default(),
            renamed: Mutex::default(),
            hardlinks: Mutex::default(),
            selected_files: Mutex::default(),
            started: Instant::now(),
            last_report: AtomicU64::new(0),
            expected,
            progress,
            cancel,
        }
    }

    fn fail(&self, path: &Path, message: impl Into<String>) {
        let message = message.into();
        tracing::warn!(path = %path.display(), "restore failed: {message}");
        note(&self.failed, path, message);
    }

    fn report(&self, force: bool) {
        let elapsed = self.started.elapsed().as_millis() as u64;
        let last = self.last_report.load(Ordering::Relaxed);
        if !force
            && (elapsed < last + 200
                || self
                    .last_report
                    .compare_exchange(last, elapsed, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err())
        {
            return;
        }
        (self.progress)(&Progress {
            files: self.files.load(Ordering::Relaxed),
            dirs: self.dirs.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            bytes_read: self.bytes.load(Ordering::Relaxed),
            stored_bytes: 0,
            elapsed_ms: elapsed,
            expected_bytes: Some(self.expected),
        });
    }

    fn run(&self, work: Work) {
        if self.cancel.is_cancelled() {
            return;
        }
        match work {
            Work::Batch(files) => {
                let ids: Vec<ChunkId> = files
                    .iter()
                    .flat_map(|(node, _)| data_ids(&node.content))
                    .collect();
                let blobs = self.repo.read_blobs(self.index, &ids);
                files
                    .par_iter()
                    .for_each(|(node, dest)| self.restore_file(node, dest, Some(&blobs)));
            }
            Work::Large(node, dest) => self.restore_file(&node, &dest, None),
        }
    }

    /// Makes sure `dest` is a folder; false (and reported) when it cannot be.
    fn prepare_dir(&self, dest: &Path) -> bool {
        match fs::symlink_metadata(dest) {
            Ok(meta) if meta.is_dir() => true,
            Ok(_) => {
                self.fail(
                    dest,
                    "something that is not a folder is in the way; move it or restore elsewhere",
                );
                false
            }
            Err(_) => match fs::create_dir_all(dest) {
                Ok(()) => true,
                Err(e) => {
                    self.fail(dest, format!("cannot create the folder: {e}"));
                    false
                }
            },
        }
    }

    /// Where to write given the conflict rule; `None` to skip.
    fn target_for(&self, dest: &Path) -> Option<PathBuf> {
        if fs::symlink_metadata(dest).is_err() {
            return Some(dest.to_path_buf());
        }
        match self.conflict {
            Conflict::Overwrite => Some(dest.to_path_buf()),
            Conflict::Skip => {
                note(
                    &self.skipped,
                    dest,
                    "it already exists (conflict rule: skip)",
                );
                None
            }
            Conflict::KeepBoth => keep_both_name(dest),
        }
    }

    /// Restores one file; its chunks come from `blobs` when its batch fetched them, otherwise
    /// they are fetched here in windows.
    fn restore_file(&self, node: &Node, dest: &Path, blobs: Option<&Blobs>) {
        let Some(target) = self.target_for(dest) else {
            return;
        };
        if fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
            return self.fail(
                &target,
                "a folder is in the way of this file; move it or restore elsewhere",
            );
        }
        let link_key = (node.file_id.nlink > 1).then_some((node.file_id.dev, node.file_id.ino));
        if let Some(key) = link_key {
            let first = self
                .hardlinks
                .lock()
                .ok()
                .and_then(|m| m.get(&key).cloned());
            if let Some(first) = first {
                let _ = fs::remove_file(&target);
                if fs::hard_link(&first, &target).is_ok() {
                    self.files.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
        // Replacing an existing file goes through a temporary file and a rename, so the old
        // file stays whole until the new one is complete; a new file is written in place
        // (and removed again if its content cannot be restored).
        let replacing = fs::symlink_metadata(&target).is_ok();
        let write_to = if replacing {
            let mut suffix = [0u8; 6];
            let _ = crate::crypto::random_bytes(&mut suffix);
            let tmp_name = format!(
                ".{}.ckrestore-{}",
                fsmeta::name_os(&node.name).to_string_lossy(),
                hex::encode(suffix)
            );
            target.with_file_name(tmp_name)
        } else {
            target.clone()
        };
        if let Err(message) = self.write_content(node, &write_to, blobs) {
            let _ = fs::remove_file(&write_to);
            return self.fail(dest, message);
        }
        if let Err(e) = fsmeta::apply(&write_to, NodeKind::File, &node.owner, &node.times) {
            tracing::debug!(path = %dest.display(), "file metadata: {e}");
        }
        if replacing
            && let Err(e) =
                fsmeta::prepare_replace(&target).and_then(|()| fs::rename(&write_to, &target))
        {
            let _ = fs::remove_file(&write_to);
            return self.fail(
                dest,
                format!("cannot move the restored file into place: {e}"),
            );
        }
        if target != dest
            && let Ok(mut files) = self.selected_files.lock()
            && let Some(name) = files.get_mut(dest)
        {
            name.clone_from(&target);
        }
        if let Some(key) = link_key
            && let Ok(mut m) = self.hardlinks.lock()
        {
            m.entry(key).or_insert(target);
        }
        self.files.fetch_add(1, Ordering::Relaxed);
        self.report(false);
    }

    fn write_content(&self, node: &Node, tmp: &Path, blobs: Option<&Blobs>) -> Result<(), String> {
        let mut file = File::create(tmp).map_err(|e| format!("cannot create the file: {e}"))?;
        let mut rest: &[Extent] = &node.content;
        while !rest.is_empty() {
            // A window of extents whose chunk data fits one fetch.
            let mut take = 0;
            let mut window_bytes = 0;
            while take < rest.len() && (take == 0 || window_bytes < BATCH_BYTES) {
                window_bytes += data_bytes(&rest[take..=take]);
                take += 1;
            }
            let (window, after) = rest.split_at(take);
            rest = after;
            let fetched;
            let blobs = match blobs {
                Some(blobs) => blobs,
                None => {
                    let ids: Vec<ChunkId> = data_ids(window).collect();
                    fetched = self.repo.read_blobs(self.index, &ids);
                    &fetched
                }
            };
            for extent in window {
                match *extent {
                    Extent::Data { id, len } => {
                        let data = blobs
                            .get(&id)
                            .ok_or_else(|| format!("chunk {id} was not fetched"))?
                            .as_ref()
                            .map_err(|e| format!("cannot restore its content: {e}"))?;
                        if data.len() != len as usize {
                            return Err(format!(
                                "chunk {id} has {} bytes, the catalog says {len}",
                                data.len()
                            ));
                        }
                        write_sparse(&mut file, data).map_err(|e| format!("cannot write: {e}"))?;
                        self.bytes.fetch_add(u64::from(len), Ordering::Relaxed);
                    }
                    Extent::Hole { len } => {
                        let offset =
                            i64::try_from(len).map_err(|_| "a hole too large".to_owned())?;
                        file.seek(SeekFrom::Current(offset))
                            .map_err(|e| format!("cannot write: {e}"))?;
                        self.bytes.fetch_add(len, Ordering::Relaxed);
                    }
                }
            }
            self.report(false);
        }
        file.set_len(node.size)
            .map_err(|e| format!("cannot set the size: {e}"))
    }

    fn restore_symlink(&self, node: &Node, dest: &Path) {
        let Some(target) = self.target_for(dest) else {
            return;
        };
        let Some(link) = &node.link_target else {
            return self.fail(dest, "the symlink has no target in the catalog");
        };
        if self.conflict == Conflict::Overwrite
            && fs::symlink_metadata(&target).is_ok_and(|m| !m.is_dir())
        {
            let _ = fs::remove_file(&target);
        }
        if let Err(e) = fsmeta::make_symlink(link, &target) {
            return self.fail(dest, format!("cannot create the symlink: {e}"));
        }
        // Some systems report a link made that is not there (Wine's CreateSymbolicLinkW is a
        // stub that says yes): a restore never counts what it did not place.
        if fs::symlink_metadata(&target).is_err() {
            return self.fail(
                dest,
                "the system reported the symlink made, but it is not there (symbolic links \
                 unsupported here?)",
            );
        }
        let _ = fsmeta::apply(&target, NodeKind::Symlink, &node.owner, &node.times);
        self.files.fetch_add(1, Ordering::Relaxed);
    }
}

/// The name a file restored beside an existing `dest` gets: `name (restored).ext`, then
/// `name (restored 2).ext` …; `None` when a thousand are taken.
pub(super) fn keep_both_name(dest: &Path) -> Option<PathBuf> {
    let stem = dest
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = dest
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    (1..1000)
        .map(|n| {
            let suffix = if n == 1 {
                " (restored)".to_owned()
            } else {
                format!(" (restored {n})")
            };
            dest.with_file_name(format!("{stem}{suffix}{ext}"))
        })
        .find(|candidate| fs::symlink_metadata(candidate).is_err())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where one folder cannot hold two names differing only in case, the walker gives the
    /// second its own name before any writer starts; elsewhere names stay as they are.
    #[test]
    fn names_differing_only_in_case_get_their_own_names() {
        let mut taken = std::collections::HashSet::new();
        let placed: Vec<Vec<u8>> = ["report.txt", "Report.txt", "REPORT.txt", "notes", "NOTES"]
            .iter()
            .map(|n| unique_name(n.as_bytes(), &mut taken, true))
            .collect();
        assert_eq!(
            placed,
            [
                &b"report.txt"[..],
                b"Report (2).txt",
                b"REPORT (3).txt",
                b"notes",
                b"NOTES (2)"
            ]
        );
        let mut taken = std::collections::HashSet::new();
        assert_eq!(unique_name(b"Report.txt", &mut taken, false), b"Report.txt");
        assert_eq!(unique_name(b"report.txt", &mut taken, false), b"report.txt");
    }
}
