//! A restore point's tree as numbered entries (inodes), its folders listed only when first
//! looked into: what a file system serving the point answers `lookup`, `getattr` and
//! `readdir` from. A file-level point's folders are read from their tree parts; an image-level
//! point's virtual tree (disk, volume, path) through the engine's browser. Entries are never
//! forgotten while the point is published (a tree of a million entries holds a million small
//! records, the catalog's own size). An image-level point also shows each disk and each
//! volume as a raw image file (`sda.raw`, `sda1.raw`, owner-read-only) beside their folders.

use std::sync::{Arc, Mutex};

use cloudkeep_repo::catalog::{Node, NodeKind};
use cloudkeep_repo::engine::{EngineError, browse, disk, volumes};
use cloudkeep_repo::repo::{ChunkIndex, Repository, RestorePoint};

use crate::content::Content;
use crate::volumes::{VolumeSource, Volumes};

/// The root entry's number (FUSE's).
pub const ROOT: u64 = 1;

/// Why a folder could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// No entry with that number.
    #[error("no such entry")]
    NoEntry,
    /// The catalog could not be read.
    #[error("{0}")]
    Catalog(String),
}

/// A folder's entries: (name, number), in the catalog's order.
pub type Children = Arc<Vec<(Vec<u8>, u64)>>;

struct Item {
    node: Node,
    /// Its path in the point ("/home/alice"), for the image browser.
    path: String,
    /// Its entries, (name, number), once listed.
    children: Option<Children>,
    content: Option<Arc<Content>>,
}

/// A point's entries.
pub struct Tree {
    repo: Repository,
    index: ChunkIndex,
    point: RestorePoint,
    items: Mutex<Vec<Item>>,
    /// Who owns the raw images (uid, gid): the person publishing.
    owner: (u32, u32),
    /// The volumes' files, kept open (image-level points, once served).
    volumes: Option<Volumes>,
}

impl Tree {
    /// The tree of `point`, nothing listed yet.
    pub fn new(repo: Repository, index: ChunkIndex, point: RestorePoint) -> Self {
        let mut root = Node::new(Vec::new(), NodeKind::Dir);
        root.owner.mode = 0o040755;
        root.times.mtime_ns = point.time_ns;
        root.times.atime_ns = point.time_ns;
        root.times.ctime_ns = point.time_ns;
        let items = Mutex::new(vec![Item {
            node: root,
            path: "/".into(),
            children: None,
            content: None,
        }]);
        Self {
            repo,
            index,
            point,
            items,
            owner: (0, 0),
            volumes: None,
        }
    }

    /// The point published.
    pub fn point(&self) -> &RestorePoint {
        &self.point
    }

    /// Each volume of an image-level point with its bytes (none for a file-level point).
    pub fn volume_sources(&self) -> Result<Vec<VolumeSource>, TreeError> {
        let mut out = Vec::new();
        for disk in &self.point.manifest.disks {
            let whole = self
                .disk_content(disk)
                .map_err(|e| TreeError::Catalog(e.to_string()))?;
            for p in &disk.layout.partitions {
                out.push(VolumeSource {
                    disk: disk.name().to_owned(),
                    name: volumes::volume_name(disk, p),
                    kind: p.filesystem.as_ref().map(|f| f.kind),
                    content: whole.window(p.start, p.size),
                });
            }
        }
        Ok(out)
    }

    /// Lists and reads the volumes' files through `volumes` from now on.
    pub fn serve_volumes(&mut self, volumes: Volumes) {
        self.volumes = Some(volumes);
    }

    /// The volumes' reader, once served.
    pub fn volumes(&self) -> Option<&Volumes> {
        self.volumes.as_ref()
    }

    /// Entry `ino`'s path when it is inside a volume of an image-level point (its bytes are
    /// read through the volume's file system, not the catalog).
    pub fn volume_path(&self, ino: u64) -> Option<String> {
        if !self.point.manifest.is_image() {
            return None;
        }
        let path = self.with(ino, |i| i.path.clone()).ok()?;
        (path.split('/').filter(|c| !c.is_empty()).count() > 2).then_some(path)
    }

    fn disk_content(
        &self,
        disk: &cloudkeep_repo::image::DiskImage,
    ) -> Result<Content, EngineError> {
        Ok(Content::new(
            &disk::disk_node(&self.repo, &self.index, &self.point, disk)?.content,
        ))
    }

    /// Makes `uid`/`gid` the owner of the raw images (whole disks are theirs alone to read).
    pub fn set_owner(&mut self, uid: u32, gid: u32) {
        self.owner = (uid, gid);
    }

    /// The repository (for its blobs).
    pub fn repo(&self) -> &Repository {
        &self.repo
    }

    /// The index the tree reads through.
    pub fn index(&self) -> &ChunkIndex {
        &self.index
    }

    /// Entry `ino`'s node.
    pub fn node(&self, ino: u64) -> Result<Node, TreeError> {
        self.with(ino, |i| i.node.clone())
    }

