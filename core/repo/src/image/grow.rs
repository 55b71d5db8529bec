//! After a whole disk is restored onto a larger one: the partition table is made to describe
//! the larger disk (GPT: headers and the backup table moved to the new end, the protective
//! MBR resized) and the last partition grown to fill it. The file system inside keeps its
//! size: growing it is the OS's tool's job (`resize2fs`, `ntfsresize`), said in the report.

use std::io::{Read, Seek, SeekFrom, Write};

use super::layout::{DiskLayout, LayoutError, PartitionTable};

/// Grows the last partition of the disk `disk` (already holding `layout`'s table) to the
/// disk's end; says what it did, or `None` when there was nothing to grow.
pub fn grow_last_partition<D: Read + Write + Seek>(
    disk: &mut D,
    layout: &DiskLayout,
) -> Result<Option<String>, LayoutError> {
    let size = disk.seek(SeekFrom::End(0))?;
    if size <= layout.size {
        return Ok(None);
    }
    match layout.table {
        PartitionTable::Gpt { .. } => gpt(disk, size),
        PartitionTable::Mbr { .. } => mbr(disk, size),
        PartitionTable::None => Ok(None),
    }
}

fn damaged(e: impl std::fmt::Display) -> LayoutError {
    LayoutError::Damaged(e.to_string())
}

fn gpt<D: Read + Write + Seek>(disk: &mut D, size: u64) -> Result<Option<String>, LayoutError> {
    let mut table = gptman::GPT::find_from(disk).map_err(damaged)?;
    let sector = table.sector_size;
    table.header.update_from(disk, sector).map_err(damaged)?;
    let last_usable = table.header.last_usable_lba;
    let last = table
        .iter()
        .filter(|(_, p)| p.is_used())
        .max_by_key(|(_, p)| p.ending_lba)
        .map(|(n, p)| (n, p.starting_lba, p.ending_lba));
    let mut said = None;
    if let Some((number, start, end)) = last
        && end < last_usable
    {
        table[number].ending_lba = last_usable;
        said = Some(format!(
            "partition {number} grown from {} to {} bytes to fill the disk (its file system keeps its size: grow it with the OS's tool)",
            (end + 1 - start) * sector,
            (last_usable + 1 - start) * sector
        ));
    }
    table.write_into(disk).map_err(damaged)?;
    // The protective MBR covers the whole disk (at most 2^32 - 1 sectors), boot flag kept.
    let mut mbr = [0u8; 512];
    disk.seek(SeekFrom::Start(0))?;
    disk.read_exact(&mut mbr)?;
    if mbr[446 + 4] == 0xEE {
        let sectors = u32::try_from(size / sector - 1).unwrap_or(u32::MAX);
        mbr[446 + 12..446 + 16].copy_from_slice(&sectors.to_le_bytes());
        disk.seek(SeekFrom::Start(0))?;
        disk.write_all(&mbr)?;
    }
    Ok(said.or_else(|| Some("the partition table now describes the whole disk".into())))
}

fn mbr<D: Read + Write + Seek>(disk: &mut D, size: u64) -> Result<Option<String>, LayoutError> {
    let mut sector = [0u8; 512];
    disk.seek(SeekFrom::Start(0))?;
    disk.read_exact(&mut sector)?;
    let entry = |s: &[u8; 512], i: usize| {
        let e = &s[446 + 16 * i..446 + 16 * (i + 1)];
        let start = u64::from(u32::from_le_bytes([e[8], e[9], e[10], e[11]]));
        let count = u64::from(u32::from_le_bytes([e[12], e[13], e[14], e[15]]));
        (e[4], start, count)
    };
    let Some(last) = (0..4)
        .filter(|&i| entry(&sector, i).0 != 0)
        .max_by_key(|&i| {
            let (_, s, c) = entry(&sector, i);
            s + c
        })
    else {
        return Ok(None);
    };
    let (sys, start, count) = entry(&sector, last);
    let disk_sectors = size / 512;
    let grown = (disk_sectors - start.min(disk_sectors)).min(u64::from(u32::MAX));
    if matches!(sys, 0x05 | 0x0f | 0x85) {
        return Ok(Some(
            "the last partition is inside an extended partition: it keeps its size".into(),
        ));
    }
    if grown <= count {
        return Ok(None);
    }
    let at = 446 + 16 * last + 12;
    sector[at..at + 4].copy_from_slice(&(grown as u32).to_le_bytes());
    disk.seek(SeekFrom::Start(0))?;
    disk.write_all(&sector)?;
    Ok(Some(format!(
        "partition {} grown from {} to {} bytes to fill the disk (its file system keeps its size: grow it with the OS's tool)",
        last + 1,
        count * 512,
        grown * 512
    )))
}
