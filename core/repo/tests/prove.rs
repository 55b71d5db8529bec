//! Restore tests through the engine on real files: a file-level point (sparse file, hard link,
//! odd names) and an image-level point (ext4, FAT and NTFS volumes) are proven restorable;
//! then one stored blob is damaged and the next test fails, naming what cannot come back.

// Test code: a panic with a message is how a check reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(target_os = "linux")]

use std::fs;
use std::path::Path;
use std::sync::Arc;

use cloudkeep_repo::backend::folder::FolderStore;
use cloudkeep_repo::catalog::Extent;
use cloudkeep_repo::crypto::{ChunkId, KdfParams};
use cloudkeep_repo::engine::backup::backup;
use cloudkeep_repo::engine::browse;
use cloudkeep_repo::engine::prove::{ProveOptions, ProveReport, prove};
use cloudkeep_repo::repo::{NewRepo, Repository, RestorePoint};

use super::engine::{make_source, options};
use super::image_points::{imaged, make_disk, make_tree};

fn run(repo: &Repository, point: &RestorePoint, scratch: &Path, percent: u8) -> ProveReport {
    let report = prove(
        repo,
        point,
        &ProveOptions {
            sample_percent: percent,
            min_files: 20,
            scratch: scratch.to_path_buf(),
            cancel: Default::default(),
        },
        &|_| {},
    )
    .unwrap();
    assert!(
        !scratch.exists(),
        "the scratch folder is emptied, pass or fail"
    );
    report
}

/// Flips a byte inside `id`'s stored blob in its pack of the folder repository at `repo_dir`.
fn damage(repo: &Repository, repo_dir: &Path, id: &ChunkId) {
    let index = repo.load_index().unwrap();
    let loc = index.get(id).unwrap();
    let hex = loc.pack.to_hex();
    let pack = repo_dir
        .join("packs")
        .join(&hex[..2])
        .join(format!("{hex}.pack"));
    let mut bytes = fs::read(&pack).unwrap();
    bytes[loc.offset as usize + 40] ^= 0x5a;
    fs::write(&pack, bytes).unwrap();
}

#[test]
fn a_file_level_point_is_proven_then_a_damaged_blob_fails_the_test_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("src");
    make_source(&source);
    let repo_dir = tmp.path().join("repo");
    let repo = Repository::init(
        Arc::new(FolderStore::open(&repo_dir).unwrap()),
        NewRepo::Encrypted {
            password: "pw",
            kdf: KdfParams::minimum(),
        },
    )
    .unwrap();
    let point = backup(&repo, &options(&source, None), &|_| {})
        .unwrap()
        .point;
    let scratch = tmp.path().join("scratch");

    // Fewer files than the minimum: every one is restored and checked, the sparse file's
    // hole included, whatever the share asked.
    let report = run(&repo, &point, &scratch, 1);
    assert!(report.passed(), "{report:#?}");
    assert!(!report.image);
    assert_eq!(report.files_in_point, 6, "{report:#?}");
    assert_eq!(report.files_sampled, 6);
    assert_eq!(report.files_proven, 6);
    assert!(report.folders_read >= 5, "{report:#?}");
    assert!(
        report.bytes_checked > 64 << 20,
        "the sparse file's 64 MiB: {report:#?}"
    );
    assert!(report.chunks_checked >= 4, "{report:#?}");
    assert!(report.stored_bytes_read > 0);
    assert!(
        report.summary().starts_with("proven restorable"),
        "{}",
        report.summary()
    );

    // One stored blob of random.bin damaged at the store: the next test fails and names it.
    let index = repo.load_index().unwrap();
    let folder = source.join("docs/deep/er").display().to_string();
    let listing = browse::list_dir(&repo, &index, &point, &folder).unwrap();
    let victim = listing.iter().find(|n| n.name == b"random.bin").unwrap();
    let Extent::Data { id, .. } = victim.content[0] else {
        panic!("data expected")
    };
    damage(&repo, &repo_dir, &id);
    let report = run(&repo, &point, &scratch, 100);
    assert!(!report.passed());
    assert_eq!(report.failures.len(), 1, "{report:#?}");
    assert_eq!(
        report.failures[0].path,
        source.join("docs/deep/er/random.bin").display().to_string()
    );
    assert_eq!(
        report.files_proven, 5,
        "the others still come back: {report:#?}"
    );
    assert!(
        report.summary().contains("NOT restorable") && report.summary().contains("random.bin"),
        "{}",
        report.summary()
    );
}

