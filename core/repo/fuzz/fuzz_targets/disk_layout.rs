//! Fuzz target: a disk's first and last sectors as image-level backups read them — partition
//! tables (GPT with its backup header, MBR with logical partitions) and file-system superblocks
//! (ext, FAT, NTFS) and the allocation of each volume found (ext block bitmaps and group
//! descriptors), and an ext volume's files as change tracking reads them (inode tables, extent
//! trees). A disk is input its user controls; nothing in it may panic or allocate
//! without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The bytes as the disk's head, on a disk of 2 MiB (the rest zeros), so that tables may
    // point anywhere inside it and past it.
    let mut disk = data.to_vec();
    disk.resize(disk.len().max(2 << 20), 0);
    let mut disk = std::io::Cursor::new(disk);
    if let Ok(layout) = cloudkeep_repo::image::read_layout(&mut disk) {
        for part in &layout.partitions {
            if let Some(fs) = &part.filesystem {
                let _ = cloudkeep_repo::image::used_map(&mut disk, part.start, part.size, fs);
                if let Ok(Some(files)) =
                    cloudkeep_repo::image::changes::scan(&mut disk, part.start, part.size, 0)
                {
                    let unchanged = files.unchanged(&files.stamps);
                    let _ = unchanged.covers(&(0..part.size));
                }
            }
        }
    }
});
