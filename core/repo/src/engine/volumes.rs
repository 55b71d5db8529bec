//! The files inside the volumes of an image-level point, in the same tree, search and file
//! restore as a file-level point's: the top lists the point's disks, a disk its volumes
//! (`sda1`, `loop0p2`; a disk without a table is its own volume), and a volume its files as
//! its file system holds them (`image::files`, read from the point's blocks — no volume is
//! restored and no root is needed). Paths read `/sda/sda1/home/alice/report.odt`.
//!
//! A file-system reader is third-party code over bytes a user controls: `image::files` guards
//! every call into one, so a panic there is "the volume cannot be read", never a crash.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::browse::Found;
use super::disk::{PointDisk, disk_node};
use super::restore::{
    Conflict, Destination, Placed, RestoreOptions, RestoreReport, keep_both_name,
};
use super::{EngineError, Progress, Warning, fsmeta};
use crate::catalog::{Node, NodeKind, Owner, Times};
use crate::image::files::{self, Entry, EntryKind, VolumeFiles};
use crate::image::{DiskImage, Partition, PartitionTable, Window};
use crate::repo::{ChunkIndex, Repository, RestorePoint};

fn image_error(message: impl Into<String>) -> EngineError {
    EngineError::Image(message.into())
}

/// The name of a volume of `disk` in the tree: the OS's partition name (`sda1`, `nvme0n1p1`),
/// or the disk's own name when it has no partition table.
pub fn volume_name(disk: &DiskImage, part: &Partition) -> String {
    let base = disk.name();
    if disk.layout.table == PartitionTable::None {
        return base.to_owned();
    }
    if base.ends_with(|c: char| c.is_ascii_digit()) {
        format!("{base}p{}", part.number)
    } else {
        format!("{base}{}", part.number)
    }
}

/// A path inside an image-level point, split.
struct Split<'p> {
    disk: Option<&'p DiskImage>,
    volume: Option<&'p Partition>,
    rest: Vec<Vec<u8>>,
}

fn split<'p>(point: &'p RestorePoint, path: &str) -> Result<Split<'p>, EngineError> {
    let parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    if parts.contains(&"..") {
        return Err(image_error(
            "\"..\" is not allowed in a path inside a restore point",
        ));
    }
    let mut out = Split {
        disk: None,
        volume: None,
        rest: Vec::new(),
    };
    let Some(first) = parts.first() else {
        return Ok(out);
    };
    let disk = point
        .manifest
        .disks
        .iter()
        .find(|d| d.name() == *first)
        .ok_or_else(|| {
            image_error(format!(
                "restore point {} holds no disk \"{first}\"",
                point.short_id()
            ))
        })?;
    out.disk = Some(disk);
    let Some(second) = parts.get(1) else {
        return Ok(out);
    };
    let volume = disk
        .layout
        .partitions
        .iter()
        .find(|p| volume_name(disk, p) == *second)
        .ok_or_else(|| image_error(format!("disk {} has no volume \"{second}\"", disk.name())))?;
    out.volume = Some(volume);
    out.rest = parts[2..].iter().map(|c| c.as_bytes().to_vec()).collect();
    Ok(out)
}

/// Runs a call on a volume's files, naming `what` in its error.
fn guarded<T>(
    what: &str,
    f: impl FnOnce() -> Result<T, files::FilesError>,
) -> Result<T, EngineError> {
    f().map_err(|e| image_error(format!("{what}: {e}")))
}

/// Opens the files of `volume` of `disk`.
pub(super) fn open_volume(
    repo: &Repository,
    index: &ChunkIndex,
    point: &RestorePoint,
    disk: &DiskImage,
    volume: &Partition,
) -> Result<Box<dyn VolumeFiles>, EngineError> {
    let name = volume_name(disk, volume);
    let Some(fs) = volume.filesystem.as_ref() else {
        return Err(image_error(format!(
            "volume {name} holds no file system this version can read (ext2/3/4, FAT and NTFS can be browsed); restore the volume instead"
        )));
    };
    let node = disk_node(repo, index, point, disk)?;
    let reader = PointDisk::new(repo, index, &node);
    let window = Window::new(reader, volume.start, volume.size);
    guarded(&format!("volume {name}"), || {
        files::open(fs.kind, Box::new(window))
    })
}

fn dir_node(name: &str, size: u64) -> Node {
    let mut node = Node::new(name.as_bytes().to_vec(), NodeKind::Dir);
    node.size = size;
    node.owner.mode = 0o040755;
    node
}

