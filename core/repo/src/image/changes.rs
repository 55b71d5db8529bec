//! Which blocks of an ext4 volume cannot have changed since its last image, so that an
//! incremental image need not read them (there is no change-tracking driver to ask).
//!
//! Every inode in use is read from the inode tables (the bitmaps say which) and each regular
//! file gets a **stamp**: a hash of its inode record (mode, size, change and modification
//! times to the nanosecond, flags, generation, the extent tree's root) and of its extent tree's
//! other nodes — everything but the access time and the checksum. Writing a file changes its
//! change time (the kernel sets it; no user can set it back), moving its blocks changes its
//! extents (`e4defrag` leaves the times alone), so a file whose stamp is what the last image
//! recorded holds, in the same blocks, what that image read. An image block whose used parts
//! all lie in such files' data extents and extent-tree blocks, and in no other inode's, is
//! taken from the last image unread (`Unchanged::covers`); everything else — directories, extent and inode tables,
//! bitmaps, the journal, hidden inodes (quota, orphan file), files the kernel may write without
//! a new change time — is read every time.
//!
//! What keeps it exact:
//! - stamps are compared only with those of the same volume (UUID and place) made by the run's
//!   parent point, from a file sealed with the repository's key (`known`);
//! - only a volume held still (unmounted, frozen after a sync, or a snapshot) is scanned: a
//!   live one may have on-disk inodes older than its data blocks;
//! - a file changed within `RECENT_NS` of the scan is not recorded as clean: the kernel's
//!   timestamps are coarse (a jiffy, or a second on 128-byte inodes), so a write just after
//!   the thaw could carry the same change time as one just before the freeze;
//! - every count and block number is checked, the extent-tree walk is bounded: a damaged or
//!   hostile file system turns tracking off (`None`), never into a wrong skip or a panic.

use std::io::{Read, Seek};
use std::ops::Range;

use xxhash_rust::xxh3::Xxh3;

use super::ext::{Geometry, read_exact_at, u16_at, u32_at};
use super::used::UsedError;

/// Inode number and stamp of each trackable regular file, ascending by inode.
pub type Stamps = Vec<(u32, u64)>;

/// A file changed this close to the scan (nanoseconds) is not recorded as clean.
pub const RECENT_NS: i64 = 2_000_000_000;

const INCOMPAT_EXTENTS: u64 = 0x40;
const RO_COMPAT_GDT_CSUM: u64 = 0x10;
const RO_COMPAT_BIGALLOC: u64 = 0x200;
const RO_COMPAT_METADATA_CSUM: u64 = 0x400;
const EXTENTS_FL: u64 = 0x0008_0000;
const EA_INODE_FL: u64 = 0x0020_0000;
const INLINE_DATA_FL: u64 = 0x1000_0000;
const EXTENT_MAGIC: u64 = 0xF30A;
/// The deepest extent tree ext4 makes.
const MAX_DEPTH: u64 = 5;

/// The regular files of an ext4 volume and the blocks of every inode read.
#[derive(Debug, Default)]
pub struct ExtFiles {
    /// The file system's UUID.
    pub uuid: [u8; 16],
    /// Every trackable regular file's stamp.
    pub stamps: Stamps,
    /// Stamps changed too recently to be trusted next time are left out of this copy.
    pub stamps_to_keep: Stamps,
    /// The data extents and extent-tree blocks of trackable files (bytes from the volume's
    /// start), by inode.
    files: Vec<(u32, Range<u64>)>,
    /// The extents of every other inode whose blocks could be read.
    others: Vec<Range<u64>>,
}

/// The parts of a volume that hold what the last image held (bytes from its start).
#[derive(Debug, Default)]
pub struct Unchanged {
    clean: Vec<Range<u64>>,
    dirty: Vec<Range<u64>>,
}

impl Unchanged {
    /// Whether `part` lies wholly in unchanged files' data and in nothing else.
    pub fn covers(&self, part: &Range<u64>) -> bool {
        if part.start >= part.end {
            return true;
        }
        let i = self.clean.partition_point(|r| r.end <= part.start);
        let inside = self
            .clean
            .get(i)
            .is_some_and(|r| r.start <= part.start && part.end <= r.end);
        let j = self.dirty.partition_point(|r| r.end <= part.start);
        let touched = self.dirty.get(j).is_some_and(|r| r.start < part.end);
        inside && !touched
    }

    /// Bytes of unchanged file data.
    pub fn bytes(&self) -> u64 {
        self.clean.iter().map(|r| r.end - r.start).sum()
    }
}

