//! Which file system a volume carries, from its first sectors: ext2/3/4 (the superblock at
//! byte 1024), FAT12/16/32 and NTFS (their boot sectors). Kind, UUID and label as `blkid`
//! shows them, and the allocation unit (block or cluster size), which image-level backups use
//! to read only what the file system marks used.

use std::io::{Read, Seek, SeekFrom};

use serde::{Deserialize, Serialize};

/// A file-system kind this code can read the allocation of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsKind {
    /// ext2 (no journal).
    Ext2,
    /// ext3 (a journal, no ext4 features).
    Ext3,
    /// ext4.
    Ext4,
    /// FAT12, FAT16 or FAT32.
    Vfat,
    /// NTFS.
    Ntfs,
}

impl FsKind {
    /// The name `blkid` and `mount` use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ext2 => "ext2",
            Self::Ext3 => "ext3",
            Self::Ext4 => "ext4",
            Self::Vfat => "vfat",
            Self::Ntfs => "ntfs",
        }
    }
}

/// A file system found on a volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSystem {
    /// Which file system.
    pub kind: FsKind,
    /// As `blkid` prints it (`0f3c…-…` for ext, `ABCD-1234` for FAT, 16 hex digits for NTFS).
    pub uuid: Option<String>,
    /// Its label (NTFS keeps its label in a file, not read here).
    pub label: Option<String>,
    /// Bytes per block (ext) or cluster (FAT, NTFS).
    pub block_size: u32,
}

/// The file system at `offset` of `volume` (a volume of `size` bytes), if one this code knows
/// is there. Reading errors and damaged superblocks are "none found".
pub fn probe(volume: &mut (impl Read + Seek), offset: u64, size: u64) -> Option<FileSystem> {
    let head = read_at(volume, offset, size, 0, 4096)?;
    ext(&head).or_else(|| ntfs(&head)).or_else(|| fat(&head))
}

