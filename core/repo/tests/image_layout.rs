//! Disk layouts and file systems read by `cloudkeep_repo::image`, checked against the tools the
//! OS itself uses: disks partitioned by `sfdisk` (GPT; MBR with a logical partition; no table),
//! volumes made by `mkfs.ext4`, `mkfs.vfat` and `mkntfs`, and what `sfdisk --json` and
//! `blkid --probe` say about them. Image files only: no root, no loop device.

// Test code: a panic with a message is how a check reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(target_os = "linux")]

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Stdio};

use cloudkeep_repo::image::{DiskLayout, FsKind, PartitionTable, read_layout};

const MIB: u64 = 1 << 20;

/// Runs a tool; its absence names the Debian package (scripts/test installs them).
pub(crate) fn tool(program: &str, args: &[&str], stdin: Option<&str>, package: &str) -> String {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} ({e}): install the Debian package {package}"));
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A file system of `size` bytes made by its own tool, written into `disk` at `offset`.
pub(crate) fn place_fs(disk: &Path, offset: u64, size: u64, kind: &str, label: &str) {
    let dir = tempfile::tempdir().unwrap();
    let volume = dir.path().join("volume");
    File::create(&volume).unwrap().set_len(size).unwrap();
    let v = volume.to_str().unwrap();
    match kind {
        "ext4" => tool(
            "mkfs.ext4",
            &["-q", "-F", "-L", label, v],
            None,
            "e2fsprogs",
        ),
        "vfat" => tool("mkfs.vfat", &["-n", label, v], None, "dosfstools"),
        "ntfs" => tool(
            "mkntfs",
            &[
                "-q",
                "-F",
                "-Q",
                "-L",
                label,
                "-p",
                &(offset / 512).to_string(),
                v,
            ],
            None,
            "ntfs-3g",
        ),
        other => panic!("{other}"),
    };
    let bytes = std::fs::read(&volume).unwrap();
    File::options()
        .write(true)
        .open(disk)
        .unwrap()
        .write_all_at(&bytes, offset)
        .unwrap();
}

