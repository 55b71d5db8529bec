//! A disk written out as one file hypervisors open: raw (sparse), VHD (fixed or dynamic),
//! VHDX or VMDK (monolithic sparse). Each writer takes the disk's data as it streams from a
//! restore point — pieces in increasing offset order, holes never passed — and writes each
//! format block when the stream moves past it, so memory stays one block and a table, never
//! the disk. Blocks that are all zeros are not allocated where the format allows (all but
//! fixed VHD, which is raw with a footer; raw is sparse on the file system).
//!
//! Checked by `qemu-img check` and `qemu-img compare` against the raw disk in the tests.

mod blocks;
mod vhd;
mod vhdx;
mod vmdk;

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The disk's bytes, holes left sparse.
    Raw,
    /// VHD with every block present (raw plus a footer).
    VhdFixed,
    /// VHD, dynamic (blocks of 2 MiB allocated when they hold data).
    Vhd,
    /// VHDX (Hyper-V), blocks of 1 MiB allocated when they hold data.
    Vhdx,
    /// VMDK monolithic sparse (VMware), grains of 64 KiB.
    Vmdk,
}

impl Format {
    /// Its written form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::VhdFixed => "vhd-fixed",
            Self::Vhd => "vhd",
            Self::Vhdx => "vhdx",
            Self::Vmdk => "vmdk",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "raw" | "img" => Ok(Self::Raw),
            "vhd-fixed" | "vhdfixed" => Ok(Self::VhdFixed),
            "vhd" | "vhd-dynamic" => Ok(Self::Vhd),
            "vhdx" => Ok(Self::Vhdx),
            "vmdk" => Ok(Self::Vmdk),
            other => Err(format!(
                "disk format \"{other}\" is not known; use raw, vhd (dynamic), vhd-fixed, vhdx or vmdk"
            )),
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Writes a disk of a known size in one format.
pub trait DiskWriter {
    /// Data at `offset` (pieces come in increasing order; what is never written is zeros).
    fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Writes what remains (tables, footers) and syncs the file.
    fn finish(self: Box<Self>) -> io::Result<()>;
}

/// A writer of `format` for a disk of `size` bytes into the new, empty file `out`, named
/// `name` (VMDK's descriptor names its own file).
pub fn writer(format: Format, out: File, size: u64, name: &str) -> io::Result<Box<dyn DiskWriter>> {
    if !size.is_multiple_of(512) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the disk's size is not a whole number of 512-byte sectors",
        ));
    }
    Ok(match format {
        Format::Raw => Box::new(Raw {
            out,
            size,
            footer: None,
        }),
        Format::VhdFixed => Box::new(Raw {
            out,
            size,
            footer: Some(vhd::footer(size, vhd::DiskType::Fixed)),
        }),
        Format::Vhd => Box::new(vhd::Dynamic::new(out, size)?),
        Format::Vhdx => Box::new(vhdx::Vhdx::new(out, size)?),
        Format::Vmdk => Box::new(vmdk::Vmdk::new(out, size, name)?),
    })
}

/// Raw bytes at their offsets; a fixed VHD is the same with its footer after the data.
struct Raw {
    out: File,
    size: u64,
    footer: Option<[u8; 512]>,
}

impl DiskWriter for Raw {
    fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.out.seek(SeekFrom::Start(offset))?;
        self.out.write_all(data)
    }

    fn finish(mut self: Box<Self>) -> io::Result<()> {
        self.out.set_len(self.size)?;
        if let Some(footer) = self.footer {
            self.out.seek(SeekFrom::Start(self.size))?;
            self.out.write_all(&footer)?;
        }
        self.out.sync_all()
    }
}

/// A random GUID (version 4), as bytes.
fn new_guid() -> io::Result<[u8; 16]> {
    let mut g = [0u8; 16];
    getrandom::fill(&mut g).map_err(|e| io::Error::other(e.to_string()))?;
    g[6] = (g[6] & 0x0F) | 0x40;
    g[8] = (g[8] & 0x3F) | 0x80;
    Ok(g)
}
