//! Browsing a restore point's catalog without reading file data: resolve a path, list a
//! folder, find entries by name, compare two points. Only tree blobs are read.

use std::path::{Component, Path};

use super::EngineError;
use crate::catalog::{Node, NodeKind};
use crate::repo::{ChunkIndex, Repository, RestorePoint};

use super::fsmeta;

/// The entries of a folder of `point` (`/` or empty for the top).
pub fn list_dir(
    repo: &Repository,
    index: &ChunkIndex,
    point: &RestorePoint,
    path: &str,
) -> Result<Vec<Node>, EngineError> {
    if point.manifest.is_image() {
        return super::volumes::list(repo, index, point, path);
    }
    match resolve(repo, index, point, path)? {
        Resolved::Root => Ok(repo.load_dir(index, &point.manifest.root)?),
        Resolved::Node(node) if node.kind == NodeKind::Dir => {
            Ok(repo.load_dir(index, &node.subtree)?)
        }
        Resolved::Node(node) => Ok(vec![*node]),
    }
}

/// What a path names inside a point.
#[derive(Debug, Clone)]
pub enum Resolved {
    /// The top of the catalog.
    Root,
    /// An entry.
    Node(Box<Node>),
}

/// Finds the entry at `path` (absolute, as backed up: `/home/alice/docs`).
pub fn resolve(
    repo: &Repository,
    index: &ChunkIndex,
    point: &RestorePoint,
    path: &str,
) -> Result<Resolved, EngineError> {
    let mut parts = point.manifest.root.clone();
    let mut found: Option<Node> = None;
    for component in Path::new(path).components() {
        let name = match component {
            Component::Normal(name) => fsmeta::name_bytes(name),
            Component::Prefix(p) => fsmeta::name_bytes(p.as_os_str()),
            Component::RootDir | Component::CurDir => continue,
            Component::ParentDir => {
                return Err(not_found(
                    path,
                    "\"..\" is not allowed in a path inside a restore point",
                ));
            }
        };
        if let Some(node) = &found
            && node.kind != NodeKind::Dir
        {
            return Err(not_found(path, "a part of it is not a folder"));
        }
        let entries = repo.load_dir(index, &parts)?;
        let node = entries
            .into_iter()
            .find(|n| n.name == name)
            .ok_or_else(|| {
                not_found(
                    path,
                    "it is not in this restore point; browse the point to see what it holds",
                )
            })?;
        parts = node.subtree.clone();
        found = Some(node);
    }
    Ok(found.map_or(Resolved::Root, |n| Resolved::Node(Box::new(n))))
}

fn not_found(path: &str, reason: &str) -> EngineError {
    EngineError::Path {
        path: path.into(),
        reason: reason.into(),
    }
}

/// An entry found by [`find`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct Found {
    /// Full path inside the point.
    pub path: String,
    /// What it is.
    pub kind: NodeKind,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
}

/// Every entry of `point` whose name matches the glob `pattern` (e.g. `*.pdf`, `report*`).
pub fn find(
    repo: &Repository,
    index: &ChunkIndex,
    point: &RestorePoint,
    pattern: &str,
) -> Result<Vec<Found>, EngineError> {
    let matcher = globset::Glob::new(pattern)
        .map_err(|e| EngineError::BadExclude {
            pattern: pattern.into(),
            reason: e.kind().to_string(),
        })?
        .compile_matcher();
    if point.manifest.is_image() {
        return super::volumes::find(repo, index, point, &matcher);
    }
    let mut found = Vec::new();
    let mut stack = vec![(String::new(), point.manifest.root.clone())];
    while let Some((prefix, parts)) = stack.pop() {
        for node in repo.load_dir(index, &parts)? {
            let path = format!("{prefix}/{}", node.display_name());
            if matcher.is_match(node.display_name().as_ref()) {
                found.push(Found {
                    path: path.clone(),
                    kind: node.kind,
                    size: node.size,
                    mtime_ns: node.times.mtime_ns,
                });
            }
            if node.kind == NodeKind::Dir {
                stack.push((path, node.subtree));
            }
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

/// How an entry differs between two points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Only in the newer point.
    Added,
    /// Only in the older point.
    Removed,
    /// In both, with other content or metadata.
    Changed,
}

/// One difference found by [`diff`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// Path inside the points.
    pub path: String,
    /// What changed.
    pub kind: ChangeKind,
}

/// The differences from point `a` to point `b`. Folders whose listings are identical (same
/// tree ids) are skipped without being read.
pub fn diff(
    repo: &Repository,
    index: &ChunkIndex,
    a: &RestorePoint,
    b: &RestorePoint,
) -> Result<Vec<Change>, EngineError> {
    let mut changes = Vec::new();
    let mut stack = vec![(
        String::new(),
        a.manifest.root.clone(),
        b.manifest.root.clone(),
    )];
    while let Some((prefix, left, right)) = stack.pop() {
        if left == right {
            continue;
        }
        let old = repo.load_dir(index, &left)?;
        let new = repo.load_dir(index, &right)?;
        let old_by: std::collections::BTreeMap<&[u8], &Node> =
            old.iter().map(|n| (n.name.as_slice(), n)).collect();
        let new_by: std::collections::BTreeMap<&[u8], &Node> =
            new.iter().map(|n| (n.name.as_slice(), n)).collect();
        for (name, o) in &old_by {
            let path = format!("{prefix}/{}", String::from_utf8_lossy(name));
            match new_by.get(name) {
                None => changes.push(Change {
                    path,
                    kind: ChangeKind::Removed,
                }),
                Some(n) if o.kind == NodeKind::Dir && n.kind == NodeKind::Dir => {
                    stack.push((path, o.subtree.clone(), n.subtree.clone()));
                }
                Some(n) if *o != *n => changes.push(Change {
                    path,
                    kind: ChangeKind::Changed,
                }),
                Some(_) => {}
            }
        }
        for name in new_by.keys().filter(|name| !old_by.contains_key(*name)) {
            let path = format!("{prefix}/{}", String::from_utf8_lossy(name));
            changes.push(Change {
                path,
                kind: ChangeKind::Added,
            });
        }
    }
    changes.sort_by(|x, y| x.path.cmp(&y.path));
    Ok(changes)
}