/// A volume's entry as a catalog node (times it does not keep are the point's).
pub fn entry_node(e: &Entry, point_time_ns: i64) -> Node {
    let kind = match e.kind {
        EntryKind::File => NodeKind::File,
        EntryKind::Dir => NodeKind::Dir,
        EntryKind::Symlink => NodeKind::Symlink,
        EntryKind::Other => NodeKind::Fifo,
    };
    let mut node = Node::new(e.name.clone(), kind);
    node.size = e.size;
    node.owner = Owner {
        mode: e.mode.unwrap_or(match kind {
            NodeKind::Dir => 0o040755,
            _ => 0o100644,
        }),
        uid: e.owner.map_or(0, |o| o.0),
        gid: e.owner.map_or(0, |o| o.1),
        user: None,
        group: None,
    };
    let mtime = e.mtime_ns.unwrap_or(point_time_ns);
    node.times = Times {
        mtime_ns: mtime,
        atime_ns: mtime,
        ctime_ns: mtime,
    };
    node.link_target = e.link.clone();
    node
}

/// The entries of `path` in an image-level point, as catalog nodes.
pub fn list(
    repo: &Repository,
    index: &ChunkIndex,
    point: &RestorePoint,
    path: &str,
) -> Result<Vec<Node>, EngineError> {
    let at = split(point, path)?;
    match (at.disk, at.volume) {
        (None, _) => Ok(point
            .manifest
            .disks
            .iter()
            .map(|d| dir_node(d.name(), d.layout.size))
            .collect()),
        (Some(disk), None) => Ok(disk
            .layout
            .partitions
            .iter()
            .map(|p| dir_node(&volume_name(disk, p), p.size))
            .collect()),
        (Some(disk), Some(volume)) => {
            let mut files = open_volume(repo, index, point, disk, volume)?;
            let entries = guarded(path, || files.list(&at.rest))?;
            Ok(entries
                .iter()
                .map(|e| entry_node(e, point.time_ns))
                .collect())
        }
    }
}