/// `blkid --probe` of the volume at `offset`: TYPE, UUID, LABEL.
fn blkid(disk: &Path, offset: u64, size: u64) -> BTreeMap<String, String> {
    let out = tool(
        "blkid",
        &[
            "--probe",
            "--output",
            "export",
            "--offset",
            &offset.to_string(),
            "--size",
            &size.to_string(),
            disk.to_str().unwrap(),
        ],
        None,
        "util-linux",
    );
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Our layout against `sfdisk --json` (places, types, GUIDs, names) and every volume's file
/// system against `blkid`.
fn assert_matches_the_tools(disk: &Path, layout: &DiskLayout) {
    let json: serde_json::Value = serde_json::from_str(&tool(
        "sfdisk",
        &["--json", disk.to_str().unwrap()],
        None,
        "fdisk",
    ))
    .unwrap();
    let table = &json["partitiontable"];
    let parts = table["partitions"].as_array().unwrap();
    // sfdisk lists the extended partition too; we list volumes only.
    let volumes: Vec<&serde_json::Value> = parts.iter().filter(|p| p["type"] != "5").collect();
    assert_eq!(
        layout.partitions.len(),
        volumes.len(),
        "{layout:#?}\n{json:#}"
    );
    for (ours, theirs) in layout.partitions.iter().zip(volumes) {
        assert_eq!(
            ours.start,
            theirs["start"].as_u64().unwrap() * 512,
            "{ours:?} {theirs}"
        );
        assert_eq!(
            ours.size,
            theirs["size"].as_u64().unwrap() * 512,
            "{ours:?} {theirs}"
        );
        assert_eq!(
            ours.type_id,
            theirs["type"].as_str().unwrap(),
            "{ours:?} {theirs}"
        );
        assert_eq!(
            ours.uuid.as_deref(),
            theirs["uuid"].as_str(),
            "{ours:?} {theirs}"
        );
        assert_eq!(
            ours.name.as_deref(),
            theirs["name"].as_str(),
            "{ours:?} {theirs}"
        );
        assert_eq!(ours.bootable, theirs["bootable"].as_bool().unwrap_or(false));
        let seen = blkid(disk, ours.start, ours.size);
        let fs = ours
            .filesystem
            .as_ref()
            .unwrap_or_else(|| panic!("no fs in {ours:?}: {seen:?}"));
        assert_eq!(fs.kind.name(), seen["TYPE"], "{ours:?}");
        assert_eq!(
            fs.uuid.as_deref(),
            seen.get("UUID").map(String::as_str),
            "{ours:?}"
        );
        if fs.kind != FsKind::Ntfs {
            assert_eq!(
                fs.label.as_deref(),
                seen.get("LABEL").map(String::as_str),
                "{ours:?}"
            );
        }
    }
    match (&layout.table, table["label"].as_str().unwrap()) {
        (PartitionTable::Gpt { disk_guid }, "gpt") => assert_eq!(disk_guid, &table["id"]),
        (PartitionTable::Mbr { disk_id }, "dos") => assert_eq!(disk_id, &table["id"]),
        (ours, theirs) => panic!("{ours:?} is not {theirs}"),
    }
}

#[test]
fn a_gpt_disk_with_ext4_fat_and_ntfs_reads_as_sfdisk_and_blkid_read_it() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk.img");
    File::create(&disk).unwrap().set_len(64 * MIB).unwrap();
    let d = disk.to_str().unwrap();
    tool(
        "sfdisk",
        &["--quiet", d],
        Some(concat!(
            "label: gpt\n",
            "size=16M, type=L, name=root\n",
            "size=16M, type=U, name=efi\n",
            "type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name=data\n"
        )),
        "fdisk",
    );
    let layout = read_layout(&mut File::open(&disk).unwrap()).unwrap();
    let starts: Vec<(u64, u64)> = layout
        .partitions
        .iter()
        .map(|p| (p.start, p.size))
        .collect();
    place_fs(&disk, starts[0].0, starts[0].1, "ext4", "root");
    place_fs(&disk, starts[1].0, starts[1].1, "vfat", "EFI");
    place_fs(&disk, starts[2].0, starts[2].1, "ntfs", "data");
    let layout = read_layout(&mut File::open(&disk).unwrap()).unwrap();
    assert_eq!(layout.size, 64 * MIB);
    assert_eq!(layout.sector_size, 512);
    let kinds: Vec<FsKind> = layout
        .partitions
        .iter()
        .map(|p| p.filesystem.as_ref().unwrap().kind)
        .collect();
    assert_eq!(kinds, [FsKind::Ext4, FsKind::Vfat, FsKind::Ntfs]);
    assert_matches_the_tools(&disk, &layout);
}

#[test]
fn an_mbr_disk_with_a_logical_partition_reads_as_sfdisk_and_blkid_read_it() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk.img");
    File::create(&disk).unwrap().set_len(64 * MIB).unwrap();
    let d = disk.to_str().unwrap();
    tool(
        "sfdisk",
        &["--quiet", d],
        Some("label: dos\n,16M,83,*\n,,5\n,16M,c\n,,7\n"),
        "fdisk",
    );
    let layout = read_layout(&mut File::open(&disk).unwrap()).unwrap();
    let numbers: Vec<u32> = layout.partitions.iter().map(|p| p.number).collect();
    assert_eq!(
        numbers,
        [1, 5, 6],
        "primary 1, logical 5 and 6; the extended one is no volume"
    );
    let spans: Vec<(u64, u64)> = layout
        .partitions
        .iter()
        .map(|p| (p.start, p.size))
        .collect();
    place_fs(&disk, spans[0].0, spans[0].1, "ext4", "boot");
    place_fs(&disk, spans[1].0, spans[1].1, "vfat", "STICK");
    place_fs(&disk, spans[2].0, spans[2].1, "ntfs", "win");
    let layout = read_layout(&mut File::open(&disk).unwrap()).unwrap();
    assert!(layout.partitions[0].bootable);
    assert_matches_the_tools(&disk, &layout);
}

