//! Where the AppImage's file system starts: the end of the runtime's own ELF file.
//!
//! An AppImage (type 2) is an ELF executable with `AI\x02` at offset 8 of its header and a
//! SquashFS image appended right after the ELF file's last byte. That last byte is the end of the
//! section header table or of the last section holding data in the file, whichever is later
//! (the rule of the AppImage specification's reference runtime).

use std::io::{Read, Seek, SeekFrom};

/// The marker of an AppImage of type 2, at offset 8 of the ELF header (`EI_PAD`).
const APPIMAGE_MAGIC: [u8; 3] = *b"AI\x02";

/// Why the appended image cannot be found.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("cannot read the AppImage: {0}")]
    Io(#[from] std::io::Error),
    #[error(
        "this is not a 64-bit little-endian ELF file, so not an AppImage this runtime can open"
    )]
    NotElf64,
    #[error("the ELF header is damaged: {0}")]
    Damaged(&'static str),
}

const SHT_NOBITS: u32 = 8;

/// The byte offset just after the ELF file at the start of `file`: where the AppImage's
/// SquashFS image begins.
pub fn elf_end(file: &mut (impl Read + Seek)) -> Result<u64, ElfError> {
    let mut header = [0u8; 64];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut header)
        .map_err(|_| ElfError::NotElf64)?;
    if header[..4] != *b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return Err(ElfError::NotElf64);
    }
    let shoff = u64_at(&header, 0x28);
    let shentsize = u64::from(u16_at(&header, 0x3a));
    let shnum = u64::from(u16_at(&header, 0x3c));
    if shnum > 0 && shentsize < 64 {
        return Err(ElfError::Damaged(
            "section headers are shorter than ELF64's",
        ));
    }
    let table_end = shentsize
        .checked_mul(shnum)
        .and_then(|size| size.checked_add(shoff))
        .ok_or(ElfError::Damaged(
            "the section header table lies past any file",
        ))?;
    let mut end = table_end;
    let mut entry = vec![0u8; usize::try_from(shentsize).unwrap_or(64)];
    for index in 0..shnum {
        file.seek(SeekFrom::Start(shoff + index * shentsize))?;
        file.read_exact(&mut entry)
            .map_err(|_| ElfError::Damaged("the section header table is cut short"))?;
        if u32_at(&entry, 4) == SHT_NOBITS {
            continue;
        }
        let section_end = u64_at(&entry, 0x18)
            .checked_add(u64_at(&entry, 0x20))
            .ok_or(ElfError::Damaged("a section lies past any file"))?;
        end = end.max(section_end);
    }
    Ok(end)
}

/// Whether the file carries the AppImage type 2 marker.
pub fn has_appimage_magic(file: &mut (impl Read + Seek)) -> Result<bool, ElfError> {
    let mut magic = [0u8; 3];
    file.seek(SeekFrom::Start(8))?;
    file.read_exact(&mut magic)
        .map_err(|_| ElfError::NotElf64)?;
    Ok(magic == APPIMAGE_MAGIC)
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[cfg(target_os = "linux")]
    #[test]
    fn a_real_executable_ends_where_its_file_ends() {
        let path = std::env::current_exe().unwrap();
        let length = std::fs::metadata(&path).unwrap().len();
        let mut file = std::fs::File::open(&path).unwrap();
        assert_eq!(elf_end(&mut file).unwrap(), length);
        assert!(!has_appimage_magic(&mut file).unwrap());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn bytes_appended_to_an_executable_start_at_its_end() {
        let mut bytes = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let length = bytes.len() as u64;
        bytes.extend_from_slice(b"hsqs and the rest of a file system");
        assert_eq!(elf_end(&mut Cursor::new(bytes)).unwrap(), length);
    }

    #[test]
    fn what_is_not_elf_is_refused() {
        for bytes in [
            &b""[..],
            b"#!/bin/sh\necho hello\n",
            &[0x7f, b'E', b'L', b'F', 1, 1, 1],
        ] {
            assert!(matches!(
                elf_end(&mut Cursor::new(bytes.to_vec())),
                Err(ElfError::NotElf64)
            ));
        }
    }

    #[test]
    fn a_damaged_header_is_an_error_not_a_panic() {
        let mut header = vec![0u8; 64];
        header[..6].copy_from_slice(b"\x7fELF\x02\x01");
        header[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
        header[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        header[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        assert!(matches!(
            elf_end(&mut Cursor::new(header.clone())),
            Err(ElfError::Damaged(_))
        ));
        header[0x28..0x30].copy_from_slice(&1000u64.to_le_bytes());
        assert!(matches!(
            elf_end(&mut Cursor::new(header.clone())),
            Err(ElfError::Damaged(_))
        ));
        header[0x3a..0x3c].copy_from_slice(&4u16.to_le_bytes());
        assert!(matches!(
            elf_end(&mut Cursor::new(header)),
            Err(ElfError::Damaged(_))
        ));
    }
}