#[test]
fn an_image_level_point_opens_every_volume_then_a_damaged_block_fails_the_test() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    make_tree(&tree);
    let disk = make_disk(tmp.path(), &tree);
    let (repo, point) = imaged(tmp.path(), &disk);
    let scratch = tmp.path().join("scratch");

    let report = run(&repo, &point, &scratch, 100);
    assert!(report.passed(), "{report:#?}");
    assert!(report.image);
    assert_eq!(report.volumes.len(), 3, "{report:#?}");
    assert!(report.volumes.iter().all(|v| v.opened), "{report:#?}");
    let kinds: Vec<_> = report
        .volumes
        .iter()
        .filter_map(|v| v.filesystem.clone())
        .collect();
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    // ext4 and FAT hold the six files in two folders; NTFS those of the top folder.
    let files: Vec<u64> = report.volumes.iter().map(|v| v.files).collect();
    assert_eq!(files, [6, 6, 3], "{report:#?}");
    assert_eq!(report.files_proven, report.files_sampled);
    assert!(
        report.chunks_checked > 0 && report.bytes_checked > 0,
        "{report:#?}"
    );

    // A block of the disk damaged at the store: the test names the disk and the byte.
    let index = repo.load_index().unwrap();
    let node = browse::resolve(&repo, &index, &point, &point.manifest.disks[0].path).unwrap();
    let browse::Resolved::Node(node) = node else {
        panic!("the disk's node")
    };
    let Some(id) = node.content.iter().find_map(|e| match e {
        Extent::Data { id, .. } => Some(*id),
        Extent::Hole { .. } => None,
    }) else {
        panic!("disk data expected")
    };
    damage(&repo, &tmp.path().join("repo"), &id);
    let report = run(&repo, &point, &scratch, 100);
    assert!(!report.passed(), "{report:#?}");
    let disk_name = format!("/{}", point.manifest.disks[0].name());
    assert!(
        report
            .failures
            .iter()
            .any(|f| f.path == disk_name && f.reason.contains("block at byte")),
        "{report:#?}"
    );
}

/// A full scratch disk is not the backup's fault: the files it could not hold are "untested",
/// never "not restorable", nothing else is lost, and the scratch folder is emptied. Needs root
/// for the small tmpfs (CI runs as root); elsewhere it says so and checks nothing.
#[test]
fn a_full_scratch_disk_leaves_files_untested_never_failed() {
    let root = std::fs::metadata("/proc/self").map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    if !root.unwrap_or(false) {
        eprintln!("not root: the full-scratch-disk test needs a tmpfs mount; skipped");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("src");
    fs::create_dir_all(&source).unwrap();
    fs::write(
        source.join("big.bin"),
        cloudkeep_tests::pseudo_random(3 << 20, 3),
    )
    .unwrap();
    fs::write(source.join("small.txt"), b"small").unwrap();
    let repo = Repository::init(
        Arc::new(FolderStore::open(tmp.path().join("repo")).unwrap()),
        NewRepo::Encrypted {
            password: "pw",
            kdf: KdfParams::minimum(),
        },
    )
    .unwrap();
    let point = backup(&repo, &options(&source, None), &|_| {})
        .unwrap()
        .point;
    let disk = tmp.path().join("disk");
    fs::create_dir_all(&disk).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&disk)
        .status()
        .unwrap();
    assert!(mounted.success(), "mount a 1 MiB tmpfs");
    let scratch = disk.join("scratch");
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run(&repo, &point, &scratch, 100)
    }));
    let _ = std::process::Command::new("umount").arg(&disk).status();
    let report = outcome.unwrap();
    assert!(
        report.passed(),
        "no file is called not restorable: {report:#?}"
    );
    assert!(!report.proven());
    assert!(
        report.untested.iter().any(|u| u.path.ends_with("/big.bin")),
        "{report:#?}"
    );
    assert!(
        report.untested.iter().all(|u| u.reason.contains("is full")),
        "{report:#?}"
    );
    // The small file is proven, or untested too when the big one filled the disk first.
    assert_eq!(
        report.files_proven + report.untested.len() as u64,
        2,
        "{report:#?}"
    );
    assert!(
        report.summary().contains("not tested"),
        "{}",
        report.summary()
    );
}
