//! VHDX (Hyper-V), as MS-VHDX lays it out: the file identifier, two headers and two region
//! tables in the first 1 MiB (CRC-32C checked), an empty log (no replay needed), the metadata
//! region (block size, disk size, sector sizes, disk id), the block allocation table, then
//! 1 MiB payload blocks (the smallest the format allows: the sparsest file), allocated only
//! when they hold data.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};

use super::blocks::Gather;
use super::{DiskWriter, new_guid};

const MIB: u64 = 1 << 20;
const BLOCK: u64 = MIB;
const LOG_AT: u64 = MIB;
const LOG_LEN: u64 = MIB;
const METADATA_AT: u64 = 2 * MIB;
const METADATA_LEN: u64 = MIB;
const BAT_AT: u64 = 3 * MIB;
const SECTOR: u64 = 512;
/// Payload blocks per sector-bitmap block: 2^23 sectors' worth.
const CHUNK_RATIO: u64 = (1 << 23) * SECTOR / BLOCK;
/// BAT entry states.
const PAYLOAD_FULLY_PRESENT: u64 = 6;

/// A GUID as text → bytes in the mixed-endian layout VHDX stores.
fn guid(text: &str) -> [u8; 16] {
    let hex: String = text.chars().filter(char::is_ascii_hexdigit).collect();
    let mut b = [0u8; 16];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0);
    }
    b[0..4].reverse();
    b[4..6].reverse();
    b[6..8].reverse();
    b
}

fn crc32c(bytes: &[u8]) -> u32 {
    crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(bytes)
}

/// Puts a CRC-32C of `buf` (its checksum field, bytes 4..8, zero meanwhile) at 4..8.
fn seal(buf: &mut [u8]) {
    buf[4..8].fill(0);
    let sum = crc32c(buf);
    buf[4..8].copy_from_slice(&sum.to_le_bytes());
}

/// A VHDX being written.
pub struct Vhdx {
    out: File,
    bat: Vec<u64>,
    next: u64,
    gather: Gather,
}