#[test]
fn a_file_system_on_the_whole_disk_is_one_volume_not_a_table() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, label) in [("vfat", "WHOLE"), ("ext4", "whole"), ("ntfs", "whole")] {
        let disk = dir.path().join(format!("{kind}.img"));
        File::create(&disk).unwrap().set_len(32 * MIB).unwrap();
        place_fs(&disk, 0, 32 * MIB, kind, label);
        let layout = read_layout(&mut File::open(&disk).unwrap()).unwrap();
        assert_eq!(
            layout.table,
            PartitionTable::None,
            "{kind}: a FAT boot sector is no MBR"
        );
        assert_eq!(layout.partitions.len(), 1, "{kind}");
        let fs = layout.partitions[0].filesystem.as_ref().unwrap();
        let seen = blkid(&disk, 0, 32 * MIB);
        assert_eq!(fs.kind.name(), seen["TYPE"]);
        assert_eq!(fs.uuid.as_deref(), seen.get("UUID").map(String::as_str));
    }
}

/// Overwrites every byte of the volume file outside `map` (as a restore that writes only the
/// used ranges would leave a reused disk).
fn overwrite_outside(volume: &Path, map: &cloudkeep_repo::image::UsedMap, size: u64) {
    let file = File::options().write(true).open(volume).unwrap();
    let mut at = 0;
    for range in map.ranges.iter().chain([&(size..size)]) {
        if range.start > at {
            file.write_all_at(&vec![0x5A; (range.start - at) as usize], at)
                .unwrap();
        }
        at = range.end;
    }
}

/// Every file of `tree`'s folders `subs` is in `out` with the same bytes.
fn assert_same_files(tree: &Path, out: &Path, subs: &[&str], what: &str) {
    for sub in subs {
        for entry in std::fs::read_dir(tree.join(sub)).unwrap() {
            let entry = entry.unwrap();
            let copy = out.join(sub).join(entry.file_name());
            assert_eq!(
                std::fs::read(entry.path()).unwrap(),
                std::fs::read(&copy).unwrap(),
                "{what}: {}",
                copy.display()
            );
        }
    }
}

