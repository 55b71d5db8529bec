//! Browsing a restore point's catalog without reading file data: resolve a path, list a
//! folder. Each step loads only the tree blobs of the folders on the path.

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
