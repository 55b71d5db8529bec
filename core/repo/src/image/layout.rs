//! A disk's layout: its size, its partition table (GPT, MBR with logical partitions, or none:
//! a file system on the whole disk) and each partition's place, type, identity and file
//! system. Recorded with every image-level point, shown before a restore, and what a whole-
//! disk restore recreates.

use std::io::{Read, Seek, SeekFrom};

use serde::{Deserialize, Serialize};

use super::probe::{FileSystem, probe};

/// Why a layout cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// The disk could not be read.
    #[error("cannot read the disk: {0}")]
    Io(#[from] std::io::Error),
    /// A table is there but contradicts itself or the disk.
    #[error("the disk's partition table is damaged: {0}")]
    Damaged(String),
}

/// The partition table of a disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartitionTable {
    /// A GUID partition table; its disk GUID as `sfdisk` prints it.
    Gpt {
        /// The disk's GUID.
        disk_guid: String,
    },
    /// A master boot record (DOS) table; its disk signature (`0x…`, as `sfdisk` prints it).
    Mbr {
        /// The disk signature.
        disk_id: String,
    },
    /// No table: the disk is one volume (a file system made on the whole device).
    None,
}

/// One partition (or, without a table, the whole disk as one volume).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    /// Its number, as the OS names it (`sda2` is 2); logical MBR partitions count from 5.
    pub number: u32,
    /// Byte offset on the disk.
    pub start: u64,
    /// Bytes.
    pub size: u64,
    /// GPT: the type GUID; MBR: the type byte (`83`, `7`, `c`), as `sfdisk` prints them.
    pub type_id: String,
    /// GPT: the partition GUID.
    pub uuid: Option<String>,
    /// GPT: the partition name.
    pub name: Option<String>,
    /// MBR: the active (boot) flag; GPT: the legacy BIOS bootable attribute.
    pub bootable: bool,
    /// The file system found on it, if one this code knows.
    pub filesystem: Option<FileSystem>,
}

/// A disk's layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskLayout {
    /// Bytes.
    pub size: u64,
    /// Bytes per logical sector (512 or 4096).
    pub sector_size: u64,
    /// Its partition table.
    pub table: PartitionTable,
    /// By number.
    pub partitions: Vec<Partition>,
}

/// Reads the layout of the disk (or disk image) `disk`.
pub fn read_layout<D: Read + Seek>(disk: &mut D) -> Result<DiskLayout, LayoutError> {
    let size = disk.seek(SeekFrom::End(0))?;
    if let Some(layout) = gpt(disk, size)? {
        return Ok(layout);
    }
    if let Some(layout) = mbr(disk, size)? {
        return Ok(layout);
    }
    let filesystem = probe(disk, 0, size);
    let partitions = match filesystem {
        // A file system on the whole disk: one volume.
        Some(fs) => vec![Partition {
            number: 0,
            start: 0,
            size,
            type_id: String::new(),
            uuid: None,
            name: None,
            bootable: false,
            filesystem: Some(fs),
        }],
        None => Vec::new(),
    };
    Ok(DiskLayout {
        size,
        sector_size: 512,
        table: PartitionTable::None,
        partitions,
    })
}

/// Largest partition entry array this code reads (UEFI asks for at least 128 entries; tools
/// write 128). A header may claim 2^32 entries: `gptman` would try to hold them all.
const MAX_GPT_ENTRIES: u64 = 4096;

