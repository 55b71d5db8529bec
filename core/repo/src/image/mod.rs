//! Image-level protection's view of a disk: what it holds before any block is read. The
//! layout of a disk (its partition table, MBR or GPT, and each partition's place, type and
//! identity) and what file system each volume carries (ext2/3/4, FAT, NTFS: kind, UUID,
//! label, block size), read from the bytes themselves so that it works on a device, an image
//! file or a restore point's blocks alike, on any OS and without root.
//!
//! `layout` reads partition tables (through `gptman` and `mbrman`), `probe` reads file-system
//! superblocks, `used` reads which blocks a file system uses. Both only read; both treat every byte as hostile (a disk is input a user
//! controls): damaged structures are errors or "unknown", never panics.

pub mod blocks;
pub mod changes;
pub mod consistency;
pub mod devices;
pub mod export;
pub mod ext;
pub mod files;
pub mod grow;
pub mod known;
pub mod layout;
pub mod partial;
pub mod probe;
pub mod record;
pub mod target;
pub mod used;
pub mod window;

pub use layout::{DiskLayout, LayoutError, Partition, PartitionTable, read_layout};
pub use probe::{FileSystem, FsKind, probe};
pub use record::{DiskImage, VolumeRecord};
pub use used::{UsedError, UsedMap, used_map};
pub use window::Window;