/// `len` bytes at `at` of the volume, or `None` past its end or on a read error.
fn read_at(
    volume: &mut (impl Read + Seek),
    offset: u64,
    size: u64,
    at: u64,
    len: usize,
) -> Option<Vec<u8>> {
    let len = len.min(usize::try_from(size.checked_sub(at)?).unwrap_or(usize::MAX));
    volume.seek(SeekFrom::Start(offset.checked_add(at)?)).ok()?;
    let mut out = vec![0u8; len];
    volume.read_exact(&mut out).ok()?;
    Some(out)
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn le64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// A label field: up to its first NUL, trailing spaces cut, empty is none.
fn label(bytes: &[u8]) -> Option<String> {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let text = String::from_utf8_lossy(&bytes[..end]).trim_end().to_owned();
    (!text.is_empty()).then_some(text)
}

/// ext2/3/4: the superblock at byte 1024 (magic 0xEF53 at 0x38 of it).
fn ext(head: &[u8]) -> Option<FileSystem> {
    let sb = head.get(1024..2048)?;
    if le16(sb, 0x38)? != 0xEF53 {
        return None;
    }
    let log = le32(sb, 0x18)?;
    // 1 KiB to 64 KiB blocks; anything else is not a superblock this code trusts.
    if log > 6 {
        return None;
    }
    let (compat, incompat, ro_compat) = (le32(sb, 0x5C)?, le32(sb, 0x60)?, le32(sb, 0x64)?);
    const HAS_JOURNAL: u32 = 0x4;
    const EXT4_INCOMPAT: u32 = 0x40 | 0x80 | 0x200 | 0x2000 | 0x8000; // extents, 64bit, flex_bg, csum_seed, inline data
    const EXT4_RO_COMPAT: u32 = 0x8 | 0x10 | 0x20 | 0x40 | 0x400; // huge_file, gdt_csum, dir_nlink, extra_isize, metadata_csum
    let kind = if incompat & EXT4_INCOMPAT != 0 || ro_compat & EXT4_RO_COMPAT != 0 {
        FsKind::Ext4
    } else if compat & HAS_JOURNAL != 0 {
        FsKind::Ext3
    } else {
        FsKind::Ext2
    };
    let u = sb.get(0x68..0x78)?;
    let uuid = (u.iter().any(|&b| b != 0)).then(|| {
        let h = hex::encode(u);
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    });
    Some(FileSystem {
        kind,
        uuid,
        label: label(sb.get(0x78..0x88)?),
        block_size: 1024 << log,
    })
}

/// NTFS: "NTFS    " at byte 3 of the boot sector; the serial number at 0x48.
fn ntfs(head: &[u8]) -> Option<FileSystem> {
    if head.get(3..11)? != b"NTFS    " || le16(head, 0x1FE)? != 0xAA55 {
        return None;
    }
    let cluster = cluster_size(head)?;
    let serial = le64(head, 0x48)?;
    Some(FileSystem {
        kind: FsKind::Ntfs,
        uuid: (serial != 0).then(|| format!("{serial:016X}")),
        // The label lives in the $Volume file, not the boot sector.
        label: None,
        block_size: cluster,
    })
}

/// Bytes per sector (0x0B) times sectors per cluster (0x0D), both powers of two in range.
fn cluster_size(boot: &[u8]) -> Option<u32> {
    let sector = u32::from(le16(boot, 0x0B)?);
    let per_cluster = u32::from(*boot.get(0x0D)?);
    // NTFS writes clusters of 128+ sectors as a negative power of two.
    let per_cluster = if per_cluster > 0x80 {
        1u32.checked_shl(256 - per_cluster)?
    } else {
        per_cluster
    };
    let ok = |n: u32| n.is_power_of_two();
    (ok(sector) && (512..=4096).contains(&sector) && ok(per_cluster))
        .then(|| sector.checked_mul(per_cluster))
        .flatten()
}

/// FAT12/16/32: a boot sector with the 0x55AA mark and a sane BPB; FAT32 has no root entry
/// count and its extended BPB at 0x40, FAT12/16 at 0x24.
fn fat(head: &[u8]) -> Option<FileSystem> {
    if le16(head, 0x1FE)? != 0xAA55 {
        return None;
    }
    let cluster = cluster_size(head)?;
    let reserved = le16(head, 0x0E)?;
    let fats = *head.get(0x10)?;
    if reserved == 0 || fats == 0 {
        return None;
    }
    let root_entries = le16(head, 0x11)?;
    let sectors_per_fat16 = le16(head, 0x16)?;
    let ebpb = if root_entries == 0 && sectors_per_fat16 == 0 {
        0x40
    } else {
        0x24
    };
    // The extended boot signature says the serial and label are there.
    if !matches!(*head.get(ebpb + 2)?, 0x28 | 0x29) {
        return Some(FileSystem {
            kind: FsKind::Vfat,
            uuid: None,
            label: None,
            block_size: cluster,
        });
    }
    let serial = le32(head, ebpb + 3)?;
    let name = label(head.get(ebpb + 7..ebpb + 18)?).filter(|l| l != "NO NAME");
    Some(FileSystem {
        kind: FsKind::Vfat,
        uuid: Some(format!("{:04X}-{:04X}", serial >> 16, serial & 0xFFFF)),
        label: name,
        block_size: cluster,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn noise_and_short_volumes_are_no_file_system() {
        assert_eq!(probe(&mut Cursor::new(vec![0u8; 8192]), 0, 8192), None);
        assert_eq!(probe(&mut Cursor::new(vec![0xFFu8; 8192]), 0, 8192), None);
        assert_eq!(probe(&mut Cursor::new(vec![0u8; 100]), 0, 100), None);
        assert_eq!(probe(&mut Cursor::new(vec![0u8; 100]), 4096, 100), None);
        // An ext magic with an impossible block size.
        let mut ext = vec![0u8; 4096];
        ext[1024 + 0x38..1024 + 0x3A].copy_from_slice(&0xEF53u16.to_le_bytes());
        ext[1024 + 0x18] = 40;
        assert_eq!(probe(&mut Cursor::new(ext), 0, 4096), None);
        // A boot sector mark with a zero sector size.
        let mut fat = vec![0u8; 4096];
        fat[0x1FE..0x200].copy_from_slice(&0xAA55u16.to_le_bytes());
        assert_eq!(probe(&mut Cursor::new(fat), 0, 4096), None);
    }
}