/// Checks every GPT header on the disk (primary at LBA 1, backup at the last LBA, for 512- and
/// 4096-byte sectors) before `gptman` reads one: a header whose entry array is outsized or lies
/// outside the disk is damage. `Ok(false)`: no GPT signature anywhere.
fn gpt_headers_sane<D: Read + Seek>(disk: &mut D, size: u64) -> Result<bool, LayoutError> {
    let mut found = false;
    for sector in [512u64, 4096] {
        if size < sector * 2 {
            continue;
        }
        for lba in [1, size / sector - 1] {
            let mut h = [0u8; 92];
            disk.seek(SeekFrom::Start(lba * sector))?;
            if disk.read_exact(&mut h).is_err() || &h[..8] != b"EFI PART" {
                continue;
            }
            found = true;
            let u32_at =
                |at: usize| u64::from(u32::from_le_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]));
            let mut lba_bytes = [0u8; 8];
            lba_bytes.copy_from_slice(&h[72..80]);
            let entries_lba = u64::from_le_bytes(lba_bytes);
            let (count, entry_size) = (u32_at(80), u32_at(84));
            let array_end = entries_lba
                .checked_mul(sector)
                .and_then(|start| start.checked_add(count * entry_size));
            let sane = count <= MAX_GPT_ENTRIES
                && (128..=4096).contains(&entry_size)
                && entry_size.is_multiple_of(8)
                && array_end.is_some_and(|end| end <= size);
            if !sane {
                return Err(LayoutError::Damaged(format!(
                    "a GPT header at LBA {lba} names {count} entries of {entry_size} bytes at LBA {entries_lba}, which this disk cannot hold"
                )));
            }
        }
    }
    Ok(found)
}

fn gpt<D: Read + Seek>(disk: &mut D, size: u64) -> Result<Option<DiskLayout>, LayoutError> {
    if !gpt_headers_sane(disk, size)? {
        return Ok(None);
    }
    let table = match gptman::GPT::find_from(disk) {
        Ok(table) => table,
        Err(gptman::Error::InvalidSignature) => return Ok(None),
        Err(gptman::Error::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Ok(None);
        }
        Err(e) => return Err(LayoutError::Damaged(format!("GPT: {e}"))),
    };
    let sector = table.sector_size;
    let mut partitions = Vec::new();
    for (number, entry) in table.iter().filter(|(_, e)| e.is_used()) {
        let blocks = entry
            .size()
            .map_err(|e| LayoutError::Damaged(format!("GPT partition {number}: {e}")))?;
        let (start, bytes) = span(entry.starting_lba, blocks, sector, size, number)?;
        partitions.push(Partition {
            number,
            start,
            size: bytes,
            type_id: guid(&entry.partition_type_guid),
            uuid: Some(guid(&entry.unique_partition_guid)),
            name: Some(entry.partition_name.as_str().to_owned()).filter(|n| !n.is_empty()),
            // Attribute bit 2: legacy BIOS bootable.
            bootable: entry.attribute_bits & 0x4 != 0,
            filesystem: probe(disk, start, bytes),
        });
    }
    Ok(Some(DiskLayout {
        size,
        sector_size: sector,
        table: PartitionTable::Gpt {
            disk_guid: guid(&table.header.disk_guid),
        },
        partitions,
    }))
}

fn mbr<D: Read + Seek>(disk: &mut D, size: u64) -> Result<Option<DiskLayout>, LayoutError> {
    // Only a sector with the boot signature whose entries are plausible is a table: a FAT or
    // NTFS boot sector has the signature too.
    let mut first = [0u8; 512];
    disk.seek(SeekFrom::Start(0))?;
    if disk.read_exact(&mut first).is_err() || first[510..512] != [0x55, 0xAA] {
        return Ok(None);
    }
    if probe(disk, 0, size).is_some() || !entries_plausible(&first) {
        return Ok(None);
    }
    ebr_chain_sane(disk, &first, size)?;
    let table =
        mbrman::MBR::read_from(disk, 512).map_err(|e| LayoutError::Damaged(format!("MBR: {e}")))?;
    let mut partitions = Vec::new();
    for (number, entry) in table
        .iter()
        .filter(|(_, e)| e.is_used() && !e.is_extended())
    {
        let number = u32::try_from(number).unwrap_or(u32::MAX);
        let (start, bytes) = span(
            u64::from(entry.starting_lba),
            u64::from(entry.sectors),
            512,
            size,
            number,
        )?;
        partitions.push(Partition {
            number,
            start,
            size: bytes,
            type_id: format!("{:x}", entry.sys),
            uuid: None,
            name: None,
            bootable: entry.boot == mbrman::BOOT_ACTIVE,
            filesystem: probe(disk, start, bytes),
        });
    }
    let id = table.header.disk_signature;
    Ok(Some(DiskLayout {
        size,
        sector_size: 512,
        table: PartitionTable::Mbr {
            disk_id: format!("0x{:08x}", u32::from_le_bytes(id)),
        },
        partitions,
    }))
}