/// ext4's used blocks as `cloudkeep_repo::image::used_map` reads them are exactly the blocks
/// e2fsprogs counts used; a copy of the volume with every other block overwritten is still a
/// clean file system (`e2fsck -fn`) holding every file byte for byte (`debugfs rdump`).
#[test]
fn ext4_used_blocks_are_what_e2fsprogs_counts_and_all_a_volume_needs() {
    use cloudkeep_repo::image::{probe, used_map};
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    for (n, len) in [(0u64, 0usize), (1, 1), (2, 4096), (3, 70_000), (4, 3 << 20)] {
        let sub = tree.join(format!("d{}", n % 3));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(
            sub.join(format!("f{n}")),
            cloudkeep_tests::pseudo_random(len, n),
        )
        .unwrap();
    }
    for (blocks_size, size) in [("4096", 64 * MIB), ("1024", 24 * MIB)] {
        let volume = dir.path().join(format!("ext4-{blocks_size}.img"));
        File::create(&volume).unwrap().set_len(size).unwrap();
        // Garbage where the file system will not write: a reused disk.
        File::options()
            .write(true)
            .open(&volume)
            .unwrap()
            .write_all_at(&vec![0xA5; (size / 2) as usize], size / 2)
            .unwrap();
        let v = volume.to_str().unwrap();
        tool(
            "mkfs.ext4",
            &[
                "-q",
                "-F",
                "-b",
                blocks_size,
                "-d",
                tree.to_str().unwrap(),
                v,
            ],
            None,
            "e2fsprogs",
        );
        let fs = probe(&mut File::open(&volume).unwrap(), 0, size).unwrap();
        let map = used_map(&mut File::open(&volume).unwrap(), 0, size, &fs)
            .unwrap()
            .unwrap();

        let header = tool("dumpe2fs", &["-h", v], None, "e2fsprogs");
        let field = |name: &str| -> u64 {
            header
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap_or_else(|| panic!("{name} in {header}"))
                .trim()
                .parse()
                .unwrap()
        };
        let block = field("Block size:");
        let used_blocks = field("Block count:") - field("Free blocks:");
        assert_eq!(
            map.bytes(),
            used_blocks * block,
            "{blocks_size}: {:?}",
            map.ranges
        );

        // Everything outside the map overwritten: still whole.
        overwrite_outside(&volume, &map, size);
        tool("e2fsck", &["-f", "-n", v], None, "e2fsprogs");
        let out = dir.path().join(format!("out-{blocks_size}"));
        std::fs::create_dir(&out).unwrap();
        tool(
            "debugfs",
            &["-R", &format!("rdump / {}", out.display()), v],
            None,
            "e2fsprogs",
        );
        assert_same_files(&tree, &out, &["d0", "d1", "d2"], blocks_size);
    }
}

/// FAT12, FAT16 and FAT32 (made by `mkfs.vfat`, filled by `mcopy`): the used clusters are
/// those `fsck.fat` counts, and a copy with every other sector overwritten is still clean and
/// gives back every file byte for byte.
#[test]
fn fat_used_clusters_are_what_fsck_fat_counts_and_all_a_volume_needs() {
    use cloudkeep_repo::image::{probe, used_map};
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    for (n, len) in [(0u64, 0usize), (1, 1), (2, 4096), (3, 70_000), (4, 900_000)] {
        let sub = tree.join(format!("d{}", n % 2));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(
            sub.join(format!("f{n}.bin")),
            cloudkeep_tests::pseudo_random(len, n),
        )
        .unwrap();
    }
    for (fat, size) in [("12", 4 * MIB), ("16", 32 * MIB), ("32", 64 * MIB)] {
        let volume = dir.path().join(format!("fat{fat}.img"));
        File::create(&volume).unwrap().set_len(size).unwrap();
        let v = volume.to_str().unwrap();
        tool(
            "mkfs.vfat",
            &["-F", fat, "-n", "DATA", v],
            None,
            "dosfstools",
        );
        for sub in ["d0", "d1"] {
            tool(
                "mcopy",
                &["-i", v, "-s", tree.join(sub).to_str().unwrap(), "::/"],
                None,
                "mtools",
            );
        }
        let fs = probe(&mut File::open(&volume).unwrap(), 0, size).unwrap();
        assert_eq!(fs.kind, FsKind::Vfat);
        let map = used_map(&mut File::open(&volume).unwrap(), 0, size, &fs)
            .unwrap()
            .unwrap();

        // fsck.fat: "…: N files, USED/TOTAL clusters".
        let said = tool("fsck.fat", &["-n", v], None, "dosfstools");
        let counts = said
            .split_whitespace()
            .find(|w| w.contains('/') && w.chars().next().unwrap().is_ascii_digit())
            .unwrap_or_else(|| panic!("{said}"));
        let used_clusters: u64 = counts.split('/').next().unwrap().parse().unwrap();
        let boot = std::fs::read(&volume).unwrap();
        let bps = u64::from(u16::from_le_bytes([boot[11], boot[12]]));
        let cluster = bps * u64::from(boot[13]);
        // Reserved sectors, the FATs and the root folder region come before the clusters.
        let le16 = |at: usize| u64::from(u16::from_le_bytes([boot[at], boot[at + 1]]));
        let le32 = |at: usize| {
            u64::from(u32::from_le_bytes([
                boot[at],
                boot[at + 1],
                boot[at + 2],
                boot[at + 3],
            ]))
        };
        let fat_sectors = if le16(0x16) == 0 {
            le32(0x24)
        } else {
            le16(0x16)
        };
        let root_sectors = (le16(0x11) * 32).div_ceil(bps);
        let metadata = (le16(0x0E) + u64::from(boot[0x10]) * fat_sectors + root_sectors) * bps;
        let cluster_bytes = map.bytes() - metadata;
        assert_eq!(cluster_bytes, used_clusters * cluster, "FAT{fat}: {said}");

        overwrite_outside(&volume, &map, size);
        tool("fsck.fat", &["-n", v], None, "dosfstools");
        let out = dir.path().join(format!("out-{fat}"));
        std::fs::create_dir(&out).unwrap();
        tool(
            "mcopy",
            &["-i", v, "-s", "::/d0", "::/d1", out.to_str().unwrap()],
            None,
            "mtools",
        );
        assert_same_files(&tree, &out, &["d0", "d1"], &format!("FAT{fat}"));
    }
}

