//! The FUSE face of a published point (Linux): `lookup`, `getattr`, `readdir`, `readlink`,
//! `open` and `read` answered from the point's [`Tree`] and its blobs; every write refused
//! (the mount is read-only and so is every answer). The kernel checks permissions against the
//! modes and owners the point recorded (`default_permissions`), so a file only its owner could
//! read stays so when published.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cloudkeep_repo::catalog::{Node, NodeKind};
use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    LockOwner, MountOption, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyEntry, ReplyOpen,
    Request,
};

use std::sync::Arc;

use crate::attach;
use crate::content::BlobCache;
use crate::tree::{Tree, TreeError};
use crate::volumes::Volumes;

/// How long the kernel may keep what it was told: the point never changes.
const TTL: Duration = Duration::from_secs(3600);

/// A point served over FUSE.
pub struct PointFs {
    tree: Tree,
    cache: Arc<BlobCache>,
}

impl PointFs {
    /// Serves `tree`, reading blobs through a cache of `cache_bytes` (shared by the raw
    /// images and the volumes' file systems).
    pub fn new(mut tree: Tree, cache_bytes: usize) -> Result<Self, TreeError> {
        tree.set_owner(
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        );
        let cache = Arc::new(BlobCache::new(
            tree.repo().blob_source(tree.index()),
            cache_bytes,
        ));
        if tree.point().manifest.is_image() {
            let volumes =
                Volumes::start(tree.volume_sources()?, cache.clone(), tree.point().time_ns);
            tree.serve_volumes(volumes);
        }
        Ok(Self { tree, cache })
    }

    fn attr(&self, ino: u64, node: &Node) -> FileAttr {
        let kind = match node.kind {
            NodeKind::File => FileType::RegularFile,
            NodeKind::Dir => FileType::Directory,
            NodeKind::Symlink => FileType::Symlink,
            NodeKind::Fifo => FileType::NamedPipe,
            NodeKind::CharDevice => FileType::CharDevice,
            NodeKind::BlockDevice => FileType::BlockDevice,
            NodeKind::Socket => FileType::Socket,
        };
        let size = match node.kind {
            NodeKind::Symlink => node.link_target.as_ref().map_or(0, |t| t.len() as u64),
            NodeKind::Dir => 0,
            _ => node.size,
        };
        FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: time(node.times.atime_ns),
            mtime: time(node.times.mtime_ns),
            ctime: time(node.times.ctime_ns),
            crtime: time(node.times.mtime_ns),
            kind,
            perm: (node.owner.mode & 0o7777) as u16,
            nlink: if node.kind == NodeKind::Dir { 2 } else { 1 },
            uid: node.owner.uid,
            gid: node.owner.gid,
            rdev: u32::try_from(node.rdev).unwrap_or(0),
            flags: 0,
            blksize: 4096,
        }
    }
}

fn time(ns: i64) -> SystemTime {
    let d = Duration::from_nanos(ns.unsigned_abs());
    if ns >= 0 {
        UNIX_EPOCH + d
    } else {
        UNIX_EPOCH.checked_sub(d).unwrap_or(UNIX_EPOCH)
    }
}

fn file_type(kind: NodeKind) -> FileType {
    match kind {
        NodeKind::Dir => FileType::Directory,
        NodeKind::Symlink => FileType::Symlink,
        NodeKind::File => FileType::RegularFile,
        NodeKind::Fifo => FileType::NamedPipe,
        NodeKind::CharDevice => FileType::CharDevice,
        NodeKind::BlockDevice => FileType::BlockDevice,
        NodeKind::Socket => FileType::Socket,
    }
}

