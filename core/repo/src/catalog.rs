//! The file catalog of a restore point: a tree of directories, each stored as one or more
//! content-addressed **tree blobs**. A directory that did not change between two backups
//! encodes to the same bytes, so it is stored once; listing a folder loads one blob per path
//! component, which keeps browsing a 1,000,000-file restore point interactive.
//!
//! A tree blob (layout frozen, `docs/formats.md`) is `"CKTR" ‖ version ‖ postcard(TreePart)`.
//! Large directories are split into parts of at most [`MAX_PART_ENTRIES`] entries, in name
//! order; a directory node lists its parts' ids.
//!
//! Decoding treats the bytes as hostile even after authentication (a bug or an old version
//! may have written them): names must be single, non-empty path components in strictly
//! increasing order, so a restore can never be steered outside its target folder.

use serde::{Deserialize, Serialize};

use crate::crypto::ChunkId;

/// Magic of a tree blob.
pub const TREE_MAGIC: &[u8; 4] = b"CKTR";
/// Tree blob version.
pub const TREE_VERSION: u8 = 1;
/// Most entries in one tree part.
pub const MAX_PART_ENTRIES: usize = 4096;
/// Longest name accepted (bytes); file systems allow 255.
pub const MAX_NAME_LEN: usize = 1024;

/// Errors of decoding a tree blob.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The blob is not a tree of a version this build reads, or breaks a rule.
    #[error(
        "a folder listing of the catalog is damaged: {reason}; run verify to see which restore points it affects"
    )]
    Corrupt {
        /// What is wrong.
        reason: String,
    },
}

fn corrupt(reason: impl Into<String>) -> CatalogError {
    CatalogError::Corrupt {
        reason: reason.into(),
    }
}

/// What a catalog entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A named pipe.
    Fifo,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A Unix socket (recorded, not restorable as such).
    Socket,
}

/// A piece of a file's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Extent {
    /// Data: a chunk and its plaintext length.
    Data {
        /// The chunk.
        id: ChunkId,
        /// Its length.
        len: u32,
    },
    /// A run of zeros that was a hole in a sparse file (or a zero disk block).
    Hole {
        /// Its length.
        len: u64,
    },
}

impl Extent {
    /// Bytes this extent covers.
    pub fn len(&self) -> u64 {
        match *self {
            Self::Data { len, .. } => u64::from(len),
            Self::Hole { len } => len,
        }
    }

    /// True for a zero-length extent (never written).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Times in nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Times {
    /// Last modification.
    pub mtime_ns: i64,
    /// Last access.
    pub atime_ns: i64,
    /// Last status change (informational; cannot be restored).
    pub ctime_ns: i64,
}

/// Owner and permissions.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Owner {
    /// Permission bits and file type bits as the OS reports them (bits 0–15, as Unix has
    /// them). On Windows bits 16–31 hold the file attributes kept (see
    /// [`Owner::windows_attributes`]); Unix never sets them.
    pub mode: u32,
    /// Numeric user id.
    pub uid: u32,
    /// Numeric group id.
    pub gid: u32,
    /// User name, when known: preferred over `uid` on restore to another machine.
    pub user: Option<String>,
    /// Group name, when known.
    pub group: Option<String>,
}

/// Where a Windows entry's file attributes sit in [`Owner::mode`].
const WINDOWS_ATTRIBUTE_SHIFT: u32 = 16;

impl Owner {
    /// The Windows file attributes recorded with the entry (`FILE_ATTRIBUTE_*`: read-only,
    /// hidden, system, …); 0 for an entry backed up elsewhere.
    pub fn windows_attributes(&self) -> u32 {
        self.mode >> WINDOWS_ATTRIBUTE_SHIFT
    }

    /// A mode carrying Unix-style bits and Windows attributes (the low 16 bits of each).
    pub fn with_windows_attributes(mode: u32, attributes: u32) -> u32 {
        (mode & 0xffff) | ((attributes & 0xffff) << WINDOWS_ATTRIBUTE_SHIFT)
    }
}

/// Identity of a file on its file system: matches unchanged files between backups and
/// ties hard links together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct FileId {
    /// Device.
    pub dev: u64,
    /// Inode (or Windows file index).
    pub ino: u64,
    /// Number of hard links.
    pub nlink: u64,
}

/// One entry of a directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Name: one path component, raw bytes (Unix) or WTF-8 (Windows).
    pub name: Vec<u8>,
    /// What it is.
    pub kind: NodeKind,
    /// Size in bytes (files: content length).
    pub size: u64,
    /// Owner and mode.
    pub owner: Owner,
    /// Times.
    pub times: Times,
    /// File-system identity.
    pub file_id: FileId,
    /// Files: the content, in order; extents add up to `size`.
    pub content: Vec<Extent>,
    /// Symlinks: the target, raw bytes.
    pub link_target: Option<Vec<u8>>,
    /// Devices: the device number.
    pub rdev: u64,
    /// Directories: the tree parts of its entries, in name order.
    pub subtree: Vec<ChunkId>,
}

