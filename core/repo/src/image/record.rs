//! What a restore point records of each disk it imaged: where it came from, its layout
//! (partition table, every partition's place, type, identity and file system), and for each
//! volume how much of it was in use and how it was held while read. The disk's bytes are a
//! file node of the point's tree at `path`; this record is what lists, restores and exports
//! read without fetching a block.

use serde::{Deserialize, Serialize};

use super::layout::DiskLayout;

/// One imaged disk (or volume imaged on its own: a layout without a table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskImage {
    /// The device or image file as backed up (`/dev/sda`); its bytes are the tree's file
    /// node at this path.
    pub path: String,
    /// Its layout when it was read.
    pub layout: DiskLayout,
    /// One per partition of the layout, in the same order.
    pub volumes: Vec<VolumeRecord>,
}

/// How one volume was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRecord {
    /// The partition's number in the layout.
    pub number: u32,
    /// Bytes its file system had in use (`None`: its allocation was not known and every
    /// block was read).
    pub used: Option<u64>,
    /// How it was held: frozen, a snapshot, read as it is.
    pub how: String,
}

impl DiskImage {
    /// A name for the disk as people see it (`sda`, `loop0`, `disk.img`).
    pub fn name(&self) -> &str {
        self.path
            .rsplit(['/', '\\'])
            .find(|s| !s.is_empty())
            .unwrap_or(&self.path)
    }
}