impl ExtFiles {
    /// The data of files whose stamp is the one in `previous`.
    pub fn unchanged(&self, previous: &[(u32, u64)]) -> Unchanged {
        let same = |ino: u32| -> bool {
            let mine = self.stamps.binary_search_by_key(&ino, |s| s.0).ok();
            let theirs = previous.binary_search_by_key(&ino, |s| s.0).ok();
            match (mine, theirs) {
                (Some(a), Some(b)) => self.stamps[a].1 == previous[b].1,
                _ => false,
            }
        };
        let mut clean = Vec::new();
        let mut dirty = self.others.clone();
        for (ino, range) in &self.files {
            if same(*ino) {
                clean.push(range.clone());
            } else {
                dirty.push(range.clone());
            }
        }
        Unchanged {
            clean: merged(clean),
            dirty: merged(dirty),
        }
    }
}

fn merged(mut ranges: Vec<Range<u64>>) -> Vec<Range<u64>> {
    ranges.sort_unstable_by_key(|r| r.start);
    let mut out: Vec<Range<u64>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if last.end >= r.start => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// Reads the files of the ext4 volume at `offset` (of `size` bytes) of `v`, scanned at `now_ns`
/// (Unix nanoseconds). `None` when this volume cannot be tracked: no extents (ext2/3),
/// bigalloc, or structures too damaged or too large to trust.
pub fn scan(
    v: &mut (impl Read + Seek),
    offset: u64,
    size: u64,
    now_ns: i64,
) -> Result<Option<ExtFiles>, UsedError> {
    let geo = Geometry::read(v, offset, size)?;
    let (incompat, ro_compat) = (geo.sb_u32(0x60), geo.sb_u32(0x64));
    if incompat & INCOMPAT_EXTENTS == 0 || ro_compat & RO_COMPAT_BIGALLOC != 0 {
        return Ok(None);
    }
    let checksummed = ro_compat & (RO_COMPAT_GDT_CSUM | RO_COMPAT_METADATA_CSUM) != 0;
    let first_ino = if geo.sb_u32(0x4C) == 0 {
        11
    } else {
        geo.sb_u32(0x54)
    };
    // Inodes the file system writes without a new change time.
    let hidden: Vec<u64> = [0xE0, 0x240, 0x244, 0x26C, 0x280]
        .iter()
        .map(|&at| geo.sb_u32(at))
        .filter(|&n| n != 0)
        .collect();
    let mut files = ExtFiles::default();
    files.uuid.copy_from_slice(&geo.sb[0x68..0x78]);
    let mut walk = Walk {
        v,
        geo: &geo,
        offset,
        // At most one node read per eight blocks of the volume: far more than any real tree.
        budget: (geo.blocks / 8).max(1 << 16),
    };
    let inode_size = usize::try_from(geo.inode_size).unwrap_or(256);
    let mut bitmap = vec![0u8; usize::try_from(geo.block).unwrap_or(4096)];
    let mut table = Vec::new();
    for (g, group) in geo.groups.iter().enumerate() {
        if group.inode_uninit() {
            continue;
        }
        let written = if checksummed {
            geo.inodes_per_group.saturating_sub(group.itable_unused)
        } else {
            geo.inodes_per_group
        };
        if written == 0 {
            continue;
        }
        read_exact_at(walk.v, offset + group.inode_bitmap * geo.block, &mut bitmap)?;
        let bytes = usize::try_from(written * geo.inode_size).unwrap_or(usize::MAX);
        table.resize(bytes, 0);
        read_exact_at(walk.v, offset + group.inode_table * geo.block, &mut table)?;
        for (i, rec) in table.chunks_exact(inode_size).enumerate() {
            if bitmap.get(i / 8).is_none_or(|b| b & (1 << (i % 8)) == 0) {
                continue;
            }
            let ino = g as u64 * geo.inodes_per_group + i as u64 + 1;
            let Ok(ino32) = u32::try_from(ino) else {
                return Ok(None);
            };
            let flags = u32_at(rec, 0x20);
            let regular = u16_at(rec, 0) & 0xF000 == 0x8000;
            let trackable = regular
                && ino >= first_ino
                && !hidden.contains(&ino)
                && flags & EA_INODE_FL == 0
                && (flags & (EXTENTS_FL | INLINE_DATA_FL)) != 0;
            let mut hash = Xxh3::new();
            let extents = if flags & EXTENTS_FL != 0 && flags & INLINE_DATA_FL == 0 {
                match walk.tree(&rec[0x28..0x64], None, &mut hash) {
                    Ok(extents) => Some(extents),
                    Err(Stop::Damaged) => None,
                    Err(Stop::Budget) => return Ok(None),
                    Err(Stop::Io(e)) => return Err(e),
                }
            } else {
                Some(Vec::new())
            };
            match extents {
                Some(extents) if trackable => {
                    let stamp = stamp(rec, geo.inode_size, hash);
                    files.stamps.push((ino32, stamp));
                    if !recent(rec, geo.inode_size, now_ns) {
                        files.stamps_to_keep.push((ino32, stamp));
                    }
                    files.files.extend(extents.into_iter().map(|r| (ino32, r)));
                }
                Some(extents) => files.others.extend(extents),
                None => {}
            }
        }
    }
    Ok(Some(files))
}

/// Why an extent tree walk stopped.
enum Stop {
    /// This inode's tree is damaged: its blocks are not known.
    Damaged,
    /// More nodes than any real file system has: tracking is off for the volume.
    Budget,
    Io(UsedError),
}

struct Walk<'a, R> {
    v: &'a mut R,
    geo: &'a Geometry,
    offset: u64,
    budget: u64,
}

