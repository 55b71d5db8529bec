//! Image-level points read back: a point's disk found by name, its bytes as a stream of
//! blocks (fetched a batch at a time with merged span reads) or as a `Read + Seek` with a
//! small cache (for file-system readers), and the restore of a whole disk or one volume onto
//! a device or an image file.
//!
//! A restore writes every stored block, and zeros where the point holds a hole inside what
//! the file system used (or outside any volume); free space is left as the target has it. An
//! image file is created fresh (sparse: holes cost nothing) under a temporary name and put in
//! place when complete (`image::partial`). A whole disk restored onto a
//! larger one gets its partition table moved to the new end and its last partition grown.
//! **Invariant:** nothing is written before the target has been checked (not mounted, large
//! enough, a device that exists); the faces ask for the person's confirmation before that.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use super::{Cancel, EngineError, Progress, browse};
use crate::catalog::{Extent, Node, NodeKind};
use crate::crypto::ChunkId;
use crate::image::{self, DiskImage, blocks::IMAGE_BLOCK};
use crate::repo::{ChunkIndex, Repository, RestorePoint};

/// Blocks fetched together while streaming a disk.
const BATCH_BLOCKS: usize = 32;
/// Blocks a random-access reader keeps.
const CACHE_BLOCKS: usize = 64;

fn image_error(message: impl Into<String>) -> EngineError {
    EngineError::Image(message.into())
}

/// The disk of `point` named `which` (its name as listed, `sda`, or its path, `/dev/sda`);
/// with `which` empty, the point's only disk.
pub fn find_disk<'p>(point: &'p RestorePoint, which: &str) -> Result<&'p DiskImage, EngineError> {
    let disks = &point.manifest.disks;
    if disks.is_empty() {
        return Err(image_error(format!(
            "restore point {} is a file-level point: it holds files, not disks; restore files from it instead",
            point.short_id()
        )));
    }
    let names = || {
        disks
            .iter()
            .map(|d| d.name().to_owned())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if which.is_empty() {
        return match disks.as_slice() {
            [one] => Ok(one),
            _ => Err(image_error(format!(
                "restore point {} holds several disks ({}); name one",
                point.short_id(),
                names()
            ))),
        };
    }
    disks
        .iter()
        .find(|d| d.path == which || d.name() == which)
        .ok_or_else(|| {
            image_error(format!(
                "restore point {} holds no disk \"{which}\"; it holds {}",
                point.short_id(),
                names()
            ))
        })
}

/// The byte range of volume `number` on `disk`.
pub fn volume_range(disk: &DiskImage, number: u32) -> Result<(Range<u64>, usize), EngineError> {
    disk.layout
        .partitions
        .iter()
        .position(|p| p.number == number)
        .map(|i| {
            let p = &disk.layout.partitions[i];
            (p.start..p.start + p.size, i)
        })
        .ok_or_else(|| {
            let have: Vec<String> = disk
                .layout
                .partitions
                .iter()
                .map(|p| p.number.to_string())
                .collect();
            image_error(format!(
                "disk {} has no volume {number}; its volumes are {}",
                disk.name(),
                if have.is_empty() {
                    "none".into()
                } else {
                    have.join(", ")
                }
            ))
        })
}

/// The file node holding `disk`'s bytes.
pub fn disk_node(
    repo: &Repository,
    index: &ChunkIndex,
    point: &RestorePoint,
    disk: &DiskImage,
) -> Result<Node, EngineError> {
    match browse::resolve(repo, index, point, &disk.path)? {
        browse::Resolved::Node(node) if node.kind == NodeKind::File => Ok(*node),
        _ => Err(image_error(format!(
            "restore point {} names disk {} but does not hold its bytes; the point is damaged",
            point.short_id(),
            disk.path
        ))),
    }
}

/// One extent placed on the disk.
#[derive(Clone)]
struct Placed {
    offset: u64,
    len: u64,
    id: Option<ChunkId>,
}

fn place(node: &Node) -> Vec<Placed> {
    let mut at = 0u64;
    node.content
        .iter()
        .map(|e| {
            let (len, id) = match e {
                Extent::Data { id, len } => (u64::from(*len), Some(*id)),
                Extent::Hole { len } => (*len, None),
            };
            let p = Placed {
                offset: at,
                len,
                id,
            };
            at += len;
            p
        })
        .collect()
}