/// Every entry whose name matches `matcher` in every readable volume of the point.
pub fn find(
    repo: &Repository,
    index: &ChunkIndex,
    point: &RestorePoint,
    matcher: &globset::GlobMatcher,
) -> Result<Vec<Found>, EngineError> {
    let mut found = Vec::new();
    for disk in &point.manifest.disks {
        for volume in disk
            .layout
            .partitions
            .iter()
            .filter(|p| p.filesystem.is_some())
        {
            let prefix = format!("/{}/{}", disk.name(), volume_name(disk, volume));
            let Ok(mut files) = open_volume(repo, index, point, disk, volume) else {
                continue;
            };
            let mut stack: Vec<Vec<Vec<u8>>> = vec![Vec::new()];
            while let Some(dir) = stack.pop() {
                let Ok(entries) = guarded(&prefix, || files.list(&dir)) else {
                    continue;
                };
                for e in entries {
                    let mut child = dir.clone();
                    child.push(e.name.clone());
                    let name = String::from_utf8_lossy(&e.name);
                    let path = format!(
                        "{prefix}/{}",
                        child
                            .iter()
                            .map(|c| String::from_utf8_lossy(c).into_owned())
                            .collect::<Vec<_>>()
                            .join("/")
                    );
                    if matcher.is_match(name.as_ref()) {
                        found.push(Found {
                            path,
                            kind: entry_node(&e, point.time_ns).kind,
                            size: e.size,
                            mtime_ns: e.mtime_ns.unwrap_or(point.time_ns),
                        });
                    }
                    if e.kind == EntryKind::Dir {
                        stack.push(child);
                    }
                }
            }
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

/// Restores selected files and folders from inside the volumes of an image-level point into
/// a folder (each selected item placed directly in it).
pub fn restore_files(
    repo: &Repository,
    index: &ChunkIndex,
    point: &RestorePoint,
    options: &RestoreOptions,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Result<RestoreReport, EngineError> {
    let Destination::Folder(folder) = &options.destination else {
        return Err(image_error(
            "files from inside a volume image are restored into a folder: choose one (their original place is the volume itself; restore the volume to put it back)",
        ));
    };
    let mut walk = Walk {
        report: RestoreReport::default(),
        conflict: options.conflict,
        cancel: &options.cancel,
        started: std::time::Instant::now(),
        progress,
        point_time_ns: point.time_ns,
    };
    for selection in &options.paths {
        let at = split(point, selection)?;
        let (Some(disk), Some(volume)) = (at.disk, at.volume) else {
            return Err(image_error(format!(
                "\"{selection}\" is a disk or the list of disks: choose files or folders inside a volume, or restore the volume or disk itself"
            )));
        };
        let mut files = open_volume(repo, index, point, disk, volume)?;
        fs::create_dir_all(folder).map_err(|e| EngineError::Path {
            path: folder.clone(),
            reason: format!("cannot create the destination folder: {e}"),
        })?;
        // The selected entry itself, found in its folder's listing (the volume's root when
        // the selection is the volume).
        let entry = match at.rest.split_last() {
            None => Entry {
                name: volume_name(disk, volume).into_bytes(),
                kind: EntryKind::Dir,
                size: 0,
                mode: None,
                owner: None,
                mtime_ns: None,
                link: None,
            },
            Some((last, parent)) => guarded(selection, || files.list(parent))?
                .into_iter()
                .find(|e| e.name == *last)
                .ok_or_else(|| {
                    image_error(format!("\"{selection}\" is not in this restore point"))
                })?,
        };
        let dest = folder.join(fsmeta::dest_component(&entry.name));
        let Some(dest) = walk.target(&dest, entry.kind == EntryKind::Dir) else {
            continue;
        };
        walk.report.placed.push(Placed {
            from: selection.clone(),
            to: dest.clone(),
            folder: entry.kind == EntryKind::Dir,
        });
        walk.entry(files.as_mut(), &at.rest, &entry, &dest)?;
    }
    Ok(walk.report)
}

struct Walk<'a> {
    report: RestoreReport,
    conflict: Conflict,
    cancel: &'a super::Cancel,
    started: std::time::Instant,
    progress: &'a (dyn Fn(&Progress) + Sync),
    point_time_ns: i64,
}

impl Walk<'_> {
    /// Where an entry goes given the conflict rule; `None`: skipped.
    fn target(&mut self, dest: &Path, is_dir: bool) -> Option<PathBuf> {
        match fs::symlink_metadata(dest) {
            Err(_) => Some(dest.to_path_buf()),
            // Folders merge.
            Ok(m) if is_dir && m.is_dir() => Some(dest.to_path_buf()),
            Ok(_) => match self.conflict {
                Conflict::Overwrite => Some(dest.to_path_buf()),
                Conflict::Skip => {
                    self.report.skipped.push(Warning {
                        path: dest.to_path_buf(),
                        message: "it already exists (conflict rule: skip)".into(),
                    });
                    None
                }
                Conflict::KeepBoth => keep_both_name(dest),
            },
        }
    }

    fn fail(&mut self, path: &Path, message: String) {
        self.report.failed.push(Warning {
            path: path.to_path_buf(),
            message,
        });
    }

    fn entry(
        &mut self,
        files: &mut dyn VolumeFiles,
        at: &[Vec<u8>],
        entry: &Entry,
        dest: &Path,
    ) -> Result<(), EngineError> {
        if self.cancel.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        let node = entry_node(entry, self.point_time_ns);
        match entry.kind {
            EntryKind::Dir => {
                if let Err(e) = fs::create_dir_all(dest) {
                    self.fail(dest, format!("cannot create the folder: {e}"));
                    return Ok(());
                }
                let children =
                    match guarded(&String::from_utf8_lossy(&at.concat()), || files.list(at)) {
                        Ok(c) => c,
                        Err(e) => {
                            self.fail(dest, e.to_string());
                            return Ok(());
                        }
                    };
                for child in children {
                    let mut path = at.to_vec();
                    path.push(child.name.clone());
                    let child_dest = dest.join(fsmeta::dest_component(&child.name));
                    if let Some(target) = self.target(&child_dest, child.kind == EntryKind::Dir) {
                        self.entry(files, &path, &child, &target)?;
                    }
                }
                self.report.dirs += 1;
            }
            EntryKind::File => {
                let tmp = dest.with_file_name(format!(
                    ".{}.cloudkeep-restore",
                    dest.file_name()
                        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
                ));
                let written = fs::File::create(&tmp)
                    .map_err(|e| e.to_string())
                    .and_then(|mut out| {
                        let n =
                            guarded("", || files.copy(at, &mut out)).map_err(|e| e.to_string())?;
                        out.flush()
                            .and_then(|()| out.sync_all())
                            .map_err(|e| e.to_string())?;
                        Ok(n)
                    })
                    .and_then(|n| {
                        fsmeta::prepare_replace(dest).ok();
                        fs::rename(&tmp, dest)
                            .map(|()| n)
                            .map_err(|e| e.to_string())
                    });
                match written {
                    Ok(n) => {
                        self.report.files += 1;
                        self.report.bytes += n;
                    }
                    Err(e) => {
                        let _ = fs::remove_file(&tmp);
                        self.fail(dest, format!("cannot restore the file: {e}"));
                        return Ok(());
                    }
                }
            }
            EntryKind::Symlink => {
                let _ = fs::remove_file(dest);
                let link = entry.link.as_deref().unwrap_or_default();
                if let Err(e) = fsmeta::make_symlink(link, dest) {
                    self.fail(dest, format!("cannot create the link: {e}"));
                    return Ok(());
                }
                self.report.files += 1;
            }
            EntryKind::Other => {
                self.report.skipped.push(Warning {
                    path: dest.to_path_buf(),
                    message: "a device, pipe or socket is not restored".into(),
                });
                return Ok(());
            }
        }
        if let Err(e) = fsmeta::apply(dest, node.kind, &node.owner, &node.times) {
            self.fail(dest, e);
        }
        (self.progress)(&Progress {
            files: self.report.files,
            dirs: self.report.dirs,
            bytes: self.report.bytes,
            bytes_read: self.report.bytes,
            stored_bytes: 0,
            elapsed_ms: self.started.elapsed().as_millis() as u64,
            expected_bytes: None,
        });
        Ok(())
    }
}
