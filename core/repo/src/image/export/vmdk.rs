//! VMDK, monolithic sparse (VMware's hosted sparse extent): a 512-byte header, the text
//! descriptor, the grain directory and every grain table laid out at the start, then 64 KiB
//! grains appended as the stream reaches them. A grain table covers 32 MiB; it is written as
//! soon as the stream has passed it, so only one is held.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};

use super::DiskWriter;
use super::blocks::Gather;

const SECTOR: u64 = 512;
/// Sectors per grain (64 KiB).
const GRAIN_SECTORS: u64 = 128;
const GRAIN: u64 = GRAIN_SECTORS * SECTOR;
/// Grain table entries per table.
const GTES: u64 = 512;
const DESCRIPTOR_AT: u64 = 1;
const DESCRIPTOR_SECTORS: u64 = 20;

/// A VMDK being written.
pub struct Vmdk {
    out: File,
    /// Sector of the first grain table (the others follow, 4 sectors each).
    tables_at: u64,
    /// The grain table being filled: its number and entries.
    table: (u64, Vec<u32>),
    next_sector: u64,
    gather: Gather,
}

impl Vmdk {
    pub fn new(mut out: File, size: u64, name: &str) -> io::Result<Self> {
        let capacity = size / SECTOR;
        let grains = capacity.div_ceil(GRAIN_SECTORS);
        let tables = grains.div_ceil(GTES);
        let gd_at = DESCRIPTOR_AT + DESCRIPTOR_SECTORS;
        let gd_sectors = (tables * 4).div_ceil(SECTOR);
        let tables_at = gd_at + gd_sectors;
        let table_sectors = GTES * 4 / SECTOR;
        let overhead = (tables_at + tables * table_sectors).div_ceil(GRAIN_SECTORS) * GRAIN_SECTORS;
        let too_large =
            || io::Error::other("the disk is too large for a sparse VMDK (2 TiB at most)");

        let mut h = [0u8; 512];
        h[0..4].copy_from_slice(b"KDMV");
        h[4..8].copy_from_slice(&1u32.to_le_bytes());
        h[8..12].copy_from_slice(&1u32.to_le_bytes()); // newline detection valid
        h[12..20].copy_from_slice(&capacity.to_le_bytes());
        h[20..28].copy_from_slice(&GRAIN_SECTORS.to_le_bytes());
        h[28..36].copy_from_slice(&DESCRIPTOR_AT.to_le_bytes());
        h[36..44].copy_from_slice(&DESCRIPTOR_SECTORS.to_le_bytes());
        h[44..48].copy_from_slice(&(GTES as u32).to_le_bytes());
        h[48..56].copy_from_slice(&0u64.to_le_bytes()); // no redundant directory
        h[56..64].copy_from_slice(&gd_at.to_le_bytes());
        h[64..72].copy_from_slice(&overhead.to_le_bytes());
        h[72] = 0; // clean shutdown
        h[73] = b'\n';
        h[74] = b' ';
        h[75] = b'\r';
        h[76] = b'\n';
        out.write_all(&h)?;

        let (cylinders, heads, sectors) = ((capacity / (16 * 63)).min(16383), 16, 63);
        let descriptor = format!(
            "# Disk DescriptorFile\nversion=1\nCID={:08x}\nparentCID=ffffffff\ncreateType=\"monolithicSparse\"\n\n# Extent description\nRW {capacity} SPARSE \"{}\"\n\n# The Disk Data Base\n#DDB\n\nddb.virtualHWVersion = \"4\"\nddb.geometry.cylinders = \"{cylinders}\"\nddb.geometry.heads = \"{heads}\"\nddb.geometry.sectors = \"{sectors}\"\nddb.adapterType = \"ide\"\n",
            u32::from_le_bytes(super::new_guid()?[..4].try_into().unwrap_or([1; 4])),
            name.replace('"', "_")
        );
        let mut d = descriptor.into_bytes();
        d.resize((DESCRIPTOR_SECTORS * SECTOR) as usize, 0);
        out.write_all(&d)?;
        // The grain directory: where each table is.
        let gd: Vec<u8> = (0..tables)
            .map(|t| u32::try_from(tables_at + t * table_sectors).map_err(|_| too_large()))
            .collect::<io::Result<Vec<u32>>>()?
            .into_iter()
            .flat_map(u32::to_le_bytes)
            .collect();
        out.write_all(&gd)?;
        // Empty tables (every grain absent) until filled.
        out.set_len(overhead * SECTOR)?;
        Ok(Self {
            out,
            tables_at,
            table: (0, vec![0; GTES as usize]),
            next_sector: overhead,
            gather: Gather::new(GRAIN),
        })
    }

    fn write_table(out: &mut File, tables_at: u64, table: &(u64, Vec<u32>)) -> io::Result<()> {
        if table.1.iter().all(|&e| e == 0) {
            return Ok(());
        }
        let bytes: Vec<u8> = table.1.iter().flat_map(|e| e.to_le_bytes()).collect();
        out.seek(SeekFrom::Start((tables_at + table.0 * 4) * SECTOR))?;
        out.write_all(&bytes)
    }

    fn emit(
        out: &mut File,
        tables_at: u64,
        table: &mut (u64, Vec<u32>),
        next: &mut u64,
        index: u64,
        grain: &[u8],
    ) -> io::Result<()> {
        if crate::chunker::is_zero(grain) {
            return Ok(());
        }
        let t = index / GTES;
        if t != table.0 {
            Self::write_table(out, tables_at, table)?;
            *table = (t, vec![0; GTES as usize]);
        }
        table.1[(index % GTES) as usize] = u32::try_from(*next)
            .map_err(|_| io::Error::other("the disk is too large for a sparse VMDK"))?;
        out.seek(SeekFrom::Start(*next * SECTOR))?;
        out.write_all(grain)?;
        *next += GRAIN_SECTORS;
        Ok(())
    }
}

impl DiskWriter for Vmdk {
    fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let Self {
            out,
            tables_at,
            table,
            next_sector,
            gather,
        } = self;
        let at = *tables_at;
        gather.write(offset, data, &mut |i, g| {
            Self::emit(out, at, table, next_sector, i, g)
        })
    }

    fn finish(mut self: Box<Self>) -> io::Result<()> {
        let Self {
            out,
            tables_at,
            table,
            next_sector,
            gather,
        } = &mut *self;
        let at = *tables_at;
        gather.flush(&mut |i, g| Self::emit(out, at, table, next_sector, i, g))?;
        Self::write_table(out, at, table)?;
        out.sync_all()
    }
}