/// A piece of a disk as streamed: its place, and its bytes (`None`: zeros, a hole).
pub struct Piece {
    /// Byte offset on the disk.
    pub offset: u64,
    /// Bytes.
    pub len: u64,
    /// The bytes, or `None` for a hole.
    pub data: Option<Arc<Vec<u8>>>,
}

/// Streams the pieces of `node` that overlap `range`, in order; `each` gets every piece
/// (clipped to the range) and may stop the stream with an error. Data is fetched a batch of
/// [`BATCH_BLOCKS`] blocks at a time (merged span reads, blobs opened in parallel) on a
/// thread of its own, the next batch while `each` writes this one: memory holds two batches.
pub fn stream(
    repo: &Repository,
    index: &ChunkIndex,
    node: &Node,
    range: Range<u64>,
    cancel: &Cancel,
    each: &mut dyn FnMut(Piece) -> Result<(), EngineError>,
) -> Result<(), EngineError> {
    let placed: Vec<Placed> = place(node)
        .into_iter()
        .filter(|p| p.offset + p.len > range.start && p.offset < range.end)
        .collect();
    // Batches hold BATCH_BLOCKS blocks of data however many holes lie between them.
    let mut batches: Vec<&[Placed]> = Vec::new();
    let (mut from, mut data) = (0, 0);
    for (i, p) in placed.iter().enumerate() {
        data += usize::from(p.id.is_some());
        if data == BATCH_BLOCKS || i + 1 == placed.len() {
            batches.push(&placed[from..=i]);
            (from, data) = (i + 1, 0);
        }
    }
    let (send, receive) = std::sync::mpsc::sync_channel::<Result<Vec<Piece>, EngineError>>(1);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            for batch in batches {
                if cancel.is_cancelled() {
                    let _ = send.send(Err(EngineError::Cancelled));
                    return;
                }
                let pieces = fetch_batch(repo, index, batch, &range);
                let failed = pieces.is_err();
                if send.send(pieces).is_err() || failed {
                    return;
                }
            }
        });
        // Dropping the receiver (on an error below) ends the fetching thread.
        for pieces in receive {
            for piece in pieces? {
                each(piece)?;
            }
        }
        Ok(())
    })
}

/// The pieces of one batch, their data fetched and checked.
fn fetch_batch(
    repo: &Repository,
    index: &ChunkIndex,
    batch: &[Placed],
    range: &Range<u64>,
) -> Result<Vec<Piece>, EngineError> {
    let ids: Vec<ChunkId> = batch.iter().filter_map(|p| p.id).collect();
    let mut fetched: HashMap<ChunkId, Arc<Vec<u8>>> = HashMap::new();
    for (id, bytes) in repo.read_blobs(index, &ids) {
        let bytes = bytes.map_err(|e| {
            image_error(format!(
                "a block cannot be read: {e}; run a health check of the repository"
            ))
        })?;
        fetched.insert(id, Arc::new(bytes));
    }
    let mut pieces = Vec::with_capacity(batch.len());
    for p in batch {
        let data = match p.id {
            None => None,
            Some(id) => {
                // The same block may appear twice (identical blocks): shared, not copied.
                let bytes = fetched.get(&id).cloned().ok_or_else(|| {
                    image_error(format!(
                        "the block at byte {} was not fetched; run a health check",
                        p.offset
                    ))
                })?;
                if bytes.len() as u64 != p.len {
                    return Err(image_error(format!(
                        "the block at byte {} has the wrong length; run a health check",
                        p.offset
                    )));
                }
                Some(bytes)
            }
        };
        let start = p.offset.max(range.start);
        let end = (p.offset + p.len).min(range.end);
        let data = data.map(|d| {
            if start == p.offset && end == p.offset + p.len {
                d
            } else {
                Arc::new(d[(start - p.offset) as usize..(end - p.offset) as usize].to_vec())
            }
        });
        pieces.push(Piece {
            offset: start,
            len: end - start,
            data,
        });
    }
    Ok(pieces)
}

