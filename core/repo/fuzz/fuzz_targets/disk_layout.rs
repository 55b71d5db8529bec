//! Fuzz target: a disk's first and last sectors as image-level backups read them — partition
//! tables (GPT with its backup header, MBR with logical partitions) and file-system superblocks
//! (ext, FAT, NTFS). A disk is input its user controls; nothing in it may panic or allocate
//! without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The bytes as the disk's head, on a disk of 2 MiB (the rest zeros), so that tables may
    // point anywhere inside it and past it.
    let mut disk = data.to_vec();
    disk.resize(disk.len().max(2 << 20), 0);
    let _ = cloudkeep_repo::image::read_layout(&mut std::io::Cursor::new(disk));
});