/// Whether the four primary entries of a boot sector look like a partition table: each boot
/// flag 0 or 0x80, each used entry starting after the boot sector, at least one used.
fn entries_plausible(sector: &[u8; 512]) -> bool {
    let entries: Vec<&[u8]> = sector[446..510].chunks(16).collect();
    entries.iter().all(|e| {
        let start = u32::from_le_bytes([e[8], e[9], e[10], e[11]]);
        matches!(e[0], 0 | 0x80) && (e[4] == 0 || start > 0)
    }) && entries.iter().any(|e| e[4] != 0)
}

/// Most logical partitions read (Linux names at most 256 minors per disk; tools make a few).
const MAX_LOGICAL: usize = 128;

/// Walks the chain of extended boot records the way `mbrman` will, with checked arithmetic,
/// before it does: its sums of start sectors are unchecked (a hostile chain overflows them)
/// and a chain of millions of records would be read whole. Each record must lie inside the
/// disk, each next one further on, at most [`MAX_LOGICAL`] of them.
fn ebr_chain_sane<D: Read + Seek>(
    disk: &mut D,
    first: &[u8; 512],
    size: u64,
) -> Result<(), LayoutError> {
    let entry = |sector: &[u8], i: usize| {
        let e = &sector[446 + 16 * i..446 + 16 * (i + 1)];
        let start = u32::from_le_bytes([e[8], e[9], e[10], e[11]]);
        let count = u32::from_le_bytes([e[12], e[13], e[14], e[15]]);
        (e[4], start, count)
    };
    let extended = (0..4)
        .map(|i| entry(first, i))
        .find(|(sys, _, _)| matches!(sys, 0x05 | 0x0f | 0x85 | 0xc5 | 0xd5));
    let Some((_, ext_start, _)) = extended else {
        return Ok(());
    };
    let damaged = |why: &str| LayoutError::Damaged(format!("extended partition: {why}"));
    let mut relative = 0u32;
    for _ in 0..MAX_LOGICAL {
        let absolute = ext_start
            .checked_add(relative)
            .ok_or_else(|| damaged("a logical partition lies outside the disk"))?;
        let offset = u64::from(absolute) * 512;
        if offset + 512 > size {
            return Err(damaged("a logical partition lies outside the disk"));
        }
        let mut ebr = [0u8; 512];
        disk.seek(SeekFrom::Start(offset))?;
        disk.read_exact(&mut ebr)?;
        if ebr[510..512] != [0x55, 0xAA] {
            // An empty extended partition need not hold a record; a later one must.
            return if relative == 0 {
                Ok(())
            } else {
                Err(damaged("a link in its chain is not a boot record"))
            };
        }
        let (sys, start, _) = entry(&ebr, 0);
        if sys != 0 && start.checked_add(absolute).is_none() {
            return Err(damaged("a logical partition lies outside the disk"));
        }
        let (_, next, _) = entry(&ebr, 1);
        if next == 0 {
            return Ok(());
        }
        if next <= relative {
            return Err(damaged("its chain of boot records runs backwards"));
        }
        relative = next;
    }
    Err(damaged("more logical partitions than any disk holds"))
}

/// A partition's byte span from its first block and block count; refused past the disk's end.
fn span(
    first: u64,
    blocks: u64,
    sector: u64,
    disk: u64,
    number: u32,
) -> Result<(u64, u64), LayoutError> {
    let outside = || LayoutError::Damaged(format!("partition {number} lies outside the disk"));
    let start = first.checked_mul(sector).ok_or_else(outside)?;
    let bytes = blocks.checked_mul(sector).ok_or_else(outside)?;
    match start.checked_add(bytes) {
        Some(end) if end <= disk => Ok((start, bytes)),
        _ => Err(outside()),
    }
}