/// A point's disk as `Read + Seek`: blocks fetched when first read, the last
/// [`CACHE_BLOCKS`] kept. What file-system readers (allocation maps, file browsing) read; it
/// borrows nothing, so a reader may keep it.
pub struct PointDisk {
    blobs: crate::repo::BlobSource,
    placed: Arc<Vec<Placed>>,
    size: u64,
    pos: u64,
    cache: HashMap<ChunkId, Arc<Vec<u8>>>,
    order: VecDeque<ChunkId>,
}

impl PointDisk {
    /// The disk held by `node`.
    pub fn new(repo: &Repository, index: &ChunkIndex, node: &Node) -> Self {
        Self {
            blobs: repo.blob_source(index),
            placed: Arc::new(place(node)),
            size: node.size,
            pos: 0,
            cache: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn block(&mut self, id: ChunkId) -> io::Result<Arc<Vec<u8>>> {
        if let Some(b) = self.cache.get(&id) {
            return Ok(b.clone());
        }
        let bytes = self
            .blobs
            .read(&id)
            .map_err(|e| io::Error::other(e.to_string()))?;
        let bytes = Arc::new(bytes);
        if self.order.len() >= CACHE_BLOCKS
            && let Some(old) = self.order.pop_front()
        {
            self.cache.remove(&old);
        }
        self.order.push_back(id);
        self.cache.insert(id, bytes.clone());
        Ok(bytes)
    }
}

impl Read for PointDisk {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let i = self
            .placed
            .partition_point(|p| p.offset + p.len <= self.pos);
        let Some(p) = self.placed.get(i).cloned() else {
            return Ok(0);
        };
        let within = self.pos - p.offset;
        let n = usize::try_from((p.len - within).min(buf.len() as u64)).unwrap_or(buf.len());
        match p.id {
            None => buf[..n].fill(0),
            Some(id) => {
                let block = self.block(id)?;
                let from = within as usize;
                let src = block.get(from..from + n).ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        "a block is shorter than recorded",
                    )
                })?;
                buf[..n].copy_from_slice(src);
            }
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for PointDisk {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let target = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        }
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        self.pos = target;
        Ok(target)
    }
}

/// What to restore: a whole disk of a point, or one of its volumes.
#[derive(Debug, Clone)]
pub struct ImageRestore {
    /// The disk (name or path; empty: the point's only disk).
    pub disk: String,
    /// One volume's number, or `None` for the whole disk.
    pub volume: Option<u32>,
    /// A whole disk's output format (a volume is written raw).
    pub format: image::export::Format,
}

/// The outcome of an image-level restore.
#[derive(Debug, Clone, Default)]
pub struct ImageRestoreReport {
    /// Bytes the restore covered (the disk's or the volume's size).
    pub size: u64,
    /// Bytes of data written.
    pub written: u64,
    /// Bytes of zeros written (holes inside used space, on a device).
    pub zeroed: u64,
    /// What else was done (a partition grown).
    pub notes: Vec<String>,
}

