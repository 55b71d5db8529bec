//! ext4 change tracking (`image::changes`) on real file systems made by `mkfs.ext4 -d` and
//! changed by `debugfs` (no root): a file's stamp is the same on every scan until its inode
//! changes (change time, extents) — never for an access time — and the data it covers is its
//! content; a file whose extent tree is damaged, or a file changed just before the scan, is
//! never taken as unchanged.

// Test code: a panic with a message is how a check reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// e2fsprogs and positioned file I/O: Linux.
#![cfg(target_os = "linux")]

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use cloudkeep_repo::image::changes::{ExtFiles, RECENT_NS, scan};

use super::image_layout::tool;

const MIB: u64 = 1 << 20;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// Scanned as if some time after everything was written.
fn scanned(volume: &Path) -> ExtFiles {
    let mut f = File::open(volume).unwrap();
    let size = f.metadata().unwrap().len();
    scan(&mut f, 0, size, now_ns() + 10 * RECENT_NS)
        .unwrap()
        .expect("an ext4 volume is tracked")
}

fn inode_of(volume: &Path, name: &str) -> u32 {
    let out = tool(
        "debugfs",
        &["-R", &format!("stat {name}"), s(volume)],
        None,
        "e2fsprogs",
    );
    out.split("Inode: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no inode for {name}: {out}"))
}

fn debugfs_write(volume: &Path, request: &str) {
    tool(
        "debugfs",
        &["-w", "-R", request, s(volume)],
        None,
        "e2fsprogs",
    );
}

#[test]
fn ext4_file_stamps_change_with_the_inode_and_cover_its_data() {
    // 4 KiB blocks and 256-byte inodes (times to the nanosecond), and what mke2fs makes of
    // a small volume: 1 KiB blocks, 128-byte inodes (times to the second).
    stamps_on(&["-b", "4096", "-I", "256"]);
    stamps_on(&["-T", "small"]);
}

fn stamps_on(mkfs: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    let big = cloudkeep_tests::pseudo_random(3 * MIB as usize, 1);
    std::fs::write(tree.join("big.bin"), &big).unwrap();
    std::fs::write(tree.join("sub/small.txt"), b"small").unwrap();
    // Eight pieces between holes: eight extents, more than an inode holds (a tree of depth 1).
    let sparse = File::create(tree.join("sparse.bin")).unwrap();
    for i in 0..8u64 {
        sparse
            .write_all_at(&cloudkeep_tests::pseudo_random(8192, i), i * 256 * 1024)
            .unwrap();
    }
    drop(sparse);
    let vol = dir.path().join("ext4.img");
    File::create(&vol).unwrap().set_len(64 * MIB).unwrap();
    let mut args = vec!["-q", "-F", "-d", s(&tree)];
    args.extend_from_slice(mkfs);
    args.push(s(&vol));
    tool("mkfs.ext4", &args, None, "e2fsprogs");
    let header = tool("dumpe2fs", &["-h", s(&vol)], None, "e2fsprogs");
    let bs: u64 = header
        .lines()
        .find_map(|l| l.strip_prefix("Block size:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();

    let first = scanned(&vol);
    let big_ino = inode_of(&vol, "/big.bin");
    assert!(first.stamps.iter().any(|(i, _)| *i == big_ino));
    assert!(first.stamps.len() >= 3, "{:?}", first.stamps);
    assert_eq!(first.stamps, first.stamps_to_keep);

    // Against its own stamps, the big file's data is unchanged, and it is the file's bytes.
    let unchanged = first.unchanged(&first.stamps);
    assert!(
        unchanged.bytes() >= big.len() as u64,
        "{}",
        unchanged.bytes()
    );
    let extents = tool(
        "debugfs",
        &["-R", "blocks /big.bin", s(&vol)],
        None,
        "e2fsprogs",
    );
    let blocks: Vec<u64> = extents
        .split_whitespace()
        .map(|b| b.parse().unwrap())
        .collect();
    let file = File::open(&vol).unwrap();
    let mut read = Vec::new();
    for b in &blocks {
        assert!(unchanged.covers(&(b * bs..(b + 1) * bs)), "block {b}");
        let mut buf = vec![0u8; bs as usize];
        file.read_exact_at(&mut buf, b * bs).unwrap();
        read.extend_from_slice(&buf);
    }
    assert_eq!(&read[..big.len()], &big[..]);
    let pieces = tool(
        "debugfs",
        &["-R", "blocks /sparse.bin", s(&vol)],
        None,
        "e2fsprogs",
    );
    let tree_depth = tool(
        "debugfs",
        &["-R", "ex /sparse.bin", s(&vol)],
        None,
        "e2fsprogs",
    );
    assert!(
        tree_depth.contains("1/ 1"),
        "a tree of depth 1: {tree_depth}"
    );
    for b in pieces.split_whitespace().map(|b| b.parse::<u64>().unwrap()) {
        assert!(
            unchanged.covers(&(b * bs..(b + 1) * bs)),
            "sparse block {b}"
        );
    }
    // Metadata (the superblock, the inode tables) is never unchanged data.
    assert!(!unchanged.covers(&(1024..2048)));
    // Against no previous image, nothing is unchanged.
    assert_eq!(first.unchanged(&[]).bytes(), 0);

    // An access time is not a change.
    debugfs_write(&vol, "sif /big.bin atime 20200101");
    assert_eq!(scanned(&vol).stamps, first.stamps, "atime only");

    // A change time is: the same file, its data no longer taken as unchanged.
    debugfs_write(&vol, "sif /big.bin ctime 20200101");
    let second = scanned(&vol);
    let after = second.unchanged(&first.stamps);
    assert!(!after.covers(&(blocks[0] * bs..blocks[0] * bs + bs)));
    assert!(after.bytes() > 0, "the other files stay unchanged");

    // Moved blocks (a new extent start) with the same times: changed.
    let moved = scanned(&vol);
    debugfs_write(&vol, "sif /big.bin block[5] 7");
    assert!(
        !scanned(&vol)
            .unchanged(&moved.stamps)
            .covers(&(blocks[0] * bs..blocks[0] * bs + bs))
    );

    // A damaged extent tree: the file is not tracked, the scan still succeeds.
    debugfs_write(&vol, "sif /big.bin block[0] 0");
    let damaged = scanned(&vol);
    assert!(!damaged.stamps.iter().any(|(i, _)| *i == big_ino));

    // A file changed just before the scan is not kept as clean for the next run.
    let mut f = File::open(&vol).unwrap();
    let fresh = scan(&mut f, 0, 64 * MIB, now_ns()).unwrap().unwrap();
    assert!(fresh.stamps_to_keep.len() < fresh.stamps.len());
}

#[test]
fn a_volume_without_extents_or_with_garbage_is_not_tracked() {
    let dir = tempfile::tempdir().unwrap();
    let vol = dir.path().join("ext2.img");
    File::create(&vol).unwrap().set_len(16 * MIB).unwrap();
    tool("mkfs.ext2", &["-q", "-F", s(&vol)], None, "e2fsprogs");
    let mut f = File::open(&vol).unwrap();
    assert!(scan(&mut f, 0, 16 * MIB, now_ns()).unwrap().is_none());
    let garbage = dir.path().join("garbage.img");
    std::fs::write(
        &garbage,
        cloudkeep_tests::pseudo_random(4 * MIB as usize, 9),
    )
    .unwrap();
    let mut f = File::open(&garbage).unwrap();
    assert!(scan(&mut f, 0, 4 * MIB, now_ns()).is_err());
}