/// NTFS (made by `mkntfs`, filled by `ntfscp`): the used clusters are what `ntfscluster`
/// counts in use, and with every other byte overwritten the volume still passes `ntfsfix -n`
/// and `ntfscat` reads every file back byte for byte.
#[test]
fn ntfs_used_clusters_are_what_ntfscluster_counts_and_all_a_volume_needs() {
    use cloudkeep_repo::image::{probe, used_map};
    let dir = tempfile::tempdir().unwrap();
    let size = 64 * MIB;
    let volume = dir.path().join("ntfs.img");
    File::create(&volume).unwrap().set_len(size).unwrap();
    let v = volume.to_str().unwrap();
    tool("mkntfs", &["-F", "-Q", "-L", "DATA", v], None, "ntfs-3g");
    let files: Vec<(String, Vec<u8>)> = [0usize, 1, 700, 4096, 70_000, 3_000_000]
        .iter()
        .enumerate()
        .map(|(n, &len)| {
            (
                format!("f{n}.bin"),
                cloudkeep_tests::pseudo_random(len, n as u64),
            )
        })
        .collect();
    for (name, data) in &files {
        let src = dir.path().join(name);
        std::fs::write(&src, data).unwrap();
        tool(
            "ntfscp",
            &["-f", v, src.to_str().unwrap(), name],
            None,
            "ntfs-3g",
        );
    }
    let fs = probe(&mut File::open(&volume).unwrap(), 0, size).unwrap();
    assert_eq!(fs.kind, FsKind::Ntfs);
    let map = used_map(&mut File::open(&volume).unwrap(), 0, size, &fs)
        .unwrap()
        .unwrap();

    // ntfscluster: "bytes per volume : N" and "bytes of free space : M".
    let info = tool("ntfscluster", &["-f", "-i", v], None, "ntfs-3g");
    let field = |name: &str| -> u64 {
        info.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split(':').nth(1))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in {info}"))
    };
    let (volume_bytes, free) = (field("bytes per volume"), field("bytes of free space"));
    let in_clusters: u64 = map
        .ranges
        .iter()
        .map(|r| r.end.min(volume_bytes).saturating_sub(r.start))
        .sum();
    assert_eq!(in_clusters, volume_bytes - free, "{info}");
    assert!(map.bytes() < size / 4, "mostly free: {map:?}");

    overwrite_outside(&volume, &map, size);
    tool("ntfsfix", &["-n", v], None, "ntfs-3g");
    for (name, data) in &files {
        let mut out = Command::new("ntfscat").args([v, name]).output().unwrap();
        assert!(out.status.success(), "{name}");
        assert_eq!(&std::mem::take(&mut out.stdout), data, "{name}");
    }
}