impl<R: Read + Seek> Walk<'_, R> {
    /// The data extents and the blocks of the child nodes (bytes from the volume's start) of
    /// the tree whose node is `node`, of depth `depth` when it is a child; every child node's
    /// bytes go into `hash`.
    fn tree(
        &mut self,
        node: &[u8],
        depth: Option<u64>,
        hash: &mut Xxh3,
    ) -> Result<Vec<Range<u64>>, Stop> {
        if node.len() < 12 || u16_at(node, 0) != EXTENT_MAGIC {
            return Err(Stop::Damaged);
        }
        let (entries, max, level) = (u16_at(node, 2), u16_at(node, 4), u16_at(node, 6));
        if entries > max
            || 12 + 12 * max > node.len() as u64
            || level > MAX_DEPTH
            || depth.is_some_and(|d| d != level)
        {
            return Err(Stop::Damaged);
        }
        let block = self.geo.block;
        let mut out = Vec::new();
        for e in 0..usize::try_from(entries).unwrap_or(0) {
            let at = 12 + 12 * e;
            if level == 0 {
                let raw = u16_at(node, at + 4);
                // Lengths past 32768 mark unwritten (preallocated) extents.
                let len = if raw > 32768 { raw - 32768 } else { raw };
                let start = (u16_at(node, at + 6) << 32) | u32_at(node, at + 8);
                if len == 0 || start.saturating_add(len) > self.geo.blocks {
                    return Err(Stop::Damaged);
                }
                out.push(start * block..(start + len) * block);
            } else {
                let child = (u16_at(node, at + 8) << 32) | u32_at(node, at + 4);
                if child >= self.geo.blocks {
                    return Err(Stop::Damaged);
                }
                if self.budget == 0 {
                    return Err(Stop::Budget);
                }
                self.budget -= 1;
                let mut buf = vec![0u8; usize::try_from(block).unwrap_or(4096)];
                read_exact_at(self.v, self.offset + child * block, &mut buf).map_err(Stop::Io)?;
                hash.update(&buf);
                // The node's own block: as unchanged as the stamp its bytes are part of.
                out.push(child * block..(child + 1) * block);
                out.extend(self.tree(&buf, Some(level - 1), hash)?);
            }
        }
        Ok(out)
    }
}

/// The stamp of inode record `rec`: every field but the access time and the checksums, and
/// (in `tree`) the extent tree's other nodes.
fn stamp(rec: &[u8], inode_size: u64, mut tree: Xxh3) -> u64 {
    tree.update(&rec[0x00..0x08]);
    tree.update(&rec[0x0C..0x7C]);
    if let Some(extra) = extra(rec, inode_size, 0x8C) {
        tree.update(&extra[0x84..0x8C]);
    }
    tree.digest()
}

/// The record with its extra fields when they reach `end` (`i_extra_isize` says how far).
fn extra(rec: &[u8], inode_size: u64, end: usize) -> Option<&[u8]> {
    if inode_size <= 128 || rec.len() < end {
        return None;
    }
    (0x80 + usize::try_from(u16_at(rec, 0x80)).ok()? >= end).then_some(rec)
}

/// Whether the inode changed within `RECENT_NS` of `now_ns`, or claims a time after it.
fn recent(rec: &[u8], inode_size: u64, now_ns: i64) -> bool {
    let secs = i64::from(u32_at(rec, 0x0C) as u32 as i32);
    // The extra field's low two bits extend the seconds; the rest are nanoseconds.
    let (epoch, nanos) = extra(rec, inode_size, 0x88)
        .map(|r| (u32_at(r, 0x84) & 0x3, u32_at(r, 0x84) >> 2))
        .unwrap_or((0, 0));
    let ctime = (secs + ((epoch as i64) << 32))
        .saturating_mul(1_000_000_000)
        .saturating_add(nanos as i64);
    ctime > now_ns.saturating_sub(RECENT_NS)
}
