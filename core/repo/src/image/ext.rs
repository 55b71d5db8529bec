//! The geometry of an ext2/3/4 file system as its superblock and group descriptors give it:
//! block size, block groups, where each group's bitmaps and inode table lie. Shared by `used`
//! (which blocks are in use) and `changes` (which blocks cannot have changed since the last
//! image). Every value is checked against the volume and against what `mke2fs` can make: a
//! damaged or hostile superblock is an error, never a panic or an unbounded read.

use std::io::{Read, Seek, SeekFrom};

use super::used::UsedError;

/// `INCOMPAT_64BIT`: block numbers and descriptor fields have high halves.
const INCOMPAT_64BIT: u64 = 0x80;
/// `INCOMPAT_META_BG`: descriptor blocks spread over the volume (not read yet).
const INCOMPAT_META_BG: u64 = 0x10;

/// One block group's descriptor.
#[derive(Debug, Clone)]
pub struct Group {
    /// Block of the group's block bitmap.
    pub bitmap: u64,
    /// Block of the group's inode bitmap.
    pub inode_bitmap: u64,
    /// First block of the group's inode table.
    pub inode_table: u64,
    /// `bg_flags`: `INODE_UNINIT` (0x1), `BLOCK_UNINIT` (0x2), `ITABLE_ZEROED` (0x4).
    pub flags: u64,
    /// Inodes at the table's end never used (`bg_itable_unused`; 0 unless checksummed).
    pub itable_unused: u64,
}

impl Group {
    /// The group's block bitmap was never written: only its metadata is in use.
    pub fn block_uninit(&self) -> bool {
        self.flags & 0x2 != 0
    }

    /// The group's inode bitmap and table were never written: no inode is in use.
    pub fn inode_uninit(&self) -> bool {
        self.flags & 0x1 != 0
    }
}

/// An ext2/3/4 file system's geometry.
#[derive(Debug, Clone)]
pub struct Geometry {
    /// The superblock's 1024 bytes.
    pub sb: Vec<u8>,
    /// Block size in bytes.
    pub block: u64,
    /// Blocks in the file system.
    pub blocks: u64,
    /// The first data block (1 on 1 KiB-block file systems, else 0).
    pub first_data: u64,
    /// Blocks per group.
    pub per_group: u64,
    /// Inodes per group.
    pub inodes_per_group: u64,
    /// Bytes per inode record.
    pub inode_size: u64,
    /// Blocks of each group's inode table.
    pub itable_blocks: u64,
    /// Blocks of the group descriptor table.
    pub gdt_blocks: u64,
    /// Blocks reserved after it for growth.
    pub reserved_gdt: u64,
    /// `sparse_super`: superblock backups only in groups 0, 1 and powers of 3, 5, 7.
    pub sparse: bool,
    /// Every group's descriptor.
    pub groups: Vec<Group>,
}