impl Vhdx {
    pub fn new(mut out: File, size: u64) -> io::Result<Self> {
        let blocks = size.div_ceil(BLOCK);
        let entries = blocks + blocks.saturating_sub(1) / CHUNK_RATIO;
        let bat_len = (entries * 8).div_ceil(MIB) * MIB;

        // File type identifier.
        let mut ident = vec![0u8; 64 << 10];
        ident[..8].copy_from_slice(b"vhdxfile");
        for (i, u) in "Cloudkeep".encode_utf16().enumerate() {
            ident[8 + 2 * i..10 + 2 * i].copy_from_slice(&u.to_le_bytes());
        }
        out.write_all(&ident)?;
        // Two headers, sequence numbers 0 and 1 (the higher is current; both valid).
        let (file_write, data_write) = (new_guid()?, new_guid()?);
        for (seq, at) in [(0u64, 64u64 << 10), (1, 128 << 10)] {
            let mut h = vec![0u8; 4096];
            h[0..4].copy_from_slice(b"head");
            h[8..16].copy_from_slice(&seq.to_le_bytes());
            h[16..32].copy_from_slice(&file_write);
            h[32..48].copy_from_slice(&data_write);
            // LogGuid zero: nothing to replay.
            h[64..66].copy_from_slice(&0u16.to_le_bytes());
            h[66..68].copy_from_slice(&1u16.to_le_bytes());
            h[68..72].copy_from_slice(&(LOG_LEN as u32).to_le_bytes());
            h[72..80].copy_from_slice(&LOG_AT.to_le_bytes());
            seal(&mut h);
            out.seek(SeekFrom::Start(at))?;
            out.write_all(&h)?;
        }
        // Two identical region tables: the BAT and the metadata region.
        let mut regions = vec![0u8; 64 << 10];
        regions[0..4].copy_from_slice(b"regi");
        regions[8..12].copy_from_slice(&2u32.to_le_bytes());
        let entry = |r: &mut [u8], i: usize, id: &str, at: u64, len: u64| {
            let e = &mut r[16 + 32 * i..16 + 32 * (i + 1)];
            e[0..16].copy_from_slice(&guid(id));
            e[16..24].copy_from_slice(&at.to_le_bytes());
            e[24..28].copy_from_slice(&(len as u32).to_le_bytes());
            e[28..32].copy_from_slice(&1u32.to_le_bytes());
        };
        entry(
            &mut regions,
            0,
            "2DC27766-F623-4200-9D64-115E9BFD4A08",
            BAT_AT,
            bat_len,
        );
        entry(
            &mut regions,
            1,
            "8B7CA206-4790-4B9A-B8FE-575F050F886E",
            METADATA_AT,
            METADATA_LEN,
        );
        seal(&mut regions);
        for at in [192u64 << 10, 256 << 10] {
            out.seek(SeekFrom::Start(at))?;
            out.write_all(&regions)?;
        }
        // The log region: zeros.
        out.seek(SeekFrom::Start(LOG_AT))?;
        out.write_all(&vec![0u8; LOG_LEN as usize])?;
        // The metadata region: its table, then the items from 64 KiB on.
        let mut meta = vec![0u8; METADATA_LEN as usize];
        meta[0..8].copy_from_slice(b"metadata");
        let items: [(&str, u32, Vec<u8>); 5] = [
            // File parameters: block size, flags (none: not a differencing disk).
            (
                "CAA16737-FA36-4D43-B3B6-33F0AA44E76B",
                0b100,
                [(BLOCK as u32).to_le_bytes(), 0u32.to_le_bytes()].concat(),
            ),
            (
                "2FA54224-CD1B-4876-B211-5DBED83BF4B8",
                0b110,
                size.to_le_bytes().to_vec(),
            ),
            (
                "BECA12AB-B2E6-4523-93EF-C309E000C746",
                0b110,
                new_guid()?.to_vec(),
            ),
            (
                "8141BF1D-A96F-4709-BA47-F233A8FAAB5F",
                0b110,
                (SECTOR as u32).to_le_bytes().to_vec(),
            ),
            (
                "CDA348C7-445D-4471-9CC9-E9885251C556",
                0b110,
                4096u32.to_le_bytes().to_vec(),
            ),
        ];
        meta[10..12].copy_from_slice(&(items.len() as u16).to_le_bytes());
        let mut at = 64usize << 10;
        for (i, (id, flags, value)) in items.iter().enumerate() {
            let e = &mut meta[32 + 32 * i..32 + 32 * (i + 1)];
            e[0..16].copy_from_slice(&guid(id));
            e[16..20].copy_from_slice(&(at as u32).to_le_bytes());
            e[20..24].copy_from_slice(&(value.len() as u32).to_le_bytes());
            e[24..28].copy_from_slice(&flags.to_le_bytes());
            meta[at..at + value.len()].copy_from_slice(value);
            at += value.len().div_ceil(8) * 8;
        }
        out.seek(SeekFrom::Start(METADATA_AT))?;
        out.write_all(&meta)?;
        Ok(Self {
            out,
            bat: vec![0; entries as usize],
            next: BAT_AT + bat_len,
            gather: Gather::new(BLOCK),
        })
    }

    fn emit(
        out: &mut File,
        bat: &mut [u64],
        next: &mut u64,
        index: u64,
        block: &[u8],
    ) -> io::Result<()> {
        if crate::chunker::is_zero(block) {
            return Ok(());
        }
        let entry = index + index / CHUNK_RATIO;
        bat[entry as usize] = (*next / MIB) << 20 | PAYLOAD_FULLY_PRESENT;
        out.seek(SeekFrom::Start(*next))?;
        out.write_all(block)?;
        *next += BLOCK;
        Ok(())
    }
}

impl DiskWriter for Vhdx {
    fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let Self {
            out,
            bat,
            next,
            gather,
        } = self;
        gather.write(offset, data, &mut |i, b| Self::emit(out, bat, next, i, b))
    }

    fn finish(mut self: Box<Self>) -> io::Result<()> {
        let Self {
            out,
            bat,
            next,
            gather,
        } = &mut *self;
        gather.flush(&mut |i, b| Self::emit(out, bat, next, i, b))?;
        let bytes: Vec<u8> = self.bat.iter().flat_map(|e| e.to_le_bytes()).collect();
        self.out.seek(SeekFrom::Start(BAT_AT))?;
        self.out.write_all(&bytes)?;
        self.out.set_len(self.next)?;
        self.out.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_stored_mixed_endian() {
        let g = guid("2DC27766-F623-4200-9D64-115E9BFD4A08");
        assert_eq!(&g[..4], &[0x66, 0x77, 0xC2, 0x2D]);
        assert_eq!(&g[4..8], &[0x23, 0xF6, 0x00, 0x42]);
        assert_eq!(&g[8..], &[0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08]);
    }

    #[test]
    fn crc32c_is_castagnoli() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }
}