/// Restores a disk or a volume of `point` onto `target` (a device or an image file).
pub fn restore_image(
    repo: &Repository,
    point: &RestorePoint,
    what: &ImageRestore,
    target: &Path,
    cancel: &Cancel,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Result<ImageRestoreReport, EngineError> {
    let disk = find_disk(point, &what.disk)?;
    let (range, partition) = match what.volume {
        Some(n) => {
            let (r, i) = volume_range(disk, n)?;
            (r, Some(i))
        }
        None => (0..disk.layout.size, None),
    };
    let need = range.end - range.start;
    let found = image::target::inspect(target).map_err(|e| image_error(e.to_string()))?;
    found.check(need).map_err(|e| image_error(e.to_string()))?;

    let _lock = crate::lock::acquire(repo.backend(), crate::lock::LockKind::Shared)?;
    let index = repo.load_readable_index()?;
    let node = disk_node(repo, &index, point, disk)?;
    // A device, or an image file a loop device is attached to, is written in place; any
    // other image file whole or not at all (`image::partial`).
    let in_place = found.is_device || !image::devices::volumes_on(target).is_empty();
    // Where zeros must be written in place: holes inside what a file system used, and
    // anywhere outside a volume. Read from the point's own blocks (its bitmaps).
    let must_zero = if in_place {
        Some(zero_map(repo, &index, &node, disk, partition)?)
    } else {
        None
    };
    let path_error = |e: io::Error| EngineError::Path {
        path: target.to_path_buf(),
        reason: format!("cannot write: {e}"),
    };
    let (partial, out) = if in_place {
        (None, File::options().write(true).open(target))
    } else {
        // A fresh image file: its holes are zeros and cost nothing.
        match image::partial::Partial::create(target) {
            Ok((partial, file)) => (Some(partial), Ok(file)),
            Err(e) => (None, Err(e)),
        }
    };
    let mut out = out.map_err(path_error)?;
    let dest = partial.as_ref().map_or(target, |p| p.path());
    if !found.is_device {
        // A larger image file already there stays larger (the disk grows into it).
        out.set_len(need.max(found.size)).map_err(path_error)?;
    }
    let mut report = ImageRestoreReport {
        size: need,
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let zeros = vec![0u8; IMAGE_BLOCK as usize];
    let mut behind = image::partial::WriteBehind::new(&out);
    stream(repo, &index, &node, range.clone(), cancel, &mut |piece| {
        let at = piece.offset - range.start;
        match &piece.data {
            Some(bytes) => {
                out.seek(SeekFrom::Start(at)).map_err(path_error)?;
                out.write_all(bytes).map_err(path_error)?;
                report.written += piece.len;
                behind.wrote(piece.len);
            }
            None => {
                if let Some(map) = &must_zero {
                    for r in overlaps(map, piece.offset..piece.offset + piece.len) {
                        let mut left = r.end - r.start;
                        out.seek(SeekFrom::Start(r.start - range.start))
                            .map_err(path_error)?;
                        while left > 0 {
                            let n = left.min(zeros.len() as u64) as usize;
                            out.write_all(&zeros[..n]).map_err(path_error)?;
                            left -= n as u64;
                        }
                        report.zeroed += r.end - r.start;
                        behind.wrote(r.end - r.start);
                    }
                }
            }
        }
        progress(&Progress {
            files: 0,
            dirs: 0,
            bytes: at + piece.len,
            bytes_read: report.written,
            stored_bytes: 0,
            elapsed_ms: started.elapsed().as_millis() as u64,
            expected_bytes: Some(need),
        });
        Ok(())
    })?;
    out.sync_all().map_err(path_error)?;
    if what.volume.is_none() {
        let mut rw = File::options()
            .read(true)
            .write(true)
            .open(dest)
            .map_err(path_error)?;
        if let Some(note) = image::grow::grow_last_partition(&mut rw, &disk.layout)
            .map_err(|e| image_error(format!("the disk was restored, but {e}")))?
        {
            report.notes.push(note);
        }
        rw.sync_all().map_err(path_error)?;
    }
    if let Some(partial) = partial {
        partial.commit().map_err(path_error)?;
    }
    Ok(report)
}

/// Sorted ranges (disk offsets) where a device restore must write zeros for a hole: inside
/// each volume, what its file system uses (all of it when unknown); outside volumes, the
/// places of the partition tables.
fn zero_map(
    repo: &Repository,
    index: &ChunkIndex,
    node: &Node,
    disk: &DiskImage,
    only: Option<usize>,
) -> Result<Vec<Range<u64>>, EngineError> {
    let mut reader = PointDisk::new(repo, index, node);
    let mut out = Vec::new();
    for region in image::blocks::regions(&disk.layout) {
        if let Some(i) = only
            && region.partition != Some(i)
        {
            continue;
        }
        let end = region.start + region.len;
        let fs = region
            .partition
            .and_then(|i| disk.layout.partitions[i].filesystem.as_ref());
        let used = match fs {
            Some(fs) => {
                image::used_map(&mut reader, region.start, region.len, fs).map_err(|e| {
                    image_error(format!("the point's volume at byte {}: {e}", region.start))
                })?
            }
            None => None,
        };
        match used {
            Some(map) => out.extend(
                map.ranges
                    .iter()
                    .map(|r| region.start + r.start..(region.start + r.end).min(end)),
            ),
            // A volume whose file system is unknown: every hole may matter.
            None if region.partition.is_some() => out.push(region.start..end),
            // Outside the volumes only the partition tables' places matter (the first and the
            // last MiB: MBR, GPT and its backup); a stale table left there would confuse the
            // OS, old bytes elsewhere in a gap do not.
            None => {
                let table_areas = [
                    0..IMAGE_BLOCK,
                    disk.layout.size.saturating_sub(IMAGE_BLOCK)..disk.layout.size,
                ];
                for area in table_areas {
                    let (s, e) = (region.start.max(area.start), end.min(area.end));
                    if s < e {
                        out.push(s..e);
                    }
                }
            }
        }
    }
    out.sort_by_key(|r| r.start);
    // Merged, so that a lookup by end finds every range (the two table areas of a small disk
    // overlap).
    let mut merged: Vec<Range<u64>> = Vec::with_capacity(out.len());
    for r in out {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    Ok(merged)
}

/// The parts of sorted `map` inside `span`.
fn overlaps(map: &[Range<u64>], span: Range<u64>) -> Vec<Range<u64>> {
    let first = map.partition_point(|r| r.end <= span.start);
    map[first..]
        .iter()
        .take_while(|r| r.start < span.end)
        .map(|r| r.start.max(span.start)..r.end.min(span.end))
        .filter(|r| r.start < r.end)
        .collect()
}

/// Refuses a device as the target of a disk format other than raw (those are files).
pub fn check_format_target(
    format: image::export::Format,
    target: &image::target::Target,
) -> Result<(), EngineError> {
    if target.is_device && format != image::export::Format::Raw {
        return Err(image_error(format!(
            "a {format} disk is written to a file, not onto a device; name a file such as disk.{}",
            format.as_str().trim_end_matches("-fixed")
        )));
    }
    Ok(())
}

/// Writes a whole disk of `point` to the file `to` in `format` (raw goes through
/// [`restore_image`], which also writes devices): streamed block by block, sparse where the
/// format allows.
pub fn export_disk(
    repo: &Repository,
    point: &RestorePoint,
    disk: &str,
    format: image::export::Format,
    to: &Path,
    cancel: &Cancel,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Result<ImageRestoreReport, EngineError> {
    if format == image::export::Format::Raw {
        let what = ImageRestore {
            disk: disk.to_owned(),
            volume: None,
            format,
        };
        return restore_image(repo, point, &what, to, cancel, progress);
    }
    let found_disk = find_disk(point, disk)?;
    let found = image::target::inspect(to).map_err(|e| image_error(e.to_string()))?;
    check_format_target(format, &found)?;
    found.check(0).map_err(|e| image_error(e.to_string()))?;
    let _lock = crate::lock::acquire(repo.backend(), crate::lock::LockKind::Shared)?;
    let index = repo.load_readable_index()?;
    let node = disk_node(repo, &index, point, found_disk)?;
    let size = found_disk.layout.size;
    let path_error = |e: io::Error| EngineError::Path {
        path: to.to_path_buf(),
        reason: format!("cannot write: {e}"),
    };
    let (partial, out) = image::partial::Partial::create(to).map_err(path_error)?;
    let name = to
        .file_name()
        .map_or_else(|| "disk".into(), |n| n.to_string_lossy().into_owned());
    let mut behind = image::partial::WriteBehind::new(&out);
    let mut writer = image::export::writer(format, out, size, &name).map_err(path_error)?;
    let mut report = ImageRestoreReport {
        size,
        ..Default::default()
    };
    let started = std::time::Instant::now();
    stream(repo, &index, &node, 0..size, cancel, &mut |piece| {
        if let Some(bytes) = &piece.data {
            writer.write(piece.offset, bytes).map_err(path_error)?;
            report.written += piece.len;
            behind.wrote(piece.len);
        }
        progress(&Progress {
            files: 0,
            dirs: 0,
            bytes: piece.offset + piece.len,
            bytes_read: report.written,
            stored_bytes: 0,
            elapsed_ms: started.elapsed().as_millis() as u64,
            expected_bytes: Some(size),
        });
        Ok(())
    })?;
    writer.finish().map_err(path_error)?;
    partial.commit().map_err(path_error)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlaps_clip_to_the_span() {
        let map = vec![0..10, 20..30, 40..50];
        assert_eq!(overlaps(&map, 5..25), vec![5..10, 20..25]);
        assert_eq!(overlaps(&map, 30..40), Vec::<Range<u64>>::new());
        assert_eq!(overlaps(&map, 45..100), vec![45..50]);
    }
}
