//! Fuzz target: the files inside a volume as image-level points show them — the ext2/3/4,
//! FAT and NTFS readers (`image::files`: ext4-view, fatfs, ntfs) over hostile bytes: a volume
//! is input its user controls. Each file system found is opened, its top folder and the
//! folders below listed, and its files read whole and at offsets (as a publication reads
//! them); nothing may crash, hang or allocate without bound (a reader's own panic is caught
//! by the guard every call goes through).
#![no_main]

use std::io::Cursor;

use cloudkeep_repo::image::files::{self, EntryKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A reader's panic is caught by `image::files` and becomes damage, as in the product;
    // libFuzzer's hook would abort on it first, so panics are silent here. A panic that
    // escapes the guard still unwinds out of this closure, and libfuzzer-sys aborts on it.
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    // The bytes as the volume's head, on a volume of 2 MiB (the rest zeros).
    let mut volume = data.to_vec();
    volume.resize(volume.len().max(2 << 20), 0);
    let size = volume.len() as u64;
    let Some(fs) = cloudkeep_repo::image::probe(&mut Cursor::new(&volume), 0, size) else {
        return;
    };
    let Ok(mut reader) = files::open(fs.kind, Box::new(Cursor::new(volume))) else {
        return;
    };
    let mut folders = vec![Vec::new()];
    let mut listed = 0;
    while let Some(dir) = folders.pop() {
        listed += 1;
        if listed > 64 {
            break;
        }
        let Ok(entries) = reader.list(&dir) else {
            continue;
        };
        for e in entries.into_iter().take(64) {
            let mut path: Vec<Vec<u8>> = dir.clone();
            path.push(e.name.clone());
            match e.kind {
                EntryKind::Dir if path.len() < 8 => folders.push(path),
                EntryKind::File => {
                    let _ = reader.copy(&path, &mut std::io::sink());
                    // As a published file is read: at offsets, the last past its end.
                    let mut buf = [0u8; 4096];
                    for offset in [0, e.size / 2, e.size.saturating_sub(1), e.size + 1] {
                        let _ = reader.read_at(&path, offset, &mut buf);
                    }
                }
                _ => {}
            }
        }
    }
});