    fn with<T>(&self, ino: u64, f: impl FnOnce(&mut Item) -> T) -> Result<T, TreeError> {
        let mut items = self.items.lock().map_err(|_| TreeError::NoEntry)?;
        let at = usize::try_from(ino.checked_sub(1).ok_or(TreeError::NoEntry)?)
            .map_err(|_| TreeError::NoEntry)?;
        items.get_mut(at).map(f).ok_or(TreeError::NoEntry)
    }

    /// Entry `ino`'s content (files).
    pub fn content(&self, ino: u64) -> Result<Arc<Content>, TreeError> {
        if let Some(c) = self.with(ino, |i| i.content.clone())? {
            return Ok(c);
        }
        let c = Arc::new(Content::new(&self.node(ino)?.content));
        self.with(ino, |i| i.content = Some(c.clone()))?;
        Ok(c)
    }

    /// The entries of folder `ino`, (name, number), listed on first use.
    pub fn children(&self, ino: u64) -> Result<Children, TreeError> {
        let (node, path, listed) = self.with(ino, |i| {
            (i.node.clone(), i.path.clone(), i.children.clone())
        })?;
        if let Some(c) = listed {
            return Ok(c);
        }
        if node.kind != NodeKind::Dir {
            return Ok(Arc::new(Vec::new()));
        }
        let bad = |e: String| TreeError::Catalog(e);
        let depth = path.split('/').filter(|c| !c.is_empty()).count();
        let nodes = if let (Some(v), true) = (&self.volumes, depth >= 2) {
            v.list(&path).map_err(bad)?
        } else if self.point.manifest.is_image() {
            browse::list_dir(&self.repo, &self.index, &self.point, &path)
                .map_err(|e| bad(e.to_string()))?
        } else if ino == ROOT {
            self.repo
                .load_dir(&self.index, &self.point.manifest.root)
                .map_err(|e| bad(e.to_string()))?
        } else {
            self.repo
                .load_dir(&self.index, &node.subtree)
                .map_err(|e| bad(e.to_string()))?
        };
        let raw = if self.point.manifest.is_image() {
            self.raw_images(&path).map_err(|e| bad(e.to_string()))?
        } else {
            Vec::new()
        };
        let mut items = self.items.lock().map_err(|_| TreeError::NoEntry)?;
        let at = usize::try_from(ino - 1).map_err(|_| TreeError::NoEntry)?;
        // Listed by another reader meanwhile: that listing stands.
        if let Some(c) = items.get(at).and_then(|i| i.children.clone()) {
            return Ok(c);
        }
        let mut children = Vec::with_capacity(nodes.len());
        for child in nodes {
            let name = child.name.clone();
            let child_path = if path == "/" {
                format!("/{}", child.display_name())
            } else {
                format!("{path}/{}", child.display_name())
            };
            items.push(Item {
                node: child,
                path: child_path,
                children: None,
                content: None,
            });
            children.push((name, items.len() as u64));
        }
        for (node, content) in raw {
            let name = node.name.clone();
            items.push(Item {
                path: format!("{path}/{}", node.display_name()),
                node,
                children: None,
                content: Some(Arc::new(content)),
            });
            children.push((name, items.len() as u64));
        }
        let children = Arc::new(children);
        if let Some(item) = items.get_mut(at) {
            item.children = Some(children.clone());
        }
        Ok(children)
    }

    /// The raw images an image-level point's folder holds beside its folders: at the top,
    /// each disk whole (`sda.raw`); in a disk's folder, each of its volumes (`sda1.raw`).
    fn raw_images(&self, path: &str) -> Result<Vec<(Node, Content)>, EngineError> {
        let depth = path.split('/').filter(|c| !c.is_empty()).count();
        if depth > 1 {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for disk in &self.point.manifest.disks {
            if depth == 1 && path.trim_start_matches('/') != disk.name() {
                continue;
            }
            let whole = self.disk_content(disk)?;
            let raw = |name: String, content: &Content| {
                let mut node = Node::new(format!("{name}.raw").into_bytes(), NodeKind::File);
                node.size = content.size();
                node.owner.mode = 0o100400;
                (node.owner.uid, node.owner.gid) = self.owner;
                node.times.mtime_ns = self.point.time_ns;
                node.times.atime_ns = self.point.time_ns;
                node.times.ctime_ns = self.point.time_ns;
                node
            };
            if depth == 0 {
                out.push((raw(disk.name().to_owned(), &whole), whole));
                continue;
            }
            for p in &disk.layout.partitions {
                let window = whole.window(p.start, p.size);
                out.push((raw(volumes::volume_name(disk, p), &window), window));
            }
        }
        Ok(out)
    }

    /// The entry named `name` in folder `parent`.
    pub fn lookup(&self, parent: u64, name: &[u8]) -> Result<Option<u64>, TreeError> {
        Ok(self
            .children(parent)?
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, ino)| *ino))
    }
}
