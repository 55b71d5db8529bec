//! VHD (Virtual PC / Hyper-V generation 1), as its specification lays it out: a 512-byte
//! footer at the end (and, for a dynamic disk, a copy at the start), a dynamic header, a
//! block allocation table of big-endian sector numbers, and 2 MiB blocks each preceded by a
//! sector bitmap. Only blocks holding data are allocated.
//!
//! The size readers use is the footer's current size: the creator application says so
//! (`win `, as Hyper-V writes; readers such as qemu otherwise round the size down to the
//! CHS geometry, which would cut off the end of the disk).

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};

use super::blocks::Gather;
use super::{DiskWriter, new_guid};

/// Bytes per dynamic block.
const BLOCK: u64 = 2 << 20;
/// Where the dynamic header is; the table follows it.
const HEADER_AT: u64 = 512;
const TABLE_AT: u64 = 1536;

/// Fixed or dynamic.
#[derive(Clone, Copy)]
pub enum DiskType {
    Fixed = 2,
    Dynamic = 3,
}

/// Seconds since 2000-01-01 UTC, as VHD counts time.
fn vhd_time() -> u32 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    u32::try_from(now.saturating_sub(946_684_800)).unwrap_or(u32::MAX)
}

/// Cylinders, heads, sectors per track, by the specification's algorithm.
pub fn geometry(size: u64) -> (u16, u8, u8) {
    let mut total = (size / 512).min(65535 * 16 * 255);
    let (spt, heads, cyl_heads);
    if total >= 65535 * 16 * 63 {
        spt = 255;
        heads = 16;
        cyl_heads = total / spt;
    } else {
        let mut s = 17u64;
        let mut ch = total / s;
        let mut h = ch.div_ceil(1024).max(4);
        if ch >= h * 1024 || h > 16 {
            s = 31;
            h = 16;
            ch = total / s;
        }
        if ch >= h * 1024 {
            s = 63;
            h = 16;
            ch = total / s;
        }
        spt = s;
        heads = h;
        cyl_heads = ch;
    }
    total = cyl_heads / heads;
    (total.min(65535) as u16, heads as u8, spt as u8)
}

/// The footer of a disk of `size` bytes.
pub fn footer(size: u64, kind: DiskType) -> [u8; 512] {
    let mut f = [0u8; 512];
    f[0..8].copy_from_slice(b"conectix");
    f[8..12].copy_from_slice(&2u32.to_be_bytes()); // features: reserved bit
    f[12..16].copy_from_slice(&0x0001_0000u32.to_be_bytes());
    let data_offset = match kind {
        DiskType::Fixed => u64::MAX,
        DiskType::Dynamic => HEADER_AT,
    };
    f[16..24].copy_from_slice(&data_offset.to_be_bytes());
    f[24..28].copy_from_slice(&vhd_time().to_be_bytes());
    f[28..32].copy_from_slice(b"win ");
    f[32..36].copy_from_slice(&0x000A_0000u32.to_be_bytes());
    f[36..40].copy_from_slice(b"Wi2k");
    f[40..48].copy_from_slice(&size.to_be_bytes());
    f[48..56].copy_from_slice(&size.to_be_bytes());
    let (c, h, s) = geometry(size);
    f[56..58].copy_from_slice(&c.to_be_bytes());
    f[58] = h;
    f[59] = s;
    f[60..64].copy_from_slice(&(kind as u32).to_be_bytes());
    f[68..84].copy_from_slice(&new_guid().unwrap_or([7; 16]));
    let sum = checksum(&f);
    f[64..68].copy_from_slice(&sum.to_be_bytes());
    f
}

/// One's complement of the byte sum (the checksum field itself counted as zero).
fn checksum(bytes: &[u8]) -> u32 {
    !bytes
        .iter()
        .fold(0u32, |acc, &b| acc.wrapping_add(u32::from(b)))
}

/// A dynamic VHD being written.
pub struct Dynamic {
    out: File,
    table: Vec<u32>,
    next: u64,
    gather: Gather,
    footer: [u8; 512],
}

impl Dynamic {
    pub fn new(mut out: File, size: u64) -> io::Result<Self> {
        let entries = size.div_ceil(BLOCK);
        let table_bytes = (entries * 4).div_ceil(512) * 512;
        let footer = footer(size, DiskType::Dynamic);
        let mut header = [0u8; 1024];
        header[0..8].copy_from_slice(b"cxsparse");
        header[8..16].copy_from_slice(&u64::MAX.to_be_bytes());
        header[16..24].copy_from_slice(&TABLE_AT.to_be_bytes());
        header[24..28].copy_from_slice(&0x0001_0000u32.to_be_bytes());
        header[28..32].copy_from_slice(&(entries as u32).to_be_bytes());
        header[32..36].copy_from_slice(&(BLOCK as u32).to_be_bytes());
        let sum = checksum(&header);
        header[36..40].copy_from_slice(&sum.to_be_bytes());
        out.write_all(&footer)?;
        out.write_all(&header)?;
        Ok(Self {
            out,
            table: vec![u32::MAX; entries as usize],
            next: TABLE_AT + table_bytes,
            gather: Gather::new(BLOCK),
            footer,
        })
    }

    fn emit(
        out: &mut File,
        table: &mut [u32],
        next: &mut u64,
        index: u64,
        block: &[u8],
    ) -> io::Result<()> {
        if crate::chunker::is_zero(block) {
            return Ok(());
        }
        table[index as usize] = u32::try_from(*next / 512)
            .map_err(|_| io::Error::other("the disk is too large for VHD (2 TiB at most)"))?;
        out.seek(SeekFrom::Start(*next))?;
        // Every sector of the block is present.
        out.write_all(&[0xFF; 512])?;
        out.write_all(block)?;
        *next += 512 + block.len() as u64;
        Ok(())
    }
}

impl DiskWriter for Dynamic {
    fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let Self {
            out,
            table,
            next,
            gather,
            ..
        } = self;
        gather.write(offset, data, &mut |i, b| Self::emit(out, table, next, i, b))
    }

    fn finish(mut self: Box<Self>) -> io::Result<()> {
        let Self {
            out,
            table,
            next,
            gather,
            ..
        } = &mut *self;
        gather.flush(&mut |i, b| Self::emit(out, table, next, i, b))?;
        let mut bytes: Vec<u8> = self.table.iter().flat_map(|e| e.to_be_bytes()).collect();
        bytes.resize(bytes.len().div_ceil(512) * 512, 0xFF);
        self.out.seek(SeekFrom::Start(TABLE_AT))?;
        self.out.write_all(&bytes)?;
        self.out.seek(SeekFrom::Start(self.next))?;
        self.out.write_all(&self.footer)?;
        self.out.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_follows_the_specification() {
        let (c, h, s) = geometry(256 << 20);
        assert!(u64::from(c) * u64::from(h) * u64::from(s) * 512 <= 256 << 20);
        // The largest CHS covers ~127 GiB.
        assert_eq!(geometry(1 << 40), (65535, 16, 255));
    }

    #[test]
    fn footers_checksum_to_zero_complement() {
        let f = footer(64 << 20, DiskType::Fixed);
        let stored = u32::from_be_bytes([f[64], f[65], f[66], f[67]]);
        let mut zeroed = f;
        zeroed[64..68].fill(0);
        assert_eq!(stored, checksum(&zeroed));
    }
}