impl Node {
    /// A node with defaults for everything but name and kind.
    pub fn new(name: impl Into<Vec<u8>>, kind: NodeKind) -> Self {
        Self {
            name: name.into(),
            kind,
            size: 0,
            owner: Owner::default(),
            times: Times::default(),
            file_id: FileId::default(),
            content: Vec::new(),
            link_target: None,
            rdev: 0,
            subtree: Vec::new(),
        }
    }

    /// The name for display (lossy on invalid UTF-8).
    pub fn display_name(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.name)
    }
}

/// One tree blob's worth of a directory's entries.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TreePart {
    /// Entries in strictly increasing name order.
    pub nodes: Vec<Node>,
}

/// Checks that `name` is one safe path component.
pub fn check_name(name: &[u8]) -> Result<(), CatalogError> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(corrupt(format!("a name of {} bytes", name.len())));
    }
    if name == b"." || name == b".." {
        return Err(corrupt(
            "a name that points at a folder itself or its parent",
        ));
    }
    if name
        .iter()
        .any(|&b| b == b'/' || b == 0 || (cfg!(windows) && b == b'\\'))
    {
        return Err(corrupt(format!(
            "the name {:?} contains a path separator or NUL",
            String::from_utf8_lossy(name)
        )));
    }
    Ok(())
}

fn check_node(node: &Node) -> Result<(), CatalogError> {
    check_name(&node.name)?;
    let name = node.display_name();
    match node.kind {
        NodeKind::File => {
            let total = node
                .content
                .iter()
                .try_fold(0u64, |acc, e| acc.checked_add(e.len()))
                .ok_or_else(|| corrupt(format!("{name}: content length overflows")))?;
            if total != node.size {
                return Err(corrupt(format!(
                    "{name}: content adds up to {total}, size says {}",
                    node.size
                )));
            }
        }
        NodeKind::Dir => {}
        NodeKind::Symlink if node.link_target.is_none() => {
            return Err(corrupt(format!("{name}: a symlink without target")));
        }
        _ => {}
    }
    if node.kind != NodeKind::File && !node.content.is_empty() {
        return Err(corrupt(format!(
            "{name}: content on something that is not a file"
        )));
    }
    if node.kind != NodeKind::Dir && !node.subtree.is_empty() {
        return Err(corrupt(format!(
            "{name}: a subtree on something that is not a folder"
        )));
    }
    Ok(())
}

/// Splits a directory's entries (any order) into encoded tree parts. Duplicate names are a
/// caller bug and refused.
pub fn encode_dir(mut nodes: Vec<Node>) -> Result<Vec<Vec<u8>>, CatalogError> {
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    if nodes.windows(2).any(|w| w[0].name == w[1].name) {
        return Err(corrupt("two entries with the same name in one folder"));
    }
    for node in &nodes {
        check_node(node)?;
    }
    let mut parts = Vec::new();
    let mut rest = nodes.as_slice();
    loop {
        let (head, tail) = rest.split_at(rest.len().min(MAX_PART_ENTRIES));
        parts.push(encode_part(head)?);
        rest = tail;
        if rest.is_empty() {
            break;
        }
    }
    Ok(parts)
}

fn encode_part(nodes: &[Node]) -> Result<Vec<u8>, CatalogError> {
    #[derive(Serialize)]
    struct Borrowed<'a> {
        nodes: &'a [Node],
    }
    let mut out = Vec::with_capacity(64 + nodes.len() * 96);
    out.extend_from_slice(TREE_MAGIC);
    out.push(TREE_VERSION);
    postcard::to_io(&Borrowed { nodes }, &mut out)
        .map_err(|e| corrupt(format!("cannot encode a folder listing: {e}")))?;
    Ok(out)
}

