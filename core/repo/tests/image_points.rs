//! Image-level points through the engine, on disk image files (no root): a GPT disk of an odd
//! size with ext4 (made with `mkfs.ext4 -d`), FAT (`mcopy`) and NTFS (`ntfscp`) volumes full
//! of files is imaged into a repository, then written back out raw and as VHD (dynamic and
//! fixed), VHDX and VMDK — each accepted by `qemu-img check` where qemu has a check for the
//! format, and equal to the raw disk by `qemu-img compare`.

// Test code: a panic with a message is how a check reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(target_os = "linux")]

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cloudkeep_repo::backend::folder::FolderStore;
use cloudkeep_repo::compress::Compression;
use cloudkeep_repo::crypto::KdfParams;
use cloudkeep_repo::engine::backup::{BackupOptions, backup};
use cloudkeep_repo::engine::disk::{ImageRestore, export_disk, restore_image};
use cloudkeep_repo::image::export::Format;
use cloudkeep_repo::image::read_layout;
use cloudkeep_repo::repo::{NewRepo, Repository, RestorePoint};

use super::image_layout::tool;

const MIB: u64 = 1 << 20;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A tree of files of many sizes in two folders.
pub(crate) fn make_tree(root: &Path) {
    for (i, len) in [0usize, 1, 4095, 70_000, 1_000_000, 3_000_000]
        .into_iter()
        .enumerate()
    {
        let dir = root.join(if i % 2 == 0 { "docs" } else { "docs/deep" });
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("file{i}.bin")),
            cloudkeep_tests::pseudo_random(len, i as u64),
        )
        .unwrap();
    }
}

/// A volume of `kind` and `size` holding `tree` (NTFS: its files at the top, as `ntfscp`
/// copies files, not folders).
fn filled_volume(kind: &str, size: u64, tree: &Path, work: &Path) -> Vec<u8> {
    let v = work.join(format!("{kind}.vol"));
    File::create(&v).unwrap().set_len(size).unwrap();
    match kind {
        "ext4" => {
            tool(
                "mkfs.ext4",
                &["-q", "-F", "-L", "root", "-d", s(tree), s(&v)],
                None,
                "e2fsprogs",
            );
        }
        "vfat" => {
            tool("mkfs.vfat", &["-n", "EFI", s(&v)], None, "dosfstools");
            tool(
                "mcopy",
                &["-i", s(&v), "-s", "-m", s(&tree.join("docs")), "::/"],
                None,
                "mtools",
            );
        }
        "ntfs" => {
            tool(
                "mkntfs",
                &["-q", "-F", "-Q", "-L", "data", s(&v)],
                None,
                "ntfs-3g",
            );
            for entry in std::fs::read_dir(tree.join("docs/deep")).unwrap() {
                let p = entry.unwrap().path();
                let name = p.file_name().unwrap().to_str().unwrap().to_owned();
                tool("ntfscp", &["-f", s(&v), s(&p), &name], None, "ntfs-3g");
            }
        }
        other => panic!("{other}"),
    }
    std::fs::read(&v).unwrap()
}

/// A GPT disk image of an odd size (not a whole number of MiB) with the three volumes.
pub(crate) fn make_disk(dir: &Path, tree: &Path) -> PathBuf {
    let disk = dir.join("disk.img");
    let size = 70 * MIB + 3 * 512;
    File::create(&disk).unwrap().set_len(size).unwrap();
    tool(
        "sfdisk",
        &["--quiet", s(&disk)],
        Some(
            "label: gpt\nsize=24M, type=L\nsize=16M, type=U\ntype=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n",
        ),
        "fdisk",
    );
    let layout = read_layout(&mut File::open(&disk).unwrap()).unwrap();
    let out = File::options().write(true).open(&disk).unwrap();
    for (p, kind) in layout.partitions.iter().zip(["ext4", "vfat", "ntfs"]) {
        let bytes = filled_volume(kind, p.size, tree, dir);
        out.write_all_at(&bytes, p.start).unwrap();
    }
    disk
}

/// A folder repository holding one image-level point of `disk`.
pub(crate) fn imaged(dir: &Path, disk: &Path) -> (Repository, RestorePoint) {
    let store = Arc::new(FolderStore::open(dir.join("repo")).unwrap());
    let repo = Repository::init(
        store,
        NewRepo::Encrypted {
            password: "pw",
            kdf: KdfParams::minimum(),
        },
    )
    .unwrap();
    let report = backup(
        &repo,
        &BackupOptions {
            sources: vec![],
            disks: vec![disk.to_path_buf()],
            excludes: vec![],
            one_file_system: false,
            compression: Compression::Default,
            host: "pc".into(),
            job: "machine".into(),
            parent: None,
            cancel: Default::default(),
        },
        &|_| {},
    )
    .unwrap();
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let point = report.point;
    assert_eq!(point.manifest.disks.len(), 1);
    assert_eq!(point.manifest.disks[0].layout.partitions.len(), 3);
    (repo, point)
}