impl Filesystem for PointFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.tree.lookup(parent.0, name.as_bytes()) {
            Ok(Some(ino)) => match self.tree.node(ino) {
                Ok(node) => reply.entry(&TTL, &self.attr(ino, &node), Generation(0)),
                Err(_) => reply.error(Errno::EIO),
            },
            Ok(None) => reply.error(Errno::ENOENT),
            Err(e) => {
                tracing::warn!("listing a folder of the published point: {e}");
                reply.error(Errno::EIO);
            }
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.tree.node(ino.0) {
            Ok(node) => reply.attr(&TTL, &self.attr(ino.0, &node)),
            Err(_) => reply.error(Errno::ENOENT),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.tree.node(ino.0).map(|n| n.link_target) {
            Ok(Some(target)) => reply.data(&target),
            Ok(None) => reply.error(Errno::EINVAL),
            Err(_) => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        // Read-only: any access mode but reading is refused.
        if flags.0 & 0b11 != 0 {
            reply.error(Errno::EROFS);
            return;
        }
        match self.tree.node(ino.0) {
            Ok(_) => reply.opened(FileHandle(0), FopenFlags::FOPEN_KEEP_CACHE),
            Err(_) => reply.error(Errno::ENOENT),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let (node, content) = match (self.tree.node(ino.0), self.tree.content(ino.0)) {
            (Ok(n), Ok(c)) => (n, c),
            _ => return reply.error(Errno::ENOENT),
        };
        let read = match (self.tree.volume_path(ino.0), self.tree.volumes()) {
            // A file inside a volume: read through the volume's file system.
            (Some(path), Some(volumes)) if node.kind == NodeKind::File => {
                volumes.read(&path, offset, size as usize)
            }
            (Some(_), _) => Err("not readable from this publication".to_owned()),
            (None, _) if content.size() != node.size => {
                Err("its size differs from its catalog entry".to_owned())
            }
            (None, _) => content
                .read(&self.cache, offset, size as usize)
                .map_err(|e| e.to_string()),
        };
        match read {
            Ok(bytes) => reply.data(&bytes),
            Err(e) => {
                tracing::warn!("reading {}: {e}", node.display_name());
                reply.error(Errno::EIO);
            }
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let children = match self.tree.children(ino.0) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("listing a folder of the published point: {e}");
                return reply.error(Errno::EIO);
            }
        };
        let mut entries: Vec<(u64, FileType, &[u8])> = vec![
            (ino.0, FileType::Directory, b"."),
            (ino.0, FileType::Directory, b".."),
        ];
        for (name, child) in children.iter() {
            let kind = self
                .tree
                .node(*child)
                .map_or(FileType::RegularFile, |n| file_type(n.kind));
            entries.push((*child, kind, name.as_slice()));
        }
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        for (i, (child, kind, name)) in entries.into_iter().enumerate().skip(skip) {
            if reply.add(
                INodeNo(child),
                (i + 1) as u64,
                kind,
                OsStr::from_bytes(name),
            ) {
                break;
            }
        }
        reply.ok();
    }
}

/// Serves `fs` at `mountpoint` (read-only) on threads of its own until the returned session
/// is dropped or unmounted, or the mount is unmounted from outside (`fusermount3 -u`); `name`
/// shows as the mount's source (`fuse.cloudkeep`). Where the system allows it, the mount also
/// goes away by itself when this process dies (`auto_unmount`: a helper process unmounts it
/// after a `kill -9`); elsewhere `unmount` cleans up after a killed process.
pub fn publish(
    fs: PointFs,
    mountpoint: &Path,
    name: &str,
) -> std::io::Result<fuser::BackgroundSession> {
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::RO,
        MountOption::NoDev,
        MountOption::NoSuid,
        MountOption::NoExec,
        MountOption::DefaultPermissions,
        MountOption::FSName(name.to_owned()),
        MountOption::Subtype("cloudkeep".into()),
    ];
    config.n_threads = Some(4);
    // auto_unmount needs allow_other (root, or user_allow_other in /etc/fuse.conf); fuser
    // still answers only the owner and root.
    let mut auto = config.clone();
    auto.mount_options.push(MountOption::AutoUnmount);
    auto.acl = fuser::SessionACL::RootAndOwner;
    let fs = std::sync::Arc::new(fs);
    match fuser::spawn_mount(Shared(fs.clone()), mountpoint, &auto) {
        Ok(session) => Ok(session),
        Err(e) => {
            tracing::info!("publishing without auto_unmount ({e})");
            fuser::spawn_mount(Shared(fs), mountpoint, &config)
        }
    }
}

/// One file system behind both mount attempts.
struct Shared(std::sync::Arc<PointFs>);

impl Filesystem for Shared {
    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.0.lookup(req, parent, name, reply);
    }

    fn getattr(&self, req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        self.0.getattr(req, ino, fh, reply);
    }

    fn readlink(&self, req: &Request, ino: INodeNo, reply: ReplyData) {
        self.0.readlink(req, ino, reply);
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.0.open(req, ino, flags, reply);
    }

    fn read(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        flags: OpenFlags,
        lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.0
            .read(req, ino, fh, offset, size, flags, lock_owner, reply);
    }

    fn readdir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectory,
    ) {
        self.0.readdir(req, ino, fh, offset, reply);
    }
}

/// Whether a point is published at `folder` (a Cloudkeep mount is there, alive or left by a
/// killed process).
pub fn is_published(folder: &Path) -> bool {
    attach::mounts().is_ok_and(|table| {
        table
            .iter()
            .any(|m| m.at == folder.as_os_str().as_bytes() && m.fstype == "fuse.cloudkeep")
    })
}

/// Unpublishes the point at `mountpoint`: only a Cloudkeep mount (`fuse.cloudkeep` in the
/// mount table) is touched. Volumes attached below it are unmounted and detached first; the
/// point is unmounted at once when its process is alive, lazily when the process was killed
/// (the mount then answers "transport endpoint is not connected").
pub fn unpublish(mountpoint: &Path) -> Result<(), String> {
    let wanted = std::fs::canonicalize(mountpoint).unwrap_or_else(|_| mountpoint.to_path_buf());
    if !is_published(&wanted) {
        // Nothing is touched: whatever is mounted there or below is not ours to undo.
        return Err(format!(
            "{} is not a published restore point (no Cloudkeep mount there); nothing was unmounted",
            mountpoint.display()
        ));
    }
    let problems = attach::detach_below(&wanted);
    let at = wanted.as_os_str();
    if attach::run("fusermount3", &[OsStr::new("-u"), at])
        || attach::run("fusermount3", &[OsStr::new("-u"), OsStr::new("-z"), at])
        || attach::run("umount", &[OsStr::new("-l"), at])
    {
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!("unpublished, but {}", problems.join("; ")))
        }
    } else {
        Err(format!(
            "{} could not be unmounted; close what is using it and try again",
            mountpoint.display()
        ))
    }
}
