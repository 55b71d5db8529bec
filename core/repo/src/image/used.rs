//! Which parts of a volume its file system uses: image-level backups read and store only
//! those (and restores leave the rest as it is). A `UsedMap` is sorted, merged byte ranges
//! relative to the volume's start.
//!
//! ext2/3/4: the block bitmaps of the block groups; a group whose bitmap was never written
//! (`BLOCK_UNINIT`) uses only the metadata placed in it — a superblock and descriptor-table
//! backup where the group has one, and any group's bitmaps and inode table laid out there —
//! which is exactly what e2fsprogs counts. FAT12/16/32: the reserved sectors, the FATs and the
//! root folder region, and every cluster the FAT marks allocated (bad clusters are not read).
//! NTFS: the volume bitmap (`$Bitmap`, file record 6, one bit per cluster) read through the
//! `ntfs` crate, plus the backup boot sector past the last cluster.

use std::io::{Read, Seek};
use std::ops::Range;

use super::ext::{Geometry, Group, read_exact_at, u16_at, u32_at};
use super::probe::{FileSystem, FsKind};

/// Why the allocation of a volume cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum UsedError {
    /// The volume could not be read.
    #[error("cannot read the volume: {0}")]
    Io(#[from] std::io::Error),
    /// The file system's own structures contradict themselves or the volume.
    #[error("the {fs} file system's allocation is damaged: {reason}")]
    Damaged {
        /// Which file system.
        fs: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// The used parts of a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedMap {
    /// Sorted, non-overlapping, non-adjacent byte ranges from the volume's start.
    pub ranges: Vec<Range<u64>>,
}

impl UsedMap {
    /// Bytes in use.
    pub fn bytes(&self) -> u64 {
        self.ranges.iter().map(|r| r.end - r.start).sum()
    }

    /// Adds units `first..end` (blocks, sectors) of `unit` bytes, in ascending order: a run
    /// that meets the last range extends it, so a full volume is one range, not a list of
    /// every block.
    fn push_units(&mut self, first: u64, end: u64, unit: u64) {
        if end <= first {
            return;
        }
        let (start, stop) = (first * unit, end * unit);
        match self.ranges.last_mut() {
            Some(last) if last.end >= start => last.end = last.end.max(stop),
            _ => self.ranges.push(start..stop),
        }
    }
}

/// The used parts of the volume at `offset` (of `size` bytes) holding `fs`; `None` where this
/// code cannot read the file system's allocation (the volume is then read whole).
pub fn used_map(
    volume: &mut (impl Read + Seek),
    offset: u64,
    size: u64,
    fs: &FileSystem,
) -> Result<Option<UsedMap>, UsedError> {
    match fs.kind {
        FsKind::Ext2 | FsKind::Ext3 | FsKind::Ext4 => ext(volume, offset, size).map(Some),
        FsKind::Vfat => fat(volume, offset, size).map(Some),
        FsKind::Ntfs => ntfs(volume, offset, size).map(Some),
    }
}

/// Bytes of the NTFS volume bitmap read at a time.
const NTFS_BITMAP_READ: usize = 64 << 10;

fn ntfs(volume: &mut (impl Read + Seek), offset: u64, size: u64) -> Result<UsedMap, UsedError> {
    use ntfs::{KnownNtfsFileRecordNumber, Ntfs, NtfsReadSeek};
    let bad = |e: ntfs::NtfsError| UsedError::Damaged {
        fs: "NTFS",
        reason: e.to_string(),
    };
    let mut w = super::window::Window::new(volume, offset, size);
    let fs = Ntfs::new(&mut w).map_err(bad)?;
    let cluster = u64::from(fs.cluster_size());
    if cluster == 0 || fs.size() > size {
        return Err(UsedError::Damaged {
            fs: "NTFS",
            reason: "the boot sector claims more than the volume holds".into(),
        });
    }
    let clusters = fs.size() / cluster;
    let file = fs
        .file(&mut w, KnownNtfsFileRecordNumber::Bitmap as u64)
        .map_err(bad)?;
    let item = file
        .data(&mut w, "")
        .ok_or_else(|| UsedError::Damaged {
            fs: "NTFS",
            reason: "the volume bitmap has no data".into(),
        })?
        .map_err(bad)?;
    let attribute = item.to_attribute().map_err(bad)?;
    let mut value = attribute.value(&mut w).map_err(bad)?;
    let mut map = UsedMap { ranges: Vec::new() };
    let mut buf = vec![0u8; NTFS_BITMAP_READ];
    let mut first = 0u64; // cluster of buf[0]'s first bit
    while first < clusters {
        let n = value.read(&mut w, &mut buf).map_err(bad)?;
        if n == 0 {
            break;
        }
        push_bits(&mut map, &buf[..n], first, clusters, cluster);
        first += 8 * n as u64;
    }
    // The backup boot sector lies past the last cluster, in the volume's last sector.
    map.push_units(clusters * cluster, size, 1);
    Ok(map)
}

/// Adds the set bits (least significant first) of `bits`, whose first bit is unit `first`,
/// as used units of `unit` bytes; bits at or past `end` are ignored.
fn push_bits(map: &mut UsedMap, bits: &[u8], first: u64, end: u64, unit: u64) {
    let mut run: Option<u64> = None;
    for (i, &byte) in bits.iter().enumerate() {
        let base = first + 8 * i as u64;
        if base >= end {
            break;
        }
        match (byte, run) {
            (0xFF, Some(_)) | (0, None) => continue,
            _ => {}
        }
        for bit in 0..8 {
            let unit_no = base + bit;
            if unit_no >= end {
                break;
            }
            let set = byte & (1 << bit) != 0;
            match (set, run) {
                (true, None) => run = Some(unit_no),
                (false, Some(start)) => {
                    map.push_units(start, unit_no, unit);
                    run = None;
                }
                _ => {}
            }
        }
    }
    if let Some(start) = run {
        map.push_units(start, (first + 8 * bits.len() as u64).min(end), unit);
    }
}

fn fat_damaged(reason: impl Into<String>) -> UsedError {
    UsedError::Damaged {
        fs: "FAT",
        reason: reason.into(),
    }
}

/// The largest FAT read (a FAT32 of 2 TiB in 32 KiB clusters is 256 MiB).
const MAX_FAT_BYTES: u64 = 256 << 20;

fn fat(v: &mut (impl Read + Seek), offset: u64, size: u64) -> Result<UsedMap, UsedError> {
    let mut boot = [0u8; 512];
    read_exact_at(v, offset, &mut boot).map_err(|_| fat_damaged("no boot sector"))?;
    let bps = u16_at(&boot, 0x0B);
    let spc = u64::from(boot[0x0D]);
    let reserved = u16_at(&boot, 0x0E);
    let fats = u64::from(boot[0x10]);
    let root_entries = u16_at(&boot, 0x11);
    let total = match u16_at(&boot, 0x13) {
        0 => u32_at(&boot, 0x20),
        n => n,
    };
    let fat_sectors = match u16_at(&boot, 0x16) {
        0 => u32_at(&boot, 0x24),
        n => n,
    };
    if ![512, 1024, 2048, 4096].contains(&bps)
        || !spc.is_power_of_two()
        || reserved == 0
        || !(1..=4).contains(&fats)
        || fat_sectors == 0
    {
        return Err(fat_damaged("impossible boot sector geometry"));
    }
    if total.checked_mul(bps).is_none_or(|b| b > size) {
        return Err(fat_damaged(format!(
            "{total} sectors do not fit the volume"
        )));
    }
    let root_sectors = (root_entries * 32).div_ceil(bps);
    let first_data = reserved + fats * fat_sectors + root_sectors;
    if first_data >= total {
        return Err(fat_damaged("no room for data after the FATs"));
    }
    let clusters = (total - first_data) / spc;
    // The FAT type follows from the cluster count alone (Microsoft's rule).
    let bits: u64 = if clusters < 4085 {
        12
    } else if clusters < 65525 {
        16
    } else {
        32
    };
    let fat_bytes = ((clusters + 2) * bits).div_ceil(8);
    if fat_bytes > fat_sectors * bps || fat_bytes > MAX_FAT_BYTES {
        return Err(fat_damaged("the FAT is too small for the clusters it maps"));
    }
    let mut table =
        vec![0u8; usize::try_from(fat_bytes).map_err(|_| fat_damaged("FAT too large"))?];
    read_exact_at(v, offset + reserved * bps, &mut table)?;
    let entry = |n: u64| -> u64 {
        let at = usize::try_from(n * bits / 8).unwrap_or(0);
        match bits {
            12 => {
                let pair = u16_at(&table, at);
                if n.is_multiple_of(2) {
                    pair & 0xFFF
                } else {
                    pair >> 4
                }
            }
            16 => u16_at(&table, at),
            _ => u32_at(&table, at) & 0x0FFF_FFFF,
        }
    };
    let bad = match bits {
        12 => 0xFF7,
        16 => 0xFFF7,
        _ => 0x0FFF_FFF7,
    };
    // In sectors: the metadata, then each used cluster's sectors.
    let mut used = UsedMap { ranges: Vec::new() };
    used.push_units(0, first_data, bps);
    for n in 2..clusters + 2 {
        let value = entry(n);
        if value != 0 && value != bad {
            let first = first_data + (n - 2) * spc;
            used.push_units(first, first + spc, bps);
        }
    }
    Ok(used)
}

/// Whether ext group `g` holds a superblock backup (always with `sparse_super` off; else groups
/// 0, 1 and powers of 3, 5 and 7).
fn has_super(g: u64, sparse: bool) -> bool {
    if !sparse || g <= 1 {
        return true;
    }
    [3u64, 5, 7].iter().any(|&base| {
        let mut p = base;
        while p < g {
            p *= base;
        }
        p == g
    })
}

fn ext(v: &mut (impl Read + Seek), offset: u64, size: u64) -> Result<UsedMap, UsedError> {
    let geo = Geometry::read(v, offset, size)?;
    let (block, blocks, first_data, per_group) =
        (geo.block, geo.blocks, geo.first_data, geo.per_group);
    let table = &geo.groups;

    // Blocks of uninitialised groups that hold metadata: backups, and bitmaps and inode tables.
    let mut metadata_in_uninit: Vec<u64> = Vec::new();
    for group in table {
        let runs = [
            (group.bitmap, 1),
            (group.inode_bitmap, 1),
            (group.inode_table, geo.itable_blocks),
        ];
        for (start, len) in runs {
            for b in start..start + len {
                if table
                    .get(usize::try_from(geo.group_of(b)).unwrap_or(usize::MAX))
                    .is_some_and(Group::block_uninit)
                {
                    metadata_in_uninit.push(b);
                }
            }
        }
    }
    metadata_in_uninit.sort_unstable();

    let mut used = UsedMap { ranges: Vec::new() };
    // Blocks before the first group (block 0 of a 1 KiB-block file system: the boot block).
    used.push_units(0, first_data, block);
    let mut bitmap = vec![0u8; usize::try_from(block).unwrap_or(4096)];
    for (g, group) in table.iter().enumerate() {
        let g = g as u64;
        let start = first_data + g * per_group;
        let count = per_group.min(blocks - start);
        if group.block_uninit() {
            let mut in_group: Vec<u64> = Vec::new();
            if has_super(g, geo.sparse) {
                in_group.extend(start..start + 1 + geo.gdt_blocks + geo.reserved_gdt);
            }
            let lo = metadata_in_uninit.partition_point(|&b| b < start);
            let hi = metadata_in_uninit.partition_point(|&b| b < start + count);
            in_group.extend(&metadata_in_uninit[lo..hi]);
            in_group.sort_unstable();
            in_group.dedup();
            for b in in_group.into_iter().filter(|&b| b < start + count) {
                used.push_units(b, b + 1, block);
            }
        } else {
            read_exact_at(v, offset + group.bitmap * block, &mut bitmap)?;
            for i in 0..count {
                if bitmap[usize::try_from(i / 8).unwrap_or(0)] & (1 << (i % 8)) != 0 {
                    used.push_units(start + i, start + i + 1, block);
                }
            }
        }
    }
    Ok(used)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backups_sit_in_groups_0_1_and_powers_of_3_5_7() {
        let with: Vec<u64> = (0..60).filter(|&g| has_super(g, true)).collect();
        assert_eq!(with, [0, 1, 3, 5, 7, 9, 25, 27, 49]);
        assert!(has_super(12, false));
    }

    #[test]
    fn bitmap_runs_become_ranges_across_reads() {
        let mut map = UsedMap { ranges: Vec::new() };
        // Units 0-3 and 14-15 used, then a second read continuing the run at 16-19.
        push_bits(&mut map, &[0x0F, 0xC0], 0, 100, 10);
        push_bits(&mut map, &[0xFF, 0x0F, 0xFF], 16, 36, 10);
        assert_eq!(map.ranges, vec![0..40, 140..280, 320..360]);
    }

    #[test]
    fn units_merge_into_ranges() {
        let mut map = UsedMap { ranges: Vec::new() };
        for (first, end) in [(0, 1), (1, 3), (5, 7), (9, 10), (9, 10)] {
            map.push_units(first, end, 4096);
        }
        assert_eq!(
            map.ranges,
            [0..3 * 4096, 5 * 4096..7 * 4096, 9 * 4096..10 * 4096]
        );
        assert_eq!(map.bytes(), 6 * 4096);
    }
}