#[test]
fn disks_export_as_raw_vhd_vhdx_and_vmdk_that_qemu_accepts_and_finds_equal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tree = d.join("tree");
    make_tree(&tree);
    let disk = make_disk(d, &tree);
    let (repo, point) = imaged(d, &disk);

    let raw = d.join("restored.img");
    let report = restore_image(
        &repo,
        &point,
        &ImageRestore {
            disk: String::new(),
            volume: None,
            format: Format::Raw,
        },
        &raw,
        &Default::default(),
        &|_| {},
    )
    .unwrap();
    assert_eq!(std::fs::metadata(&raw).unwrap().len(), report.size);
    tool("sfdisk", &["--verify", s(&raw)], None, "fdisk");
    // What the file systems use came back: the original disk and the restored one are the
    // same disk to qemu once the free space (never read) is left out — checked through the
    // exports below against the restored raw image, and here by each volume's own checker.
    let layout = read_layout(&mut File::open(&raw).unwrap()).unwrap();
    for (p, checker) in layout
        .partitions
        .iter()
        .zip(["e2fsck", "fsck.fat", "ntfsfix"])
    {
        let vol = d.join(format!("{checker}.vol"));
        let bytes = {
            let mut b = vec![0u8; p.size as usize];
            File::open(&raw)
                .unwrap()
                .read_exact_at(&mut b, p.start)
                .unwrap();
            b
        };
        std::fs::write(&vol, bytes).unwrap();
        let args: &[&str] = match checker {
            "e2fsck" => &["-fn"],
            _ => &["-n"],
        };
        let mut all = args.to_vec();
        all.push(s(&vol));
        tool(checker, &all, None, "e2fsprogs dosfstools ntfs-3g");
    }

    for (format, qemu, checkable) in [
        (Format::Vhd, "vpc", false),
        (Format::VhdFixed, "vpc", false),
        (Format::Vhdx, "vhdx", true),
        (Format::Vmdk, "vmdk", true),
    ] {
        let out = d.join(format!("disk.{format}"));
        export_disk(
            &repo,
            &point,
            "",
            format,
            &out,
            &Default::default(),
            &|_| {},
        )
        .unwrap();
        if checkable {
            let said = tool(
                "qemu-img",
                &["check", "-f", qemu, s(&out)],
                None,
                "qemu-utils",
            );
            assert!(said.contains("No errors"), "{format}: {said}");
        }
        // qemu has no check for VHD (vpc); it reads the image and its size instead.
        let info: serde_json::Value = serde_json::from_str(&tool(
            "qemu-img",
            &["info", "--output=json", "-f", qemu, s(&out)],
            None,
            "qemu-utils",
        ))
        .unwrap();
        assert_eq!(info["virtual-size"], report.size, "{format}: {info}");
        let same = tool(
            "qemu-img",
            &["compare", "-f", "raw", "-F", qemu, s(&raw), s(&out)],
            None,
            "qemu-utils",
        );
        assert!(same.contains("identical"), "{format}: {same}");
        let len = std::fs::metadata(&out).unwrap().len();
        if format != Format::VhdFixed {
            assert!(len < report.size, "{format} is sparse: {len} bytes");
        }
    }

    // A device is not a file: every format but raw refuses one; a file-level point has no disk.
    let refused = export_disk(
        &repo,
        &point,
        "",
        Format::Vhdx,
        Path::new("/dev/null"),
        &Default::default(),
        &|_| {},
    );
    assert!(refused.is_err());
    let refused = export_disk(
        &repo,
        &point,
        "nope",
        Format::Vmdk,
        &d.join("x.vmdk"),
        &Default::default(),
        &|_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(refused.contains("holds no disk \"nope\""), "{refused}");
}