/// Decodes and checks one tree part.
pub fn decode_part(bytes: &[u8]) -> Result<TreePart, CatalogError> {
    let body = bytes
        .strip_prefix(TREE_MAGIC.as_slice())
        .ok_or_else(|| corrupt("it does not start with the tree magic"))?;
    let (&version, body) = body
        .split_first()
        .ok_or_else(|| corrupt("it stops after the magic"))?;
    if version != TREE_VERSION {
        return Err(corrupt(format!(
            "tree version {version} is not one this Cloudkeep reads (it reads {TREE_VERSION}); update Cloudkeep"
        )));
    }
    let (part, rest): (TreePart, &[u8]) =
        postcard::take_from_bytes(body).map_err(|e| corrupt(format!("cannot decode it: {e}")))?;
    if !rest.is_empty() {
        return Err(corrupt("bytes after the listing"));
    }
    if part.nodes.len() > MAX_PART_ENTRIES {
        return Err(corrupt("too many entries in one part"));
    }
    for node in &part.nodes {
        check_node(node)?;
    }
    if part.nodes.windows(2).any(|w| w[0].name >= w[1].name) {
        return Err(corrupt("entries are not in strictly increasing name order"));
    }
    Ok(part)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn file(name: &str, size: u64) -> Node {
        let mut node = Node::new(name, NodeKind::File);
        node.size = size;
        if size > 0 {
            node.content = vec![Extent::Data {
                id: ChunkId([1; 32]),
                len: size as u32,
            }];
        }
        node
    }

    #[test]
    fn a_folder_round_trips_sorted() {
        let mut link = Node::new("link", NodeKind::Symlink);
        link.link_target = Some(b"../target".to_vec());
        let mut sparse = Node::new("disk.img", NodeKind::File);
        sparse.size = 10 + (1 << 30);
        sparse.content = vec![
            Extent::Data {
                id: ChunkId([2; 32]),
                len: 10,
            },
            Extent::Hole { len: 1 << 30 },
        ];
        let mut dir = Node::new("sub", NodeKind::Dir);
        dir.subtree = vec![ChunkId([3; 32])];
        let nodes = vec![file("b.txt", 5), link, sparse, dir, file("a.txt", 0)];
        let parts = encode_dir(nodes).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(&parts[0][..4], TREE_MAGIC);
        let part = decode_part(&parts[0]).unwrap();
        let names: Vec<_> = part
            .nodes
            .iter()
            .map(|n| n.display_name().into_owned())
            .collect();
        assert_eq!(names, ["a.txt", "b.txt", "disk.img", "link", "sub"]);
        assert_eq!(part.nodes[2].content[1], Extent::Hole { len: 1 << 30 });
    }

    #[test]
    fn the_same_folder_encodes_to_the_same_bytes() {
        let a = encode_dir(vec![file("x", 1), file("y", 2)]).unwrap();
        let b = encode_dir(vec![file("y", 2), file("x", 1)]).unwrap();
        assert_eq!(a, b, "order of discovery does not matter: dedup works");
    }

    #[test]
    fn large_folders_split_into_ordered_parts() {
        let nodes: Vec<Node> = (0..10_000).map(|i| file(&format!("f{i:05}"), 0)).collect();
        let parts = encode_dir(nodes).unwrap();
        assert_eq!(parts.len(), 3);
        let decoded: Vec<Node> = parts
            .iter()
            .flat_map(|p| decode_part(p).unwrap().nodes)
            .collect();
        assert_eq!(decoded.len(), 10_000);
        assert!(decoded.windows(2).all(|w| w[0].name < w[1].name));
        assert_eq!(
            encode_dir(vec![]).unwrap().len(),
            1,
            "an empty folder is one empty part"
        );
    }

    #[test]
    fn escaping_names_are_refused() {
        for bad in [&b".."[..], b".", b"a/b", b"", b"nul\0"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
            let mut node = file("ok", 0);
            node.name = bad.to_vec();
            let part = TreePart { nodes: vec![node] };
            let mut bytes = TREE_MAGIC.to_vec();
            bytes.push(TREE_VERSION);
            bytes.extend(postcard::to_stdvec(&part).unwrap());
            assert!(decode_part(&bytes).is_err(), "{bad:?} must not decode");
        }
    }

    #[test]
    fn inconsistent_nodes_are_refused() {
        let mut wrong_size = file("a", 10);
        wrong_size.size = 11;
        assert!(encode_dir(vec![wrong_size]).is_err());
        let mut dangling = Node::new("l", NodeKind::Symlink);
        dangling.link_target = None;
        assert!(encode_dir(vec![dangling]).is_err());
        assert!(encode_dir(vec![file("same", 0), file("same", 0)]).is_err());
        let mut future = encode_dir(vec![file("a", 0)]).unwrap().remove(0);
        future[4] = 9;
        let err = decode_part(&future).unwrap_err();
        assert!(err.to_string().contains("update Cloudkeep"), "{err}");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut bytes = TREE_MAGIC.to_vec();
            bytes.push(TREE_VERSION);
            bytes.extend(body);
            let _ = decode_part(&bytes);
        }

        #[test]
        fn round_trip(names in proptest::collection::btree_set("[a-zA-Z0-9 ._-]{1,20}", 0..50)) {
            let names: Vec<String> = names.into_iter().filter(|n| n != "." && n != "..").collect();
            let nodes: Vec<Node> = names.iter().map(|n| file(n, 3)).collect();
            let parts = encode_dir(nodes.clone()).unwrap();
            let back: Vec<Node> = parts.iter().flat_map(|p| decode_part(p).unwrap().nodes).collect();
            prop_assert_eq!(back, nodes);
        }
    }
}