/// A GUID as text: the first three fields little-endian, as GPT stores them; upper case, as
/// `sfdisk` prints them.
fn guid(bytes: &[u8; 16]) -> String {
    let d1 = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let d2 = u16::from_le_bytes([bytes[4], bytes[5]]);
    let d3 = u16::from_le_bytes([bytes[6], bytes[7]]);
    format!(
        "{d1:08X}-{d2:04X}-{d3:04X}-{}-{}",
        hex::encode_upper(&bytes[8..10]),
        hex::encode_upper(&bytes[10..16])
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn a_blank_disk_has_no_table_and_no_volume() {
        let layout = read_layout(&mut Cursor::new(vec![0u8; 1 << 20])).unwrap();
        assert_eq!(layout.table, PartitionTable::None);
        assert!(layout.partitions.is_empty());
        assert_eq!(layout.size, 1 << 20);
    }

    #[test]
    fn a_partition_past_the_disk_is_damage_not_a_panic() {
        let mut disk = vec![0u8; 1 << 20];
        disk[510] = 0x55;
        disk[511] = 0xAA;
        // One Linux partition from sector 2048 for 2^32 - 1 sectors: far past a 1 MiB disk.
        let entry = &mut disk[446..462];
        entry[4] = 0x83;
        entry[8..12].copy_from_slice(&2048u32.to_le_bytes());
        entry[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        match read_layout(&mut Cursor::new(disk)) {
            Err(LayoutError::Damaged(why)) => assert!(why.contains("outside"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_chain_of_logical_partitions_that_overflows_or_loops_is_damage_not_a_panic() {
        let mut disk = vec![0u8; 1 << 20];
        let put = |disk: &mut [u8], sector: usize, slot: usize, sys: u8, start: u32| {
            let e = &mut disk[sector * 512 + 446 + 16 * slot..][..16];
            e[4] = sys;
            e[8..12].copy_from_slice(&start.to_le_bytes());
            e[12..16].copy_from_slice(&10u32.to_le_bytes());
            disk[sector * 512 + 510] = 0x55;
            disk[sector * 512 + 511] = 0xAA;
        };
        // An extended partition at sector 100 whose logical partition starts 2^32 - 1
        // sectors after its boot record: mbrman's sum would overflow.
        put(&mut disk, 0, 0, 0x05, 100);
        put(&mut disk, 100, 0, 0x83, u32::MAX);
        assert!(matches!(
            read_layout(&mut Cursor::new(disk.clone())),
            Err(LayoutError::Damaged(_))
        ));
        // A chain that points back at itself.
        put(&mut disk, 100, 0, 0x83, 1);
        put(&mut disk, 100, 1, 0x05, 5);
        put(&mut disk, 105, 0, 0x83, 1);
        put(&mut disk, 105, 1, 0x05, 5);
        match read_layout(&mut Cursor::new(disk)) {
            Err(LayoutError::Damaged(why)) => assert!(why.contains("backwards"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_gpt_header_claiming_more_entries_than_the_disk_holds_is_damage() {
        let mut disk = vec![0u8; 1 << 20];
        let h = &mut disk[512..604];
        h[..8].copy_from_slice(b"EFI PART");
        h[72..80].copy_from_slice(&2u64.to_le_bytes());
        h[80..84].copy_from_slice(&u32::MAX.to_le_bytes());
        h[84..88].copy_from_slice(&128u32.to_le_bytes());
        match read_layout(&mut Cursor::new(disk.clone())) {
            Err(LayoutError::Damaged(why)) => assert!(why.contains("cannot hold"), "{why}"),
            other => panic!("{other:?}"),
        }
        // An entry array past the end of the disk.
        disk[512 + 72..512 + 80].copy_from_slice(&u64::MAX.to_le_bytes());
        disk[512 + 80..512 + 84].copy_from_slice(&128u32.to_le_bytes());
        assert!(matches!(
            read_layout(&mut Cursor::new(disk)),
            Err(LayoutError::Damaged(_))
        ));
    }

    #[test]
    fn guids_read_as_sfdisk_prints_them() {
        // The Linux file system type GUID as GPT stores it.
        let stored = [
            0xAF, 0x3D, 0xC6, 0x0F, 0x83, 0x84, 0x72, 0x47, 0x8E, 0x79, 0x3D, 0x69, 0xD8, 0x47,
            0x7D, 0xE4,
        ];
        assert_eq!(guid(&stored), "0FC63DAF-8483-4772-8E79-3D69D8477DE4");
    }
}