#[test]
fn files_inside_ext4_fat_and_ntfs_volumes_browse_search_and_restore_from_the_point() {
    use cloudkeep_repo::catalog::NodeKind;
    use cloudkeep_repo::engine::browse::{find, list_dir};
    use cloudkeep_repo::engine::restore::{Conflict, Destination, RestoreOptions, restore};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tree = d.join("tree");
    make_tree(&tree);
    let disk = make_disk(d, &tree);
    let (repo, point) = imaged(d, &disk);
    let index = repo.load_index().unwrap();
    let names = |path: &str| -> Vec<String> {
        let mut n: Vec<String> = list_dir(&repo, &index, &point, path)
            .unwrap()
            .iter()
            .map(|n| n.display_name().into_owned())
            .collect();
        n.sort();
        n
    };
    assert_eq!(names("/"), ["disk.img"]);
    assert_eq!(names("/disk.img"), ["disk.img1", "disk.img2", "disk.img3"]);
    assert_eq!(names("/disk.img/disk.img1"), ["docs", "lost+found"]);
    assert_eq!(names("/disk.img/disk.img2"), ["docs"]);
    assert_eq!(
        names("/disk.img/disk.img3"),
        ["file1.bin", "file3.bin", "file5.bin"]
    );
    let deep = list_dir(&repo, &index, &point, "/disk.img/disk.img1/docs/deep").unwrap();
    let f5 = deep.iter().find(|n| n.name == b"file5.bin").unwrap();
    assert_eq!((f5.kind, f5.size), (NodeKind::File, 3_000_000));
    let src_f5 = std::fs::metadata(tree.join("docs/deep/file5.bin")).unwrap();
    let secs = |ns: i64| ns.div_euclid(1_000_000_000);
    let src_f5_ns = cloudkeep_repo::engine::fsmeta::times_of(&src_f5).mtime_ns;
    // (A volume this small has 128-byte inodes: times to the second.)
    assert_eq!(
        secs(f5.times.mtime_ns),
        secs(src_f5_ns),
        "ext4 keeps modification times"
    );
    let fat = list_dir(&repo, &index, &point, "/disk.img/disk.img2/docs").unwrap();
    let f4 = fat.iter().find(|n| n.name == b"file4.bin").unwrap();
    let src_mtime = std::fs::metadata(tree.join("docs/file4.bin"))
        .unwrap()
        .modified()
        .unwrap();
    let src_s = src_mtime
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (f4.times.mtime_ns / 1_000_000_000 - src_s).abs() <= 2,
        "FAT keeps modification times (2 s resolution)"
    );
    // Search finds a name in every volume.
    let hits = find(&repo, &index, &point, "file5.bin").unwrap();
    let paths: Vec<&str> = hits.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/disk.img/disk.img1/docs/deep/file5.bin",
            "/disk.img/disk.img2/docs/deep/file5.bin",
            "/disk.img/disk.img3/file5.bin"
        ]
    );
    // A restore of a folder of each volume, into a folder, byte for byte.
    let out = d.join("out");
    let report = restore(
        &repo,
        &point,
        &RestoreOptions {
            destination: Destination::Folder(out.clone()),
            paths: vec![
                "/disk.img/disk.img1/docs".into(),
                "/disk.img/disk.img3/file5.bin".into(),
            ],
            conflict: Conflict::Skip,
            cancel: Default::default(),
        },
        &|_| {},
    )
    .unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(
        cloudkeep_tests::file_contents(&out.join("docs")),
        cloudkeep_tests::file_contents(&tree.join("docs"))
    );
    // Restored with their modification times.
    let restored_f5 = std::fs::metadata(out.join("docs/deep/file5.bin")).unwrap();
    assert_eq!(
        secs(cloudkeep_repo::engine::fsmeta::times_of(&restored_f5).mtime_ns),
        secs(src_f5_ns),
        "a file restored from an ext4 volume keeps its modification time"
    );
    assert_eq!(
        std::fs::read(out.join("file5.bin")).unwrap(),
        std::fs::read(tree.join("docs/deep/file5.bin")).unwrap()
    );
    let fat_out = d.join("fat-out");
    let report = restore(
        &repo,
        &point,
        &RestoreOptions {
            destination: Destination::Folder(fat_out.clone()),
            paths: vec!["/disk.img/disk.img2/docs".into()],
            conflict: Conflict::Skip,
            cancel: Default::default(),
        },
        &|_| {},
    )
    .unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(
        cloudkeep_tests::file_contents(&fat_out.join("docs")),
        cloudkeep_tests::file_contents(&tree.join("docs"))
    );
    // Restoring to "where it came from", a disk itself, or a path the point lacks is refused.
    for (destination, path, says) in [
        (
            Destination::Original,
            "/disk.img/disk.img1/docs",
            "into a folder",
        ),
        (
            Destination::Folder(out.clone()),
            "/disk.img",
            "choose files or folders inside a volume",
        ),
        (
            Destination::Folder(out.clone()),
            "/disk.img/disk.img1/nope",
            "is not in this restore point",
        ),
    ] {
        let refused = restore(
            &repo,
            &point,
            &RestoreOptions {
                destination,
                paths: vec![path.into()],
                conflict: Conflict::Skip,
                cancel: Default::default(),
            },
            &|_| {},
        )
        .unwrap_err()
        .to_string();
        assert!(refused.contains(says), "{path}: {refused}");
    }
}