impl Geometry {
    /// Reads the geometry of the ext file system at `offset` of `v` (a volume of `size` bytes).
    pub fn read(v: &mut (impl Read + Seek), offset: u64, size: u64) -> Result<Self, UsedError> {
        let mut sb = vec![0u8; 1024];
        read_exact_at(v, offset + 1024, &mut sb)?;
        let block = 1024u64 << u32_at(&sb, 0x18).min(6);
        let incompat = u32_at(&sb, 0x60);
        let is64 = incompat & INCOMPAT_64BIT != 0;
        let blocks = u32_at(&sb, 0x04) | if is64 { u32_at(&sb, 0x150) << 32 } else { 0 };
        let first_data = u32_at(&sb, 0x14);
        let per_group = u32_at(&sb, 0x20);
        let inodes_per_group = u32_at(&sb, 0x28);
        let inode_size = if u32_at(&sb, 0x4C) == 0 {
            128
        } else {
            u16_at(&sb, 0x58)
        };
        let reserved_gdt = u16_at(&sb, 0xCE);
        let sparse = u32_at(&sb, 0x64) & 0x1 != 0;
        let desc_size = if is64 { u16_at(&sb, 0xFE) } else { 32 };
        if blocks.checked_mul(block).is_none_or(|b| b > size) || blocks <= first_data {
            return Err(damaged(format!(
                "{blocks} blocks of {block} bytes do not fit the volume"
            )));
        }
        // What mke2fs can make: groups of 256 to 8 × block-size blocks (a multiple of 8), an
        // inode bitmap of one block at most, inodes of 128 bytes to a block.
        if !(256..=8 * block).contains(&per_group)
            || !per_group.is_multiple_of(8)
            || !(1..=8 * block).contains(&inodes_per_group)
            || !inode_size.is_power_of_two()
            || !(128..=block).contains(&inode_size)
        {
            return Err(damaged("impossible block-group geometry"));
        }
        if !(32..=block).contains(&desc_size) || !desc_size.is_multiple_of(8) {
            return Err(damaged("impossible group descriptor size"));
        }
        if incompat & INCOMPAT_META_BG != 0 {
            return Err(damaged("meta_bg layouts are not read yet"));
        }
        let count = (blocks - first_data).div_ceil(per_group);
        let gdt_blocks = (count * desc_size).div_ceil(block);
        let itable_blocks = (inodes_per_group * inode_size).div_ceil(block);
        if itable_blocks > per_group {
            return Err(damaged("an inode table larger than its group"));
        }
        let mut gdt =
            vec![0u8; usize::try_from(gdt_blocks * block).map_err(|_| damaged("too many groups"))?];
        read_exact_at(v, offset + (first_data + 1) * block, &mut gdt)?;
        let hi = |d: &[u8], at: usize| if is64 { u32_at(d, at) << 32 } else { 0 };
        let hi16 = |d: &[u8], at: usize| if is64 { u16_at(d, at) << 16 } else { 0 };
        let mut groups = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        for (g, d) in gdt
            .chunks_exact(usize::try_from(desc_size).unwrap_or(32))
            .take(usize::try_from(count).unwrap_or(0))
            .enumerate()
        {
            let group = Group {
                bitmap: u32_at(d, 0x00) | hi(d, 0x20),
                inode_bitmap: u32_at(d, 0x04) | hi(d, 0x24),
                inode_table: u32_at(d, 0x08) | hi(d, 0x28),
                flags: u16_at(d, 0x12),
                itable_unused: u16_at(d, 0x1C) | hi16(d, 0x32),
            };
            if [
                group.bitmap,
                group.inode_bitmap,
                group.inode_table.saturating_add(itable_blocks - 1),
            ]
            .iter()
            .any(|&b| b >= blocks)
            {
                return Err(damaged(format!(
                    "group {g}'s bitmaps or inode table lie outside the volume"
                )));
            }
            groups.push(group);
        }
        Ok(Self {
            sb,
            block,
            blocks,
            first_data,
            per_group,
            inodes_per_group,
            inode_size,
            itable_blocks,
            gdt_blocks,
            reserved_gdt,
            sparse,
            groups,
        })
    }

    /// A 32-bit superblock field.
    pub fn sb_u32(&self, at: usize) -> u64 {
        u32_at(&self.sb, at)
    }

    /// The group holding block `b`.
    pub fn group_of(&self, b: u64) -> u64 {
        (b - self.first_data.min(b)) / self.per_group
    }
}

/// A file system's own structures are wrong.
pub fn damaged(reason: impl Into<String>) -> UsedError {
    UsedError::Damaged {
        fs: "ext",
        reason: reason.into(),
    }
}

/// Reads `buf.len()` bytes at `at`; a structure past the volume's end is damage.
pub fn read_exact_at(v: &mut (impl Read + Seek), at: u64, buf: &mut [u8]) -> Result<(), UsedError> {
    v.seek(SeekFrom::Start(at))?;
    v.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            damaged("a structure lies past the end of the volume")
        } else {
            UsedError::Io(e)
        }
    })
}

/// A little-endian u16 at `at` (the caller checked the bounds).
pub fn u16_at(b: &[u8], at: usize) -> u64 {
    u64::from(u16::from_le_bytes([b[at], b[at + 1]]))
}

/// A little-endian u32 at `at` (the caller checked the bounds).
pub fn u32_at(b: &[u8], at: usize) -> u64 {
    u64::from(u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 64-bit file system whose descriptor puts an inode table at the end of the u64 range
    /// (found by the `disk_layout` fuzz target): damage, not an overflow.
    #[test]
    fn an_inode_table_at_the_end_of_the_u64_range_is_damage() {
        let mut v = vec![0u8; 64 << 10];
        let put = |v: &mut [u8], at: usize, x: u32| v[at..at + 4].copy_from_slice(&x.to_le_bytes());
        let sb = 1024;
        put(&mut v, sb + 0x04, 16); // blocks
        put(&mut v, sb + 0x18, 2); // 4 KiB blocks
        put(&mut v, sb + 0x20, 32768); // blocks per group
        put(&mut v, sb + 0x28, 128); // inodes per group
        put(&mut v, sb + 0x4C, 1); // dynamic revision: inode size below
        v[sb + 0x58..sb + 0x5A].copy_from_slice(&256u16.to_le_bytes());
        put(&mut v, sb + 0x60, 0x80); // 64bit
        v[sb + 0xFE..sb + 0x100].copy_from_slice(&64u16.to_le_bytes());
        let gd = 4096;
        put(&mut v, gd + 0x08, u32::MAX); // inode table, low half
        put(&mut v, gd + 0x28, u32::MAX); // and high half
        let err = Geometry::read(&mut std::io::Cursor::new(v), 0, 64 << 10).unwrap_err();
        assert!(err.to_string().contains("outside the volume"), "{err}");
    }
}