/// A FAT directory entry whose first cluster is 1 (no such data cluster) made `fatfs`
/// subtract past zero and panic; through `image::files` it is damage, and the volume's
/// other files still read.
#[test]
fn a_damaged_fat_entry_is_damage_not_a_crash() {
    use cloudkeep_repo::image::files::{self, FilesError};
    use cloudkeep_repo::image::{FsKind, probe};
    let dir = tempfile::tempdir().unwrap();
    let v = dir.path().join("fat.img");
    File::create(&v).unwrap().set_len(4 * MIB).unwrap();
    tool("mkfs.vfat", &[s(&v)], None, "dosfstools");
    for (name, body) in [("hello.txt", "hello\n"), ("other.txt", "other\n")] {
        let src = dir.path().join(name);
        std::fs::write(&src, body).unwrap();
        tool("mcopy", &["-i", s(&v), s(&src), "::/"], None, "mtools");
    }
    let mut bytes = std::fs::read(&v).unwrap();
    let at = bytes
        .windows(11)
        .position(|w| w == b"HELLO   TXT")
        .expect("the short name entry");
    bytes[at + 26..at + 28].copy_from_slice(&1u16.to_le_bytes());
    let size = bytes.len() as u64;
    let fs = probe(&mut std::io::Cursor::new(&bytes), 0, size).unwrap();
    assert_eq!(fs.kind, FsKind::Vfat);
    let mut reader = files::open(fs.kind, Box::new(std::io::Cursor::new(bytes.clone()))).unwrap();
    match reader.copy(&[b"hello.txt".to_vec()], &mut std::io::sink()) {
        Err(FilesError::Damaged { .. }) | Err(FilesError::Io(_)) => {}
        other => panic!("{other:?}"),
    }
    let mut fresh = files::open(fs.kind, Box::new(std::io::Cursor::new(bytes))).unwrap();
    let mut out = Vec::new();
    fresh.copy(&[b"other.txt".to_vec()], &mut out).unwrap();
    assert_eq!(out, b"other\n");
}

/// A file inside an ext4, FAT or NTFS volume read at any offset (what a published point's
/// reads ask): each read is the file's bytes there, sequential reads go on where the last
/// ended, a read past the end is empty.
#[test]
fn files_inside_volumes_read_at_any_offset() {
    use cloudkeep_repo::image::files;
    use cloudkeep_repo::image::{FsKind, probe};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tree = d.join("tree");
    make_tree(&tree);
    let want = std::fs::read(tree.join("docs/deep/file5.bin")).unwrap();
    for (kind, fs_kind, path) in [
        ("ext4", FsKind::Ext4, "docs/deep/file5.bin"),
        ("vfat", FsKind::Vfat, "docs/deep/file5.bin"),
        ("ntfs", FsKind::Ntfs, "file5.bin"),
    ] {
        let bytes = filled_volume(kind, 24 * MIB, &tree, d);
        let size = bytes.len() as u64;
        let found = probe(&mut std::io::Cursor::new(&bytes), 0, size).unwrap();
        assert_eq!(found.kind, fs_kind, "{kind}");
        let mut reader = files::open(fs_kind, Box::new(std::io::Cursor::new(bytes))).unwrap();
        let file: Vec<Vec<u8>> = path.split('/').map(|c| c.as_bytes().to_vec()).collect();
        let len = want.len() as u64;
        for (offset, n) in [
            (0u64, 4096usize),
            (4096, 131_072),
            (135_168, 131_072),
            (1_000_001, 7),
            (len - 10, 4096),
            (len, 10),
            (len + 5000, 10),
        ] {
            let mut buf = vec![0u8; n];
            let got = reader.read_at(&file, offset, &mut buf).unwrap();
            let from = offset.min(len) as usize;
            let to = (offset + n as u64).min(len) as usize;
            assert_eq!(got, to - from, "{kind} at {offset}");
            assert!(buf[..got] == want[from..to], "{kind} at {offset}+{n}");
        }
        let missing = reader.read_at(&[b"nope".to_vec()], 0, &mut [0u8; 4]);
        assert!(missing.is_err(), "{kind}: {missing:?}");
    }
}
